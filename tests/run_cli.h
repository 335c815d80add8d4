#pragma once
// Runs the `neurn` binary of this build (NEURN_BIN, which ctest sets) the way
// a user would, for the tests of its commands. Cases that call it are
// declared `* SKIP_UNLESS_BIN`, so without the binary they are skipped,
// visibly (tests/skip.h), never passed.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "skip.h"

#define SKIP_UNLESS_BIN neurn::testing::skip_unless(neurn::testing::neurn_bin() != nullptr, neurn::testing::kNoNeurnBin)

namespace neurn::testing {

// `neurn ARGS` through the shell, with the environment assignments `env`
// ("A=1 B=2") in front. Returns the exit status (-1 if it did not exit) and
// fills `out` with its stdout and, unless with_stderr is false (then it is
// discarded), its stderr.
inline int run_neurn(const std::string& args, std::string& out, const std::string& env = "", bool with_stderr = true) {
  const char* bin = neurn_bin();
  REQUIRE_MESSAGE(bin != nullptr, kNoNeurnBin);
  const std::string full =
      env + (env.empty() ? "" : " ") + bin + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(full.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  out.clear();
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace neurn::testing
