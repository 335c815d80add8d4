#pragma once
// What the harnesses share: a scratch folder per fuzzing process, writing
// the input where a reader expects a file, and the one rule of every
// harness: bad input may only end in neurn::Error (a clear message). Any
// other exception escapes and is reported by libFuzzer as a crash, as are
// sanitizer findings, timeouts and leaks.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "framework/error.h"

namespace neurn::fuzz {

inline const std::string& scratch() {
  static const std::string dir = [] {
    std::string d = std::filesystem::temp_directory_path().string() + "/neurn_fuzz_" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// Writes [data, data + size) to scratch()/name and returns the path.
inline std::string put(const std::string& name, const uint8_t* data, size_t size) {
  std::string path = scratch() + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

template <typename F>
void expect_clear_errors(F&& f) {
  try {
    f();
  } catch (const neurn::Error&) {
    // the expected outcome of most inputs: a message naming what is wrong
  }
}

}  // namespace neurn::fuzz
