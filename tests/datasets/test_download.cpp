// Downloads through libcurl, on file:// URLs and a local socket (no network):
// the .part file and its resume, the check before the final rename, paths
// with quotes (the old shell command broke on them), the progress line and
// the stall timeout.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "datasets/checksum.h"
#include "datasets/download.h"
#include "fixtures.h"
#include "gradcheck.h"

using namespace neurn::data;
using namespace neurn::data::testing;

namespace {
std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>((i * 131) ^ (i >> 9));
  return b;
}
std::string sha_check_for(const std::vector<uint8_t>& want, const std::string& path) {
  std::string got = sha256_file(path), expected = sha256_hex(want.data(), want.size());
  return got == expected ? "" : "sha256 mismatch: got " + got + ", expected " + expected;
}
}  // namespace

TEST_CASE("download_file: file:// into a folder with quotes and spaces; checked before the rename") {
  TempDir dir;
  std::string odd = dir / "it's a \"data\" root $(touch pwned)";
  std::vector<uint8_t> src = pattern(300000);
  write_bytes(odd + "/source file.bin", src);
  std::string url = file_url(odd + "/source file.bin");
  CHECK(url.find("%27") != std::string::npos);  // the quote, encoded
  std::vector<std::string> log, progress;
  DownloadOptions opt;
  opt.progress = [&](const std::string& l) { progress.push_back(l); };
  auto logf = [&](const std::string& l) { log.push_back(l); };
  std::string dest = odd + "/mnist/x.bin";
  auto check = [&](const std::string& p) {
    CHECK(p == dest + ".part");  // the check sees the part, not the final name
    CHECK(!file_exists(dest));
    return sha_check_for(src, p);
  };
  CHECK(download_file(url, dest, check, logf, opt) == "");
  CHECK(read_file(dest) == src);
  CHECK(!file_exists(dest + ".part"));
  CHECK(!std::filesystem::exists("pwned"));
  REQUIRE(!progress.empty());
  CHECK(progress.back().find("of 300.0 kB (100%)") != std::string::npos);
  REQUIRE(!log.empty());
  CHECK(log[0].find("downloading " + url) != std::string::npos);

  // A check that fails: nothing under the final name, the part removed.
  std::string dest2 = odd + "/y.bin";
  std::string why = download_file(url, dest2, [](const std::string&) { return std::string("sha256 mismatch: got 00"); },
                                  logf, opt);
  CHECK(why.find("sha256 mismatch: got 00 (the download was removed)") != std::string::npos);
  CHECK(why.find(url) == 0);
  CHECK(!file_exists(dest2));
  CHECK(!file_exists(dest2 + ".part"));

  // A missing source names the URL and curl's reason.
  std::string missing = download_file(file_url(odd + "/absent.bin"), dest2, nullptr, logf, opt);
  CHECK(missing.find("absent.bin") != std::string::npos);
  CHECK(missing.find("Couldn't read a file") != std::string::npos);
  CHECK(!file_exists(dest2));
}

TEST_CASE("download_file: resumes a partial file; restarts from zero when the resumed bytes fail the check") {
  TempDir dir;
  std::vector<uint8_t> src = pattern(200000);
  write_bytes(dir / "src.bin", src);
  std::string url = file_url(dir / "src.bin");
  std::vector<std::string> log;
  auto logf = [&](const std::string& l) { log.push_back(l); };
  DownloadOptions opt;
  opt.progress = [](const std::string&) {};

  // A part holding different first bytes: without a check, the result is the
  // part followed by the source's tail, which shows the bytes were resumed.
  std::vector<uint8_t> stale(80000, 0xEE);
  write_bytes(dir / "a.bin.part", stale);
  REQUIRE(download_file(url, dir / "a.bin", nullptr, logf, opt) == "");
  std::vector<uint8_t> spliced = stale;
  spliced.insert(spliced.end(), src.begin() + 80000, src.end());
  CHECK(read_file(dir / "a.bin") == spliced);
  CHECK(log.back().find("resuming " + url + " at byte 80000") != std::string::npos);

  // The same part with the checksum of the real file: resumed, refused, redone.
  log.clear();
  write_bytes(dir / "b.bin.part", stale);
  REQUIRE(download_file(url, dir / "b.bin", [&](const std::string& p) { return sha_check_for(src, p); }, logf, opt) ==
          "");
  CHECK(read_file(dir / "b.bin") == src);
  REQUIRE(log.size() == 3);
  CHECK(log[1].find("(resumed): sha256 mismatch") != std::string::npos);
  CHECK(log[2].find("downloading " + url) != std::string::npos);

  // A correct half part: resumed into the right file.
  log.clear();
  write_bytes(dir / "c.bin.part", std::vector<uint8_t>(src.begin(), src.begin() + 123457));
  REQUIRE(download_file(url, dir / "c.bin", [&](const std::string& p) { return sha_check_for(src, p); }, logf, opt) ==
          "");
  CHECK(read_file(dir / "c.bin") == src);
  CHECK(log.size() == 1);

  // A part longer than the file cannot be resumed: started again.
  log.clear();
  write_bytes(dir / "d.bin.part", pattern(250000));
  REQUIRE(download_file(url, dir / "d.bin", [&](const std::string& p) { return sha_check_for(src, p); }, logf, opt) ==
          "");
  CHECK(read_file(dir / "d.bin") == src);
  CHECK(log.size() == 3);
  CHECK(log[1].find("cannot resume") != std::string::npos);
}

TEST_CASE("download_file: a server that stops sending is abandoned after the stall timeout, the part kept") {
  // A local socket that accepts and never answers.
  int srv = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(srv >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  REQUIRE(::bind(srv, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(::listen(srv, 4) == 0);
  socklen_t len = sizeof(a);
  REQUIRE(::getsockname(srv, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  int port = ntohs(a.sin_port);
  std::atomic<bool> stop{false};
  std::thread server([&] {
    int c = ::accept(srv, nullptr, nullptr);
    while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (c >= 0) ::close(c);
  });
  TempDir dir;
  DownloadOptions opt;
  opt.stall_s = 1;
  opt.stall_bytes_per_s = 1;
  opt.progress = [](const std::string&) {};
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/mnist.gz";
  std::string why = download_file(url, dir / "m.gz", nullptr, [](const std::string&) {}, opt);
  stop = true;
  ::shutdown(srv, SHUT_RDWR);
  ::close(srv);
  server.join();
  CHECK(why.find(url) == 0);
  CHECK(why.find("Timeout was reached") != std::string::npos);
  CHECK(!file_exists(dir / "m.gz"));
}

TEST_CASE("progress_line: bytes, percentage, rate and ETA") {
  CHECK(progress_line(12300000, 70000000, 1200000) == "12.3 MB of 70.0 MB (17%), 1.2 MB/s, ETA 48 s");
  CHECK(progress_line(500, 0, 250) == "500 B, 250 B/s");
  CHECK(progress_line(1000000, 1000000, 2e6) == "1.0 MB of 1.0 MB (100%), 2.0 MB/s");
  CHECK(progress_line(0, 3600000000, 1e6) == "0 B of 3.60 GB (0%), 1.0 MB/s, ETA 1 h 00 min");
  CHECK(progress_line(0, 90000, 1000) == "0 B of 90.0 kB (0%), 1.0 kB/s, ETA 1 min 30 s");
}
