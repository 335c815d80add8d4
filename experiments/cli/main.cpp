// The `neurn` executable: every file of experiments/cli (and bench/) has
// registered its commands; experiments/command_line.cpp parses and runs.
#include "experiments/command_line.h"

int main(int argc, char** argv) { return neurn::cli::run_command_line(argc, argv); }
