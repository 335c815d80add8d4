// MD5/SHA-256 against published test vectors; decompression, atomic writes
// and the tar extractor on archives made here.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>

#include "datasets/checksum.h"
#include "datasets/io.h"
#include "fixtures.h"
#include "gradcheck.h"

using namespace neurn::data;
using namespace neurn::data::testing;

TEST_CASE("md5: RFC 1321 test suite") {
  CHECK(md5_hex("", 0) == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(md5_hex("abc", 3) == "900150983cd24fb0d6963f7d28e17f72");
  CHECK(md5_hex("message digest", 14) == "f96b697d7cb7938d525a2f31aaf161d0");
  std::string digits;
  for (int i = 0; i < 8; ++i) digits += "1234567890";
  CHECK(md5_hex(digits.data(), digits.size()) == "57edf4a22be3c955ac49da2e2107b67a");
}

TEST_CASE("sha256: FIPS 180-2 examples, and streaming equals one shot") {
  CHECK(sha256_hex("", 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc", 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char* two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(sha256_hex(two, std::strlen(two)) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  Sha256 s;
  for (size_t off = 0; off < million.size(); off += 977)
    s.update(million.data() + off, std::min<size_t>(977, million.size() - off));
  CHECK(s.hex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  Md5 m;
  for (size_t off = 0; off < million.size(); off += 61)
    m.update(million.data() + off, std::min<size_t>(61, million.size() - off));
  CHECK(m.hex() == md5_hex(million.data(), million.size()));
}

TEST_CASE("read_decompressed: gzip, bzip2 and raw; truncated streams name the file") {
  TempDir dir;
  std::vector<uint8_t> raw;
  for (int i = 0; i < 100000; ++i) raw.push_back(static_cast<uint8_t>((i * 31) ^ (i >> 7)));
  write_bytes(dir / "a.gz", gzip_bytes(raw));
  write_bytes(dir / "a.bz2", bzip2_bytes(raw));
  write_bytes(dir / "a.raw", raw);
  CHECK(read_decompressed(dir / "a.gz") == raw);
  CHECK(read_decompressed(dir / "a.bz2") == raw);
  CHECK(read_decompressed(dir / "a.raw") == raw);
  auto gz = gzip_bytes(raw);
  gz.resize(gz.size() / 2);
  write_bytes(dir / "cut.gz", gz);
  CHECK_THROWS_CONTAINING(read_decompressed(dir / "cut.gz"), "cut.gz: truncated gzip stream");
  auto bz = bzip2_bytes(raw);
  bz.resize(bz.size() / 2);
  write_bytes(dir / "cut.bz2", bz);
  CHECK_THROWS_CONTAINING(read_decompressed(dir / "cut.bz2"), "cut.bz2");
  CHECK_THROWS_CONTAINING(read_file(dir / "missing.gz"), "missing.gz");
}

TEST_CASE("write_file_atomic: leaves only the final file") {
  TempDir dir;
  write_text(dir / "sub/x.txt", "hello");
  CHECK(read_file(dir / "sub/x.txt") == std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o'});
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir / "sub"))
    entries += (e.path().filename() == "x.txt") ? 1 : 100;
  CHECK(entries == 1);
}

namespace {
// A ustar member header + body, written the way tar does.
void tar_member(std::vector<uint8_t>& out, const std::string& name, const std::string& body, char type = '0') {
  char h[512] = {};
  std::snprintf(h, 100, "%s", name.c_str());
  std::snprintf(h + 100, 8, "%07o", 0644);
  std::snprintf(h + 108, 8, "%07o", 0);
  std::snprintf(h + 116, 8, "%07o", 0);
  std::snprintf(h + 124, 12, "%011lo", static_cast<unsigned long>(body.size()));
  std::snprintf(h + 136, 12, "%011o", 0);
  h[156] = type;
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < 512; ++i) sum += static_cast<uint8_t>(h[i]);
  std::snprintf(h + 148, 8, "%06o", sum);
  out.insert(out.end(), h, h + 512);
  out.insert(out.end(), body.begin(), body.end());
  out.resize((out.size() + 511) / 512 * 512, 0);
}
}  // namespace

TEST_CASE("extract_tar: ustar members, gzip, filter, GNU long names; unsafe paths and bad headers refused") {
  TempDir dir;
  std::vector<uint8_t> tar;
  tar_member(tar, "top/", "", '5');
  tar_member(tar, "top/a.txt", "alpha");
  tar_member(tar, "top/b.txt", std::string(1000, 'b'));
  std::string long_name = "top/" + std::string(150, 'L') + ".txt";
  tar_member(tar, "././@LongLink", long_name + '\0', 'L');
  tar_member(tar, long_name.substr(0, 99), "long");
  tar.resize(tar.size() + 1024, 0);
  write_bytes(dir / "t.tar.gz", gzip_bytes(tar));
  write_bytes(dir / "t.tar", tar);
  CHECK(extract_tar(dir / "t.tar.gz", dir / "out") == 3);
  CHECK(read_file(dir / "out/top/a.txt").size() == 5);
  CHECK(read_file(dir / "out/top/b.txt").size() == 1000);
  CHECK(read_file(dir / ("out/" + long_name)).size() == 4);
  CHECK(extract_tar(dir / "t.tar", dir / "out2",
                    [](const std::string& m) { return m.find("b.txt") != std::string::npos; }) == 1);
  CHECK(!file_exists(dir / "out2/top/a.txt"));

  std::vector<uint8_t> evil;
  tar_member(evil, "../escape.txt", "x");
  write_bytes(dir / "evil.tar", evil);
  CHECK_THROWS_CONTAINING(extract_tar(dir / "evil.tar", dir / "out3"), "unsafe path");
  std::vector<uint8_t> bad = tar;
  bad[0] ^= 0x55;  // breaks the header checksum
  write_bytes(dir / "bad.tar", bad);
  CHECK_THROWS_CONTAINING(extract_tar(dir / "bad.tar", dir / "out4"), "bad tar header checksum");
  std::vector<uint8_t> cut(tar.begin(), tar.begin() + 512 + 100);
  write_bytes(dir / "cut.tar", cut);
  CHECK_THROWS_CONTAINING(extract_tar(dir / "cut.tar", dir / "out5"), "truncated archive");
}
