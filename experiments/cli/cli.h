#pragma once
// The commands' side of the command line: the registry and the flag kinds
// live in experiments/command_line.h (with the parser, so tests can run it).
#include "experiments/command_line.h"
