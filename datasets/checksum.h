#pragma once
// MD5 and SHA-256, streaming, computed by OpenSSL's libcrypto (EVP). MD5 is
// here only because the published MNIST checksums are MD5s of the
// decompressed files.
#include <cstddef>
#include <memory>
#include <string>

namespace neurn::data {

// One running digest. `algorithm` is an OpenSSL digest name ("MD5", "SHA256").
class Digest {
 public:
  explicit Digest(const char* algorithm);
  ~Digest();
  Digest(Digest&&) noexcept;
  Digest& operator=(Digest&&) noexcept;
  void update(const void* data, size_t n);
  std::string hex();  // finishes; the object is spent afterwards

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
  std::string algorithm_;
  bool finished_ = false;
};

class Md5 : public Digest {
 public:
  Md5() : Digest("MD5") {}
};

class Sha256 : public Digest {
 public:
  Sha256() : Digest("SHA256") {}
};

std::string md5_hex(const void* data, size_t n);
std::string sha256_hex(const void* data, size_t n);
// Of a file's bytes as stored (streamed; throws naming the file).
std::string sha256_file(const std::string& path);
std::string md5_file(const std::string& path);

}  // namespace neurn::data
