#include "framework/profiler.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "framework/error.h"

namespace neurn {

std::atomic<bool> Profiler::active_{false};

namespace {

using Clock = std::chrono::steady_clock;

struct Frame {
  Clock::time_point start;
  double child_ns = 0;  // total time of the scopes that ran inside this one
  const char* kind;
  const char* name;
};

struct Stats {
  std::string kind, name;
  int64_t calls = 0;
  double total_ns = 0, self_ns = 0;
};

// Each thread's open scopes, innermost last.
thread_local std::vector<Frame> t_stack;
thread_local std::string t_key;  // reused, so a lookup allocates nothing once warm

struct Recording {
  std::mutex mu;
  std::unordered_map<std::string, Stats> stats;
  std::thread::id owner;
  double owner_top_ns = 0;  // time in outermost scopes on the owner's thread
};
Recording& recording() {
  static Recording r;
  return r;
}

}  // namespace

void ProfileScope::begin(const char* kind, const char* name) {
  open_ = true;
  t_stack.push_back({Clock::now(), 0.0, kind, name});
}

void ProfileScope::end() {
  const Clock::time_point stop = Clock::now();
  Frame f = t_stack.back();
  t_stack.pop_back();
  const double total = std::chrono::duration<double, std::nano>(stop - f.start).count();
  if (!t_stack.empty()) t_stack.back().child_ns += total;
  if (!Profiler::active()) return;  // the profiler stopped while this scope was open
  t_key.assign(f.kind);
  t_key.push_back('\0');
  t_key.append(f.name);
  Recording& r = recording();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.stats.find(t_key);
  if (it == r.stats.end()) it = r.stats.emplace(t_key, Stats{f.kind, f.name}).first;
  Stats& s = it->second;
  ++s.calls;
  s.total_ns += total;
  s.self_ns += std::max(0.0, total - f.child_ns);
  if (t_stack.empty() && std::this_thread::get_id() == r.owner) r.owner_top_ns += total;
}

Profiler::Profiler() {
  Recording& r = recording();
  std::lock_guard<std::mutex> lock(r.mu);
  bool expected = false;
  NEURN_CHECK(active_.compare_exchange_strong(expected, true),
              "Profiler: another Profiler is already recording; stop() it first");
  r.stats.clear();
  r.owner = std::this_thread::get_id();
  r.owner_top_ns = 0;
  start_ = Clock::now();
}

Profiler::~Profiler() {
  if (!stopped_) (void)stop();
}

ProfileReport Profiler::stop() {
  ProfileReport rep;
  if (stopped_) return rep;
  stopped_ = true;
  Recording& r = recording();
  std::lock_guard<std::mutex> lock(r.mu);
  active_.store(false, std::memory_order_relaxed);
  rep.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - start_).count();
  for (auto& [key, s] : r.stats) rep.entries.push_back({s.name, s.kind, s.calls, s.total_ns / 1e6, s.self_ns / 1e6});
  std::sort(rep.entries.begin(), rep.entries.end(), [](const ProfileEntry& a, const ProfileEntry& b) {
    return a.self_ms != b.self_ms ? a.self_ms > b.self_ms : a.name < b.name;
  });
  rep.outside_ms = std::max(0.0, rep.wall_ms - r.owner_top_ns / 1e6);
  r.stats.clear();
  return rep;
}

std::string ProfileReport::table(size_t top) const {
  std::ostringstream os;
  char line[256];
  std::snprintf(line, sizeof line, "%-40s %-9s %9s %11s %7s %11s %10s\n", "scope", "kind", "calls", "self ms", "self%",
                "total ms", "mean us");
  os << line;
  const double wall = wall_ms > 0 ? wall_ms : 1;
  size_t shown = 0;
  double rest_self = 0;
  int64_t rest_calls = 0;
  for (const ProfileEntry& e : entries) {
    if (shown < top) {
      std::snprintf(line, sizeof line, "%-40.40s %-9.9s %9lld %11.2f %6.1f%% %11.2f %10.1f\n", e.name.c_str(),
                    e.kind.c_str(), static_cast<long long>(e.calls), e.self_ms, 100.0 * e.self_ms / wall, e.total_ms,
                    1000.0 * e.total_ms / static_cast<double>(std::max<int64_t>(e.calls, 1)));
      os << line;
      ++shown;
    } else {
      rest_self += e.self_ms;
      rest_calls += e.calls;
    }
  }
  if (shown < entries.size()) {
    std::snprintf(line, sizeof line, "%-40s %-9s %9lld %11.2f %6.1f%%\n",
                  ("(" + std::to_string(entries.size() - shown) + " more scopes)").c_str(), "", static_cast<long long>(rest_calls),
                  rest_self, 100.0 * rest_self / wall);
    os << line;
  }
  std::snprintf(line, sizeof line, "%-40s %-9s %9s %11.2f %6.1f%%\n", "(outside any scope)", "", "", outside_ms,
                100.0 * outside_ms / wall);
  os << line;
  std::snprintf(line, sizeof line, "%-40s %-9s %9s %11.2f %6.1f%%\n", "wall time", "", "", wall_ms, 100.0);
  os << line;
  return os.str();
}

namespace {
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}
}  // namespace

std::string ProfileReport::json() const {
  std::ostringstream os;
  os.precision(6);
  os << std::fixed << "{\"wall_ms\": " << wall_ms << ", \"outside_ms\": " << outside_ms << ", \"entries\": [";
  for (size_t i = 0; i < entries.size(); ++i) {
    const ProfileEntry& e = entries[i];
    os << (i ? ", " : "") << "{\"name\": " << json_string(e.name) << ", \"kind\": " << json_string(e.kind)
       << ", \"calls\": " << e.calls << ", \"total_ms\": " << e.total_ms << ", \"self_ms\": " << e.self_ms << "}";
  }
  os << "]}";
  return os.str();
}

}  // namespace neurn
