// SPOS supernet training resumed from its checkpoint equals the
// uninterrupted run: every parameter, BN statistic and momentum buffer bit
// for bit (float64, dropout on, channel search on, a FLOPs range so that the
// path sampler's rejection draws matter).
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>

#include "gradcheck.h"
#include "layers/state_io.h"
#include "nas/spos/train_search.h"

using namespace neurn;
using namespace neurn::spos;
namespace fs = std::filesystem;

namespace {

SposSpace resume_space() {
  SposSpace s;
  s.stage_repeats = {1, 1, 1, 1};
  s.stage_channels = {16, 24, 32, 48};
  s.stage_strides = {1, 2, 2, 2};
  s.stem_channels = 8;
  s.last_channels = 32;
  s.search_channels = true;
  s.channel_scales = {0.4, 0.8, 1.2};
  s.dropout = 0.2;  // draws from the default generator: its counter must be restored too
  return s;
}

std::shared_ptr<Supernet> fresh(const SposSpace& s) {
  Generator gen(1);
  ParamScope scope({DType::Float64}, &gen);
  return std::make_shared<Supernet>(s, 2, 1);
}

std::pair<Tensor, Tensor> batch_of(int64_t step) {
  Generator g(1000 + static_cast<uint64_t>(step));
  Tensor x = randn({4, 1, 8, 8}, {DType::Float64}, &g);
  return {x, from_vector<int64_t>({step % 2, 1, 0, (step / 2) % 2}, {4})};
}

}  // namespace

TEST_CASE("spos: supernet training resumes where it stopped (float64, identical weights and momenta)") {
  SposSpace s = resume_space();
  SupernetTrainOptions o;
  o.steps = 12;
  o.lr = 0.05;
  o.seed = 4;
  o.input_size = 8, o.num_classes = 2, o.in_channels = 1;
  auto probe = fresh(s);
  SposArch small = from_genome(s, nas::Genome{std::vector<int>(16, 0)});
  SposArch big = small;
  for (auto& l : big.layers) l.op = 3, l.scale = 2;
  int64_t lo = arch_cost(small, 2, 1, 8).flops, hi = arch_cost(big, 2, 1, 8).flops;
  o.max_flops = lo + (hi - lo) / 2;  // some draws are rejected
  fs::path dir = fs::temp_directory_path() / ("neurn_test_spos_resume_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);

  // uninterrupted, with a checkpoint file of its own
  manual_seed(77);
  auto a = fresh(s);
  SupernetTrainOptions oa = o;
  oa.checkpoint_path = (dir / "a.safetensors").string();
  std::vector<std::string> paths_a;
  SupernetTrainResult ra = train_supernet(*a, oa, batch_of, [&](const TrainProgress& p) {
    paths_a.push_back(describe(*p.path));
  });
  CHECK(ra.steps_done == 12);
  CHECK(ra.resumed_from == 0);

  // interrupted after step 7 (the last checkpoint at 5), then resumed in a new process-like state
  manual_seed(77);
  auto b = fresh(s);
  SupernetTrainOptions ob = o;
  ob.checkpoint_path = (dir / "b.safetensors").string();
  ob.checkpoint_every = 5;
  std::vector<std::string> paths_b;
  struct Interrupt {};
  CHECK_THROWS_AS(train_supernet(*b, ob, batch_of,
                                 [&](const TrainProgress& p) {
                                   paths_b.push_back(describe(*p.path));
                                   if (p.step == 7) throw Interrupt{};
                                 }),
                  Interrupt);
  manual_seed(12345);  // whatever the generator did since: the checkpoint restores it
  auto c = fresh(s);   // a new supernet: the checkpoint's weights replace its own
  paths_b.resize(5);
  SupernetTrainResult rc = train_supernet(*c, ob, batch_of, [&](const TrainProgress& p) {
    paths_b.push_back(describe(*p.path));
  });
  CHECK(rc.resumed_from == 5);
  CHECK(rc.steps_done == 7);
  CHECK(paths_b == paths_a);
  auto sa = a->state_dict(), sc = c->state_dict();
  REQUIRE(sa.size() == sc.size());
  int64_t differing = 0;
  for (size_t i = 0; i < sa.size(); ++i) {
    INFO(sa[i].first);
    REQUIRE(sa[i].first == sc[i].first);
    differing += max(abs(sub(sa[i].second, sc[i].second))).item() != 0.0;
  }
  CHECK(differing == 0);
  // the momenta too: the final checkpoints hold the same SGD state
  auto ka = load_safetensors(oa.checkpoint_path), kc = load_safetensors(ob.checkpoint_path);
  REQUIRE(ka.size() == kc.size());
  int64_t momenta = 0;
  for (size_t i = 0; i < ka.size(); ++i) {
    REQUIRE(ka[i].first == kc[i].first);
    if (ka[i].first.rfind("optim.", 0) == 0) ++momenta;
    CHECK(max(abs(sub(ka[i].second.to(DType::Float64), kc[i].second.to(DType::Float64)))).item() == 0.0);
  }
  CHECK(momenta > 0);
  // the weights moved at all (a run that trained nothing would pass the comparison too)
  auto s0 = fresh(s)->state_dict();
  double moved = 0;
  for (size_t i = 0; i < sa.size(); ++i) moved += max(abs(sub(sa[i].second, s0[i].second))).item();
  CHECK(moved > 0.0);
  // a file that is not a SPOS checkpoint is named
  save_state(*a, (dir / "plain.safetensors").string());
  SupernetTrainOptions od = o;
  od.checkpoint_path = (dir / "plain.safetensors").string();
  CHECK_THROWS_CONTAINING(train_supernet(*fresh(s), od, batch_of), "is not a SPOS supernet checkpoint");
  fs::remove_all(dir);
}
