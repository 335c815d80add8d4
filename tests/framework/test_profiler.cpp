// The profiler of framework/profiler.h: it records kernel-table calls,
// backward nodes and optimizer steps only while a Profiler is alive, counts
// every call, and splits nested time into self and total so that the self
// times of a scope and the totals of the scopes inside it add up to its total.
// Nothing here compares a duration with a threshold: the checks are counts
// and identities that hold however fast the machine is.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <thread>

#include "framework/ops.h"
#include "framework/optim/adam.h"
#include "framework/profiler.h"

using namespace neurn;

namespace {

std::map<std::string, ProfileEntry> by_name(const ProfileReport& r) {
  std::map<std::string, ProfileEntry> m;
  for (const ProfileEntry& e : r.entries) m[e.kind + ":" + e.name] = e;
  return m;
}

}  // namespace

TEST_CASE("profiler: nested scopes split self and total time") {
  Profiler prof;
  CHECK(Profiler::active());
  for (int i = 0; i < 3; ++i) {
    ProfileScope outer("test", "outer");
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    {
      ProfileScope inner("test", "inner");
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  }
  ProfileReport r = prof.stop();
  CHECK_FALSE(Profiler::active());
  auto m = by_name(r);
  REQUIRE(m.count("test:outer"));
  REQUIRE(m.count("test:inner"));
  const ProfileEntry& o = m["test:outer"];
  const ProfileEntry& in = m["test:inner"];
  CHECK(o.calls == 3);
  CHECK(in.calls == 3);
  // The inner scope has nothing inside it; the outer's self time is its
  // total less the inner's.
  CHECK(in.self_ms == doctest::Approx(in.total_ms).epsilon(1e-9));
  CHECK(o.self_ms + in.total_ms == doctest::Approx(o.total_ms).epsilon(1e-9));
  CHECK(in.total_ms > 0);
  CHECK(o.total_ms >= in.total_ms);
  // The outer scopes ran on the profiler's thread, inside its wall time.
  CHECK(o.total_ms <= r.wall_ms);
  CHECK(r.outside_ms == doctest::Approx(r.wall_ms - o.total_ms).epsilon(1e-6));
  // Entries come by self time, largest first.
  for (size_t i = 1; i < r.entries.size(); ++i) CHECK(r.entries[i - 1].self_ms >= r.entries[i].self_ms);
}

TEST_CASE("profiler: records nothing unless a Profiler is alive") {
  { ProfileScope s("test", "before"); }
  Profiler prof;
  ProfileReport r = prof.stop();
  CHECK(r.entries.empty());
  { ProfileScope s("test", "after"); }
  // A stopped profiler returns an empty report again.
  CHECK(prof.stop().entries.empty());
}

TEST_CASE("profiler: one at a time") {
  Profiler a;
  CHECK_THROWS_WITH(Profiler(), doctest::Contains("already recording"));
  (void)a.stop();
  Profiler b;  // the first has stopped, so a second may start
  CHECK(Profiler::active());
}

TEST_CASE("profiler: kernel tables, backward nodes and the optimizer step of a training step") {
  Generator gen(7);
  Tensor x = randn({2, 3, 8, 8}, {DType::Float32}, &gen);
  Tensor w = randn({4, 3, 3, 3}, {DType::Float32}, &gen);
  w.requires_grad_();
  Adam opt({w}, AdamOptions{});
  Profiler prof;
  for (int step = 0; step < 2; ++step) {
    opt.zero_grad();
    Tensor loss = sum(relu(conv2d(x, w, Tensor(), Conv2dOptions{.padding = {1, 1}})));
    loss.backward();
    opt.step();
  }
  ProfileReport r = prof.stop();
  auto m = by_name(r);
  REQUIRE(m.count("kernel:conv2d_kernel"));
  CHECK(m["kernel:conv2d_kernel"].calls == 2);
  REQUIRE(m.count("kernel:conv2d_backward_kernel"));
  CHECK(m["kernel:conv2d_backward_kernel"].calls == 2);
  REQUIRE(m.count("backward:conv2d"));
  CHECK(m["backward:conv2d"].calls == 2);
  REQUIRE(m.count("backward:relu"));
  REQUIRE(m.count("optimizer:Adam.step"));
  CHECK(m["optimizer:Adam.step"].calls == 2);
  REQUIRE(m.count("kernel:adam_update_kernel"));
  // The conv node's total holds its kernel's time.
  CHECK(m["backward:conv2d"].total_ms >= m["kernel:conv2d_backward_kernel"].total_ms);
  for (const ProfileEntry& e : r.entries) {
    CHECK(e.self_ms >= 0);
    CHECK(e.self_ms <= e.total_ms + 1e-9);
  }
  const std::string table = r.table(5);
  CHECK(table.find("self ms") != std::string::npos);
  CHECK(table.find("more scopes") != std::string::npos);  // more than five scopes ran
  CHECK(table.find("(outside any scope)") != std::string::npos);
  const std::string json = r.json();
  CHECK(json.find("\"name\": \"conv2d_backward_kernel\"") != std::string::npos);
  CHECK(json.find("\"kind\": \"backward\"") != std::string::npos);
}
