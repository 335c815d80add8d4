#pragma once
// Visible skips: THE way a test case says that it cannot run on this machine.
//
//   #include "skip.h"
//   TEST_CASE("cuda: ..." * neurn::testing::skip_unless(neurn::testing::have_cuda(), neurn::testing::no_cuda_reason()))
//   TEST_CASE("neurn run ..." * skip_unless(neurn_bin() != nullptr, kNoNeurnBin))
//
// Never return early with MESSAGE("skipped: ...") from a test case: ctest hides
// the message and counts the case as passed. A case declared with skip_unless
// is not run; doctest counts it as skipped, test_main.cpp's listener prints
//   [skipped] <reason> | <test case> (<file>:<line>)
// for each, and a count per reason at the end of the binary's output; each
// suite also has a ctest test "<suite>.skipped" (test_<suite> --neurn-skips)
// that ctest reports as Skipped whenever a case of that suite was skipped, and
// `make test` ends with the skipped cases counted by reason
// (scripts/test_skip_summary.sh). Use one of the reasons below, or add one
// here, so that the count by reason stays short. The condition is evaluated
// once, when the test case registers (before main): keep it cheap.
// docs/testing.md says more.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "framework/device.h"
#ifdef NEURN_WITH_CUDA
#include "framework/cuda/cuda_device.h"
#endif

namespace neurn::testing {

// The reasons (the summary groups by them).
inline constexpr const char* kNoTorch = "no PyTorch (/usr/bin/python3 lacks torch or torchvision)";
inline constexpr const char* kNoNeurnBin = "no neurn binary (NEURN_BIN is set by ctest)";
inline constexpr const char* kNoSharedData = "no shared data (../shared/data or NEURN_SHARED_DATA)";
inline constexpr const char* kNoFonts = "no TrueType fonts under /usr/share/fonts";

inline bool have_cuda() { return cuda_available(); }

inline std::string no_cuda_reason() {
#ifdef NEURN_WITH_CUDA
  return "no CUDA device (" + cuda::unavailable_reason() + ")";
#else
  return "no CUDA device (neurn was built without CUDA)";
#endif
}

// /usr/bin/python3 can find torch and torchvision. find_spec does not import
// them (an import costs seconds at every start of a test binary); a torch that
// is installed but broken then fails the test that uses it, as it should.
inline bool have_torch() {
  static const bool ok =
      std::system("/usr/bin/python3 -c \"import importlib.util as u, sys; "
                  "sys.exit(0 if u.find_spec('torch') and u.find_spec('torchvision') else 1)\" > /dev/null 2>&1") == 0;
  return ok;
}

// The neurn executable that ctest names in NEURN_BIN, or nullptr.
inline const char* neurn_bin() {
  const char* bin = std::getenv("NEURN_BIN");
  return bin && std::filesystem::exists(bin) ? bin : nullptr;
}

struct SkippedCase {
  std::string name, file;
  unsigned line = 0;
  std::string reason;
};

// The test cases of this binary that skip_unless switched off, in registration order.
inline std::vector<SkippedCase>& skipped_cases() {
  static std::vector<SkippedCase> cases;
  return cases;
}

// A doctest decorator: when `ok` is false the case is not run, and is recorded
// with its reason for the reports above.
struct skip_unless {
  bool ok;
  std::string reason;
  skip_unless(bool ok_, std::string reason_) : ok(ok_), reason(std::move(reason_)) {}
  void fill(doctest::detail::TestCase& tc) const {
    if (ok) return;
    tc.m_skip = true;
    skipped_cases().push_back({tc.m_name, tc.m_file.c_str(), tc.m_line, reason});
  }
};

}  // namespace neurn::testing
