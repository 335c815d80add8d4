// framework/blas_env.h: the test binaries start through ensure_blas_kernels
// (tests/test_main.cpp), so by the time a case runs OpenBLAS must be on
// kernels this CPU supports at their best width: nothing left to suggest,
// unless the user chose the kernels (OPENBLAS_CORETYPE given outside, or
// NEURN_KEEP_BLAS_CORE=1).
#include <doctest/doctest.h>

#include <cblas.h>

#include <cstdlib>
#include <string>

#include "framework/blas_env.h"

TEST_CASE("blas_env: OpenBLAS runs kernels the CPU supports at their widest (the test main re-executed if it had not)") {
  const neurn::BlasCore b = neurn::blas_core();
  INFO("OpenBLAS kernels: " << b.chosen << ", suggested: " << (b.suggested.empty() ? "(none)" : b.suggested));
  CHECK_FALSE(b.chosen.empty());
  CHECK(b.chosen == std::string(openblas_get_corename()));
  const char* keep = std::getenv("NEURN_KEEP_BLAS_CORE");
  const bool user_kept = keep != nullptr && std::string(keep) == "1";
  // OPENBLAS_CORETYPE set outside neurn (not by its restart, which also sets
  // NEURN_BLAS_CORE_SET) is the user's choice, kept as given.
  const bool user_chose = std::getenv("OPENBLAS_CORETYPE") != nullptr && std::getenv("NEURN_BLAS_CORE_SET") == nullptr;
  if (user_kept || user_chose) {
    if (!b.suggested.empty())
      MESSAGE("OpenBLAS runs ", b.chosen, " as OPENBLAS_CORETYPE / NEURN_KEEP_BLAS_CORE say; the CPU supports ", b.suggested);
  } else {
    CHECK_MESSAGE(b.suggested.empty(), "OpenBLAS is on ", b.chosen, " though the CPU supports ", b.suggested);
  }
}

