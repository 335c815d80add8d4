// MD5/SHA-256 against published test vectors; decompression, atomic writes
// and archive extraction (libarchive) on archives made here, crafted ones included.
#include <archive.h>
#include <archive_entry.h>
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
  CHECK_THROWS_CONTAINING(extract_tar(dir / "bad.tar", dir / "out4"), "bad.tar: cannot read as a tar or zip archive");
  std::vector<uint8_t> cut(tar.begin(), tar.begin() + 512 * 4 + 100);  // inside b.txt's body
  write_bytes(dir / "cut.tar", cut);
  CHECK_THROWS_CONTAINING(extract_tar(dir / "cut.tar", dir / "out5"), "cut.tar: corrupt or truncated data in member 'top/b.txt'");
}

namespace {
// A pax extended header member ('x') with the given records, then a file.
std::vector<uint8_t> pax_tar(const std::string& records, const std::string& file_name) {
  std::vector<uint8_t> t;
  tar_member(t, "PaxHeaders/x", records, 'x');
  tar_member(t, file_name, "data");
  t.resize(t.size() + 1024, 0);
  return t;
}
}  // namespace

// Issue #16: a pax record of length 0 looped forever in the hand-written
// extractor, and a malformed length threw std::invalid_argument, which no
// command caught. Both are now errors naming the archive (and return).
TEST_CASE("extract_tar: malformed pax records are errors naming the archive, not a hang or a stray exception") {
  TempDir dir;
  write_bytes(dir / "ok.tar", pax_tar("19 path=top/ok.txt\n", "short"));
  CHECK(extract_tar(dir / "ok.tar", dir / "ok") == 1);
  CHECK(read_file(dir / "ok/top/ok.txt").size() == 4);  // the pax path wins over the header's

  write_bytes(dir / "zero.tar", pax_tar("0 path=a\n", "a.txt"));
  CHECK_THROWS_CONTAINING(extract_tar(dir / "zero.tar", dir / "o1"), "zero.tar: corrupt or truncated archive");
  write_bytes(dir / "letters.tar", pax_tar("abc path=a\n", "a.txt"));
  CHECK_THROWS_CONTAINING(extract_tar(dir / "letters.tar", dir / "o2"), "letters.tar: corrupt or truncated archive");
  write_bytes(dir / "huge.tar", pax_tar("99999999999999999999999 path=a\n", "a.txt"));
  CHECK_THROWS_CONTAINING(extract_tar(dir / "huge.tar", dir / "o3"), "huge.tar: corrupt or truncated archive");
  write_bytes(dir / "long.tar", pax_tar("40 path=a\n", "a.txt"));  // longer than the records
  CHECK_THROWS_CONTAINING(extract_tar(dir / "long.tar", dir / "o4"), "long.tar: corrupt or truncated archive");
  CHECK(!file_exists(dir / "o1/a.txt"));
  CHECK(!file_exists(dir / "o2/a.txt"));
}

TEST_CASE("extract_tar: members escaping the destination are refused; links are not extracted") {
  TempDir dir;
  for (std::string bad : {"../escape.txt", "a/../../escape.txt", "/tmp/neurn_abs_escape.txt", "a/..", "..\\x.txt"}) {
    std::vector<uint8_t> t;
    tar_member(t, bad, "x");
    write_bytes(dir / "evil.tar", t);
    INFO("member " << bad);
    CHECK_THROWS_CONTAINING(extract_tar(dir / "evil.tar", dir / "out"), "evil.tar: refusing member with unsafe path");
  }
  // The same through a pax path record (the header's own name is harmless).
  write_bytes(dir / "pax_evil.tar", pax_tar("25 path=../../escape.txt\n", "fine.txt"));
  CHECK_THROWS_CONTAINING(extract_tar(dir / "pax_evil.tar", dir / "out"), "unsafe path '../../escape.txt'");
  CHECK(!file_exists(dir / "escape.txt"));
  CHECK(!file_exists("/tmp/neurn_abs_escape.txt"));
  // A symlink member pointing outside, then a file through it: the link is
  // not made, so the file lands inside as a plain path.
  std::vector<uint8_t> t;
  {
    std::vector<uint8_t> link;
    tar_member(link, "up", "", '2');
    std::memcpy(link.data() + 157, "..", 2);  // linkname
    // the checksum covers the link name: recompute it
    std::memset(link.data() + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; ++i) sum += link[i];
    std::snprintf(reinterpret_cast<char*>(link.data()) + 148, 8, "%06o", sum);
    t = link;
  }
  tar_member(t, "up/inside.txt", "y");
  t.resize(t.size() + 1024, 0);
  write_bytes(dir / "link.tar", t);
  CHECK(extract_tar(dir / "link.tar", dir / "lk") == 1);
  CHECK(std::filesystem::is_directory(dir / "lk/up"));
  CHECK(!std::filesystem::is_symlink(dir / "lk/up"));
}

TEST_CASE("extract_archive: tar.bz2 and zip, recognised from the bytes") {
  TempDir dir;
  std::vector<uint8_t> tar;
  tar_member(tar, "d/a.txt", "alpha");
  tar_member(tar, "d/b.bin", std::string(70000, 'z'));
  tar.resize(tar.size() + 1024, 0);
  write_bytes(dir / "t.tar.bz2", bzip2_bytes(tar));
  CHECK(extract_archive(dir / "t.tar.bz2", dir / "bz") == 2);
  CHECK(read_file(dir / "bz/d/b.bin").size() == 70000);

  // A zip written by libarchive (deflate), with one member outside "d/".
  std::vector<uint8_t> zip(1 << 20);
  size_t used = 0;
  {
    archive* w = archive_write_new();
    REQUIRE(archive_write_set_format_zip(w) == ARCHIVE_OK);
    REQUIRE(archive_write_open_memory(w, zip.data(), zip.size(), &used) == ARCHIVE_OK);
    for (auto [name, body] : std::vector<std::pair<std::string, std::string>>{
             {"d/one.txt", "one"}, {"d/two.txt", std::string(5000, '2')}, {"other.txt", "no"}}) {
      archive_entry* e = archive_entry_new();
      archive_entry_set_pathname(e, name.c_str());
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, 0644);
      archive_entry_set_size(e, static_cast<la_int64_t>(body.size()));
      REQUIRE(archive_write_header(w, e) == ARCHIVE_OK);
      REQUIRE(archive_write_data(w, body.data(), body.size()) == static_cast<la_ssize_t>(body.size()));
      archive_entry_free(e);
    }
    REQUIRE(archive_write_close(w) == ARCHIVE_OK);
    archive_write_free(w);
  }
  zip.resize(used);
  write_bytes(dir / "z.zip", zip);
  CHECK(extract_archive(dir / "z.zip", dir / "zz", [](const std::string& m) { return m.rfind("d/", 0) == 0; }) == 2);
  CHECK(read_file(dir / "zz/d/two.txt").size() == 5000);
  CHECK(!file_exists(dir / "zz/other.txt"));
  write_bytes(dir / "junk.zip", std::vector<uint8_t>(300, 'j'));
  CHECK_THROWS_CONTAINING(extract_archive(dir / "junk.zip", dir / "jj"), "junk.zip: cannot read as a tar or zip archive");
  CHECK_THROWS_CONTAINING(extract_archive(dir / "absent.tgz", dir / "jj"), "absent.tgz");
}
