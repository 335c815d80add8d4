// The `neurn` executable: every file of experiments/cli (and bench/) has
// registered its commands; experiments/command_line.cpp parses and runs.
//
// NEURN_PROFILE=FILE runs the whole command under a Profiler
// (framework/profiler.h, docs/profiling.md): the table goes to stderr when
// the command ends and the JSON to FILE.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "experiments/command_line.h"
#include "framework/blas_env.h"
#include "framework/io/atomic_file.h"
#include "framework/profiler.h"

int main(int argc, char** argv) {
  neurn::ensure_blas_kernels(argc, argv);  // OpenBLAS's kernels for this CPU, if it misread the model
  const char* profile_path = std::getenv("NEURN_PROFILE");
  if (profile_path == nullptr || *profile_path == '\0') return neurn::cli::run_command_line(argc, argv);
  int rc = 0;
  neurn::ProfileReport report;
  {
    neurn::Profiler prof;
    rc = neurn::cli::run_command_line(argc, argv);
    report = prof.stop();
  }
  std::cout.flush();  // the command's own output first
  std::fflush(stdout);
  std::fprintf(stderr, "neurn: profile of the command (NEURN_PROFILE):\n%s", report.table(30).c_str());
  try {
    neurn::io::write_file_atomic(profile_path, report.json() + "\n");
    std::fprintf(stderr, "neurn: profile written to %s\n", profile_path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "neurn: could not write the profile (NEURN_PROFILE=%s): %s\n", profile_path, e.what());
    if (rc == 0) rc = 1;
  }
  return rc;
}
