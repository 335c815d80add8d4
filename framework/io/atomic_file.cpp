#include "framework/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <unordered_set>

#include "framework/error.h"

namespace fs = std::filesystem;

namespace neurn::io {
namespace {

std::atomic<uint64_t> g_steps{0};

// With NEURN_FAULT_STEPS_FILE set, the number of steps is written there when
// the process exits normally (the crash test spreads its kill points over it).
void report_steps() {
  const char* f = std::getenv("NEURN_FAULT_STEPS_FILE");
  if (!f || !*f) return;
  if (std::FILE* out = std::fopen(f, "w")) {
    std::fprintf(out, "%llu\n", static_cast<unsigned long long>(g_steps.load()));
    std::fclose(out);
  }
}

uint64_t kill_at() {
  static const uint64_t k = [] {
    if (const char* f = std::getenv("NEURN_FAULT_STEPS_FILE"); f && *f) std::atexit(report_steps);
    const char* e = std::getenv("NEURN_FAULT_KILL_AT");
    return e && *e ? std::strtoull(e, nullptr, 10) : 0ull;
  }();
  return k;
}

// One step of a write; the crash tests end the process here.
void step() {
  uint64_t s = ++g_steps;
  if (kill_at() != 0 && s == kill_at()) ::raise(SIGKILL);
}

std::string errno_str(int e) { return std::strerror(e); }

void make_parent(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  fs::create_directories(parent, ec);
  NEURN_CHECK(!ec, "cannot create directory ", parent.string(), " for ", path, ": ", ec.message());
}

// Writes all of [data, data + n) to fd; returns 0 or the errno of the failure.
int write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno;
    if (w == 0) return EIO;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return 0;
}

// A rename or a new file is durable only once its folder's entry is on disk.
void fsync_parent(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  std::string dir = parent.empty() ? "." : parent.string();
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  NEURN_CHECK(fd >= 0, "cannot open folder ", dir, " to fsync it after writing ", path, ": ", errno_str(errno));
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  // Some file systems (and /proc-like ones) refuse fsync on a folder; the
  // data itself is already synced, so only a real I/O error is fatal.
  NEURN_CHECK(rc == 0 || e == EINVAL || e == EROFS, "fsync of folder ", dir, " after writing ", path,
              " failed: ", errno_str(e));
}

// This boot of this kernel and this process's pid namespace, hashed to 16
// hex digits (FNV-1a); empty where /proc does not tell, and then no
// temporary is ever judged stale.
const std::string& kernel_token() {
  static const std::string token = [] {
    std::string boot;
    std::ifstream("/proc/sys/kernel/random/boot_id") >> boot;
    char ns[128];
    ssize_t n = ::readlink("/proc/self/ns/pid", ns, sizeof ns);
    if (boot.empty() || n <= 0) return std::string();
    uint64_t h = 1469598103934665603ull;
    for (char c : boot + "|" + std::string(ns, static_cast<size_t>(n))) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    return std::string(hex);
  }();
  return token;
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 19 && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// The pid of a temporary `name` of this kernel (see temporary_path), or 0.
long temporary_pid(std::string_view name) {
  const std::string& token = kernel_token();
  if (token.empty() || name.size() < token.size() + 1 || name.substr(name.size() - token.size()) != token ||
      name[name.size() - token.size() - 1] != '.')
    return 0;
  name.remove_suffix(token.size() + 1);
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || !all_digits(name.substr(dot + 1))) return 0;  // <n>
  name.remove_suffix(name.size() - dot);
  dot = name.rfind('.');
  if (dot == std::string_view::npos || !all_digits(name.substr(dot + 1))) return 0;  // <pid>
  std::string_view pid = name.substr(dot + 1);
  name.remove_suffix(name.size() - dot);
  if (name.size() < 5 || name.substr(name.size() - 4) != ".tmp") return 0;  // <path>.tmp, <path> not empty
  return std::strtol(std::string(pid).c_str(), nullptr, 10);
}

// Each folder is cleaned once per process, before its first replace.
void clean_folder_once(const std::string& path) {
  static std::mutex mu;
  static std::unordered_set<std::string> done;
  fs::path parent = fs::path(path).parent_path();
  std::string dir = parent.empty() ? "." : parent.string();
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!done.insert(dir).second) return;
  }
  remove_stale_temporaries(dir);
}

}  // namespace

