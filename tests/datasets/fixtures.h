#pragma once
// Helpers for the datasets tests: temporary folders, small fixture files in
// the official formats, and where the shared real copies are.
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/io.h"

namespace neurn::data::testing {

// A fresh folder under /tmp, removed with everything in it at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/neurn_data_test_XXXXXX";
    char* p = mkdtemp(tmpl);
    path = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& rel) const { return path_join(path, rel); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  write_file_atomic(path, b.data(), b.size());
}
inline void write_text(const std::string& path, const std::string& s) { write_file_atomic(path, s.data(), s.size()); }

inline void put_be32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 3; i >= 0; --i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// An IDX image file of n images of h x w; pixel (i, p) = (i * 7 + p) % 256.
inline std::vector<uint8_t> idx_images(uint32_t n, uint32_t h, uint32_t w, uint32_t magic = 2051) {
  std::vector<uint8_t> b;
  put_be32(b, magic);
  put_be32(b, n);
  put_be32(b, h);
  put_be32(b, w);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t p = 0; p < h * w; ++p) b.push_back(static_cast<uint8_t>((i * 7 + p) % 256));
  return b;
}
inline std::vector<uint8_t> idx_labels(const std::vector<uint8_t>& labels, uint32_t magic = 2049) {
  std::vector<uint8_t> b;
  put_be32(b, magic);
  put_be32(b, static_cast<uint32_t>(labels.size()));
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

// gzip-compresses bytes (zlib's gz writer) into `path`.
std::vector<uint8_t> gzip_bytes(const std::vector<uint8_t>& raw);
std::vector<uint8_t> bzip2_bytes(const std::vector<uint8_t>& raw);

// ../shared/data beside the project, or "" (tests that need it then skip visibly).
std::string shared_data();

}  // namespace neurn::data::testing
