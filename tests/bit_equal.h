#pragma once
// Bit-for-bit comparison of results, for the tests that pin a kernel's
// order of operations (a faster loop must give the plain loop's bits).
#include <cstdint>
#include <cstring>
#include <vector>

namespace neurn::testing {

// How many elements of a and b differ in their bits (a NaN equals a NaN of
// the same bits; +0 and -0 differ); -1 if the sizes differ.
template <typename T>
int64_t bit_mismatches(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return -1;
  int64_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i) bad += std::memcmp(&a[i], &b[i], sizeof(T)) != 0;
  return bad;
}

}  // namespace neurn::testing
