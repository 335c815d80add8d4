#pragma once
// Gradient checking for the op tests: analytic gradients against central
// differences in float64, through a random projection of the output
// (L = sum(f(x) * R)), with a tolerance scaled to the values.
#include <doctest/doctest.h>

#include <string>

#include "framework/gradcheck.h"

namespace neurn::testing {

// The checker itself lives in framework/gradcheck.h (public); the tests use
// it from here, with the doctest assertions below.
using neurn::accumulates;
using neurn::gradcheck;
using neurn::GradcheckResult;
using neurn::leaf;
using neurn::leaf_away_from;
using neurn::OpFn;

#define CHECK_GRADCHECK(res) \
  do {                       \
    auto r_ = (res);         \
    INFO(r_.message);        \
    CHECK(r_.ok);            \
  } while (0)

// Asserts that `expr` throws neurn::Error with a message containing `needle`.
#define CHECK_THROWS_CONTAINING(expr, needle)                                          \
  do {                                                                               \
    bool thrown_ = false;                                                            \
    try {                                                                            \
      (void)(expr);                                                                  \
    } catch (const ::neurn::Error& e_) {                                             \
      thrown_ = true;                                                                \
      INFO("message: " << std::string(e_.what()));                                   \
      CHECK(std::string(e_.what()).find(needle) != std::string::npos);               \
    }                                                                                \
    CHECK_MESSAGE(thrown_, "expected neurn::Error containing: " << needle);         \
  } while (0)

}  // namespace neurn::testing
