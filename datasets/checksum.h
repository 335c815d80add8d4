#pragma once
// MD5 (RFC 1321) and SHA-256 (FIPS 180-4), streaming. MD5 is here only
// because the published MNIST checksums are MD5s of the decompressed files.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace neurn::data {

class Md5 {
 public:
  Md5();
  void update(const void* data, size_t n);
  std::string hex();  // finishes; the object is spent afterwards

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 4> h_;
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  std::string hex();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string md5_hex(const void* data, size_t n);
std::string sha256_hex(const void* data, size_t n);
// Of a file's bytes as stored (streamed; throws naming the file).
std::string sha256_file(const std::string& path);
std::string md5_file(const std::string& path);

}  // namespace neurn::data
