#include "datasets/checksum.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <cstdio>
#include <vector>

#include "framework/error.h"

namespace neurn::data {
namespace {

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "no OpenSSL error queued";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

}  // namespace

struct Digest::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Digest::Digest(const char* algorithm) : ctx_(std::make_unique<Ctx>()), algorithm_(algorithm) {
  const EVP_MD* md = EVP_get_digestbyname(algorithm);
  NEURN_CHECK(md, "checksum: OpenSSL has no digest '", algorithm, "'");
  ctx_->md = EVP_MD_CTX_new();
  NEURN_CHECK(ctx_->md && EVP_DigestInit_ex(ctx_->md, md, nullptr) == 1, "checksum: cannot start ", algorithm, ": ",
              openssl_error());
}

Digest::~Digest() = default;
Digest::Digest(Digest&&) noexcept = default;
Digest& Digest::operator=(Digest&&) noexcept = default;

void Digest::update(const void* data, size_t n) {
  NEURN_CHECK(ctx_ && !finished_, "checksum: ", algorithm_, " updated after hex() finished it");
  if (n == 0) return;
  NEURN_CHECK(EVP_DigestUpdate(ctx_->md, data, n) == 1, "checksum: ", algorithm_, " update failed: ", openssl_error());
}

std::string Digest::hex() {
  NEURN_CHECK(ctx_ && !finished_, "checksum: ", algorithm_, " finished twice");
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  NEURN_CHECK(EVP_DigestFinal_ex(ctx_->md, out, &len) == 1, "checksum: ", algorithm_, " failed: ", openssl_error());
  finished_ = true;
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    s += digits[out[i] >> 4];
    s += digits[out[i] & 15];
  }
  return s;
}

std::string md5_hex(const void* data, size_t n) {
  Md5 m;
  m.update(data, n);
  return m.hex();
}

std::string sha256_hex(const void* data, size_t n) {
  Sha256 s;
  s.update(data, n);
  return s.hex();
}

namespace {
std::string hash_file(const std::string& path, Digest h) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  NEURN_CHECK(f, "checksum: cannot open ", path);
  std::vector<unsigned char> buf(1 << 20);
  size_t got;
  while ((got = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) h.update(buf.data(), got);
  NEURN_CHECK(!std::ferror(f.get()), "checksum: read error in ", path);
  return h.hex();
}
}  // namespace

std::string sha256_file(const std::string& path) { return hash_file(path, Sha256()); }
std::string md5_file(const std::string& path) { return hash_file(path, Md5()); }

}  // namespace neurn::data
