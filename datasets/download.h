#pragma once
// Downloads of the official dataset files through libcurl: into DEST.part
// (resumed when a partial file is there), with a progress line (bytes, rate,
// ETA), connect and stall timeouts, and the file's check run on DEST.part
// before it is renamed to DEST. No shell is involved, so any character in a
// path or URL is safe.
#include <cstdint>
#include <functional>
#include <string>

namespace neurn::data {

struct DownloadOptions {
  long connect_timeout_s = 20;  // to reach the host
  // A transfer slower than stall_bytes_per_s for stall_s seconds is abandoned
  // (the server stopped sending); the .part file stays for a resume.
  long stall_s = 60;
  long stall_bytes_per_s = 1;
  // Called with a progress line ("12.3 MB of 70.0 MB (17%), 1.2 MB/s, ETA 48 s")
  // at most a few times a second and once at the end. Null: a line rewritten
  // in place on stderr when stderr is a terminal, nothing otherwise.
  std::function<void(const std::string&)> progress;
};

// Returns "" when DEST holds the file, else what went wrong (the caller may
// try another URL). `check(path)` returns "" or what is wrong with the bytes
// at path (a checksum mismatch): a failed check removes DEST.part, and when
// the bytes had been resumed from an earlier partial file the download is
// restarted once from zero (the old part may have come from elsewhere).
std::string download_file(const std::string& url, const std::string& dest,
                          const std::function<std::string(const std::string&)>& check,
                          const std::function<void(const std::string&)>& log, const DownloadOptions& opt = {});

// "12.3 MB of 70.0 MB (17%), 1.2 MB/s, ETA 48 s"; total 0: unknown size.
std::string progress_line(uint64_t done, uint64_t total, double bytes_per_s);

// file:// URL of a local path, percent-encoded (tests, local mirrors).
std::string file_url(const std::string& path);

}  // namespace neurn::data
