// The main of every test binary: doctest, plus the visible skips of skip.h.
//   test_<suite> [doctest options]   runs the cases; each case skipped by
//                                    skip_unless prints "[skipped] <reason> | <case> (<file>:<line>)"
//                                    and the end of the run counts them by reason
//   test_<suite> --neurn-skips       lists the cases this machine skips and exits
//                                    with 77 (ctest's SKIP_RETURN_CODE) if there are any
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cctype>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "framework/blas_env.h"
#include "skip.h"

namespace {

using neurn::testing::SkippedCase;
using neurn::testing::skipped_cases;

// doctest's filters (-tc, -tce, -sf, -sfe; comma-separated wildcards), read
// again here so that a filtered run does not list the skips of cases it
// filtered out. doctest keeps its parsed filters private.
struct Filters {
  std::vector<std::string> tc, tce, sf, sfe;
};
Filters g_filters;

bool wildcard(const char* s, const char* w) {
  if (*w == '\0') return *s == '\0';
  if (*w == '*') return wildcard(s, w + 1) || (*s && wildcard(s + 1, w));
  if (*s == '\0') return false;
  bool same = *w == '?' || std::tolower(static_cast<unsigned char>(*w)) == std::tolower(static_cast<unsigned char>(*s));
  return same && wildcard(s + 1, w + 1);
}

bool matches_any(const std::string& s, const std::vector<std::string>& pats, bool empty_matches) {
  if (pats.empty()) return empty_matches;
  for (const auto& p : pats)
    if (wildcard(s.c_str(), p.c_str())) return true;
  return false;
}

void read_filters(int argc, char** argv) {
  auto split_into = [](const std::string& v, std::vector<std::string>& out) {
    size_t b = 0;
    while (b <= v.size()) {
      size_t e = v.find(',', b);
      if (e == std::string::npos) e = v.size();
      if (e > b) out.push_back(v.substr(b, e - b));
      b = e + 1;
    }
  };
  const std::pair<const char*, std::vector<std::string>*> keys[] = {
      {"-tc=", &g_filters.tc},          {"--test-case=", &g_filters.tc},
      {"-tce=", &g_filters.tce},        {"--test-case-exclude=", &g_filters.tce},
      {"-sf=", &g_filters.sf},          {"--source-file=", &g_filters.sf},
      {"-sfe=", &g_filters.sfe},        {"--source-file-exclude=", &g_filters.sfe},
      {"--dt-tc=", &g_filters.tc},      {"--dt-sf=", &g_filters.sf},
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    for (const auto& [k, out] : keys)
      if (a.rfind(k, 0) == 0) split_into(a.substr(std::strlen(k)), *out);
  }
}

bool passes_filters(const std::string& name, const std::string& file) {
  return matches_any(name, g_filters.tc, true) && !matches_any(name, g_filters.tce, false) &&
         matches_any(file, g_filters.sf, true) && !matches_any(file, g_filters.sfe, false);
}

const SkippedCase* find_skip(const doctest::TestCaseData& tc) {
  for (const auto& s : skipped_cases())
    if (s.line == tc.m_line && s.name == tc.m_name && s.file == tc.m_file.c_str()) return &s;
  return nullptr;
}

std::string line_of(const SkippedCase& s, const char* prefix) {
  std::string file = s.file;
#ifdef NEURN_SOURCE_DIR
  const std::string root = std::string(NEURN_SOURCE_DIR) + "/";
  if (file.rfind(root, 0) == 0) file = file.substr(root.size());
#endif
  return std::string(prefix) + " " + s.reason + " | " + s.name + " (" + file + ":" + std::to_string(s.line) + ")";
}

void print_counts(std::ostream& os, const std::map<std::string, int>& by_reason) {
  int total = 0;
  for (const auto& [r, n] : by_reason) total += n;
  if (total == 0) return;
  os << "[skipped] " << total << " test case" << (total == 1 ? "" : "s") << " skipped on this machine:\n";
  for (const auto& [r, n] : by_reason) os << "[skipped]   " << n << " x " << r << "\n";
}

// Prints each case that skip_unless switched off as doctest passes it, and
// the count per reason at the end.
struct SkipListener : doctest::IReporter {
  std::ostream& os;
  std::map<std::string, int> by_reason;
  explicit SkipListener(const doctest::ContextOptions& in) : os(*in.cout) {}

  void test_case_skipped(const doctest::TestCaseData& tc) override {
    if (!tc.m_skip) return;  // filtered out, not skipped
    const SkippedCase* s = find_skip(tc);
    if (!s || !passes_filters(s->name, s->file)) return;
    os << line_of(*s, "[skipped]") << "\n";
    ++by_reason[s->reason];
  }
  void test_run_end(const doctest::TestRunStats&) override { print_counts(os, by_reason); }

  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
};

REGISTER_LISTENER("neurn_skips", 1, SkipListener);

// --neurn-skips: the list for ctest's "<suite>.skipped" test.
int list_skips() {
  std::map<std::string, int> by_reason;
  for (const auto& s : skipped_cases()) {
    std::cout << line_of(s, "[skip list]") << "\n";
    ++by_reason[s.reason];
  }
  if (skipped_cases().empty()) {
    std::cout << "no test case of this binary is skipped on this machine\n";
    return 0;
  }
  print_counts(std::cout, by_reason);
  return 77;
}

}  // namespace

int main(int argc, char** argv) {
  neurn::ensure_blas_kernels(argc, argv);  // OpenBLAS's kernels for this CPU, if it misread the model
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--neurn-skips") == 0) return list_skips();
  read_filters(argc, argv);
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  return ctx.run();
}
