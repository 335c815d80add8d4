#include "datasets/download.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "framework/error.h"

namespace fs = std::filesystem;

namespace neurn::data {
namespace {

// curl_global_init is not thread-safe: once, before the first handle.
void curl_init_once() {
  static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  NEURN_CHECK(ok, "download: curl_global_init failed");
}

std::string human_bytes(double b) {
  char buf[32];
  if (b >= 1e9)
    std::snprintf(buf, sizeof(buf), "%.2f GB", b / 1e9);
  else if (b >= 1e6)
    std::snprintf(buf, sizeof(buf), "%.1f MB", b / 1e6);
  else if (b >= 1e3)
    std::snprintf(buf, sizeof(buf), "%.1f kB", b / 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%.0f B", b);
  return buf;
}

std::string human_seconds(double s) {
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof(buf), "%.0f s", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof(buf), "%d min %02d s", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else
    std::snprintf(buf, sizeof(buf), "%d h %02d min", static_cast<int>(s) / 3600, static_cast<int>(s) % 3600 / 60);
  return buf;
}

struct Transfer {
  FILE* out = nullptr;
  uint64_t resumed_at = 0;  // bytes already in the .part file
  std::chrono::steady_clock::time_point start, last_report;
  std::function<void(const std::string&)> progress;
  uint64_t done = 0, total = 0;
  bool write_failed = false;
};

size_t on_data(char* p, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t bytes = size * n;
  if (std::fwrite(p, 1, bytes, t->out) != bytes) {
    t->write_failed = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  return bytes;
}

double rate_of(const Transfer& t) {
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t.start).count();
  return s > 0 ? static_cast<double>(t.done - t.resumed_at) / s : 0;
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  // curl counts this transfer only; the part file's bytes come first.
  t->done = t->resumed_at + static_cast<uint64_t>(dlnow);
  t->total = dltotal > 0 ? t->resumed_at + static_cast<uint64_t>(dltotal) : 0;
  auto now = std::chrono::steady_clock::now();
  if (t->progress && now - t->last_report > std::chrono::milliseconds(300)) {
    t->last_report = now;
    t->progress(progress_line(t->done, t->total, rate_of(*t)));
  }
  return 0;
}

uint64_t file_size_or_zero(const std::string& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : static_cast<uint64_t>(n);
}

// fsync of the file, the rename, fsync of the folder: the final name appears
// only with its whole content, also across a power cut.
std::string durable_rename(const std::string& from, const std::string& to) {
  int fd = ::open(from.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return "cannot sync " + from + " (" + why + ")";
  }
  ::close(fd);
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) return "cannot rename " + from + " to " + to + " (" + ec.message() + ")";
  std::string dir = fs::path(to).has_parent_path() ? fs::path(to).parent_path().string() : ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return "";
}

// One attempt: appends to (or starts) `part`. Returns "" or the reason.
std::string transfer(const std::string& url, const std::string& part, bool resume, const DownloadOptions& opt,
                     const std::function<void(const std::string&)>& progress, uint64_t* resumed_at) {
  curl_init_once();
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return "curl_easy_init failed";
  Transfer t;
  t.resumed_at = resume ? file_size_or_zero(part) : 0;
  *resumed_at = t.resumed_at;
  t.out = std::fopen(part.c_str(), t.resumed_at ? "ab" : "wb");
  if (!t.out) return "cannot write " + part + " (" + std::strerror(errno) + ")";
  t.start = t.last_report = std::chrono::steady_clock::now();
  t.progress = progress;
  char err[CURL_ERROR_SIZE] = "";
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);  // an HTTP 404 page is not the file
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, opt.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, opt.stall_bytes_per_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, opt.stall_s);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "neurn-data-prepare");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  if (t.resumed_at) curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(t.resumed_at));
  CURLcode rc = curl_easy_perform(c);
  bool closed = std::fclose(t.out) == 0;
  if (t.write_failed || !closed) return "cannot write " + part + " (disk full?)";
  if (rc != CURLE_OK) {
    long http = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
    std::string why = std::string(curl_easy_strerror(rc)) + (err[0] ? std::string(": ") + err : "");
    if (http >= 400) why += " (HTTP " + std::to_string(http) + ")";
    if (rc == CURLE_COULDNT_RESOLVE_HOST) why += "; no network?";
    return why;
  }
  if (progress) {
    uint64_t size = file_size_or_zero(part);
    t.done = size;
    progress(progress_line(size, size, rate_of(t)));
  }
  return "";
}

void default_progress(const std::string& line) {
  if (!::isatty(2)) return;
  std::fprintf(stderr, "\r  %-72s", line.c_str());
  std::fflush(stderr);
}

}  // namespace

std::string progress_line(uint64_t done, uint64_t total, double bytes_per_s) {
  std::string s = human_bytes(static_cast<double>(done));
  if (total > 0) {
    s += " of " + human_bytes(static_cast<double>(total));
    s += " (" + std::to_string(done >= total ? 100 : done * 100 / total) + "%)";
  }
  s += ", " + human_bytes(bytes_per_s) + "/s";
  if (total > 0 && done < total && bytes_per_s > 0)
    s += ", ETA " + human_seconds(static_cast<double>(total - done) / bytes_per_s);
  return s;
}

std::string file_url(const std::string& path) {
  std::string abs = fs::absolute(path).lexically_normal().string();
  std::string out = "file://";
  static const char* hex = "0123456789ABCDEF";
  for (unsigned char ch : abs) {
    if (std::isalnum(ch) || ch == '/' || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

std::string download_file(const std::string& url, const std::string& dest,
                          const std::function<std::string(const std::string&)>& check,
                          const std::function<void(const std::string&)>& log, const DownloadOptions& opt) {
  std::string part = dest + ".part";
  std::error_code ec;
  if (fs::path(dest).has_parent_path()) fs::create_directories(fs::path(dest).parent_path(), ec);
  auto progress = opt.progress ? opt.progress : std::function<void(const std::string&)>(&default_progress);
  bool resume = file_size_or_zero(part) > 0;
  for (int attempt = 0; attempt < 2; ++attempt) {
    uint64_t resumed_at = 0;
    if (resume) log("  resuming " + url + " at byte " + std::to_string(file_size_or_zero(part)) + " (" + part + ")");
    else log("  downloading " + url);
    std::string why = transfer(url, part, resume, opt, progress, &resumed_at);
    if (!opt.progress && ::isatty(2)) std::fprintf(stderr, "\n");
    if (!why.empty() && resumed_at > 0) {
      // The server would not resume (no ranges, or the part is longer than
      // the file): start again from zero.
      log("  cannot resume (" + why + "); starting again from zero");
      resume = false;
      continue;
    }
    if (!why.empty()) return url + ": " + why + (file_size_or_zero(part) ? " (partial file kept: " + part + ")" : "");
    std::string bad = check ? check(part) : "";
    if (!bad.empty()) {
      fs::remove(part, ec);
      if (resumed_at > 0) {
        log("  " + part + " (resumed): " + bad + "; starting again from zero");
        resume = false;
        continue;
      }
      return url + ": " + bad + " (the download was removed)";
    }
    return durable_rename(part, dest);
  }
  return url + ": failed after a restart from zero";
}

}  // namespace neurn::data
