// The `neurn` executable: every file of experiments/cli (and bench/) has
// registered its commands; experiments/command_line.cpp parses and runs.
#include "experiments/command_line.h"
#include "framework/blas_env.h"

int main(int argc, char** argv) {
  neurn::ensure_blas_kernels(argc, argv);  // OpenBLAS's kernels for this CPU, if it misread the model
  return neurn::cli::run_command_line(argc, argv);
}