uint64_t fault_steps_passed() { return g_steps.load(); }

std::string temporary_path(const std::string& path, long pid, uint64_t n) {
  const std::string& token = kernel_token();
  return path + ".tmp." + std::to_string(pid) + "." + std::to_string(n) + "." +
         (token.empty() ? std::string("unknown") : token);
}

size_t remove_stale_temporaries(const std::string& folder) {
  DIR* d = ::opendir(folder.c_str());
  if (!d) return 0;
  size_t removed = 0;
  const long self = static_cast<long>(::getpid());
  while (dirent* e = ::readdir(d)) {
    long pid = temporary_pid(e->d_name);
    if (pid <= 0 || pid == self) continue;
    // kill(pid, 0) fails with ESRCH only when no such process exists (EPERM:
    // it exists, of another user); a pid reused since is left alone, which
    // errs on the safe side.
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    std::string p = folder + "/" + e->d_name;
    struct stat st;
    if (::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::unlink(p.c_str()) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

void write_file_atomic(const std::string& path, const void* data, size_t n) {
  make_parent(path);
  clean_folder_once(path);
  static std::atomic<uint64_t> counter{0};
  // pid and a counter: two threads or two processes never share a temporary.
  std::string tmp = temporary_path(path, static_cast<long>(::getpid()), counter++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  NEURN_CHECK(fd >= 0, "cannot write ", path, ": cannot create its temporary file ", tmp, ": ", errno_str(errno));
  auto fail = [&](const char* what, int e) {
    ::close(fd);
    ::unlink(tmp.c_str());
    NEURN_FAIL("cannot write ", path, ": ", what, " of ", tmp, " failed: ", errno_str(e),
               " (the previous file, if any, is unchanged)");
  };
  const char* p = static_cast<const char*>(data);
  size_t half = n / 2;
  if (int e = write_all(fd, p, half)) fail("write", e);
  step();
  if (int e = write_all(fd, p + half, n - half)) fail("write", e);
  step();
  if (::fsync(fd) != 0) fail("fsync", errno);
  step();
  if (::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    NEURN_FAIL("cannot write ", path, ": close of ", tmp, " failed: ", errno_str(e));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    NEURN_FAIL("cannot write ", path, ": rename of ", tmp, " failed: ", errno_str(e));
  }
  step();
  fsync_parent(path);
}

void write_file_atomic(const std::string& path, std::string_view content) {
  write_file_atomic(path, content.data(), content.size());
}

void append_durable(const std::string& path, std::string_view line) {
  make_parent(path);
  bool existed = ::access(path.c_str(), F_OK) == 0;
  int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  NEURN_CHECK(fd >= 0, "cannot open ", path, " for appending: ", errno_str(errno));
  std::string buf;
  off_t size = ::lseek(fd, 0, SEEK_END);
  if (size > 0) {
    char last = '\n';
    if (::pread(fd, &last, 1, size - 1) == 1 && last != '\n') buf = "\n";
  }
  buf.append(line);
  auto fail = [&](const char* what, int e) {
    ::close(fd);
    NEURN_FAIL("cannot append to ", path, ": ", what, " failed: ", errno_str(e));
  };
  // One write() for the whole line: a killed process leaves all of it or
  // none (a torn line needs a full disk or a power cut; the loader reports
  // and skips it, and the next append starts on a fresh line).
  step();
  if (int e = write_all(fd, buf.data(), buf.size())) fail("write", e);
  step();
  if (::fsync(fd) != 0) fail("fsync", errno);
  ::close(fd);
  if (!existed) fsync_parent(path);
}

}  // namespace neurn::io
