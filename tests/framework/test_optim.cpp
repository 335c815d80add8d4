// Optimizers against hand-computed steps (PyTorch's formulas, as written in
// the torch.optim documentation), schedules' values, clipping, and the state
// save/restore round trip.
#include <doctest/doctest.h>

#include <cmath>

#include "framework/ops.h"
#include "framework/optim/optim.h"
#include "gradcheck.h"
#include "skip.h"

using namespace neurn;
using namespace neurn::testing;

namespace {

Tensor param(std::vector<double> v, DType dt = DType::Float64) {
  Tensor t = from_vector(v, {static_cast<int64_t>(v.size())}, {dt});
  t.requires_grad_();
  return t;
}

void set_grad(Tensor& p, std::vector<double> g) {
  p.set_grad(from_vector(g, {static_cast<int64_t>(g.size())}, {p.dtype()}));
}

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

}  // namespace

TEST_CASE("SGD: plain step") {
  Tensor p = param({1.0, -2.0});
  Sgd opt({p}, {.lr = 0.1});
  set_grad(p, {0.5, 1.0});
  opt.step();
  CHECK(values(p)[0] == doctest::Approx(1.0 - 0.1 * 0.5));
  CHECK(values(p)[1] == doctest::Approx(-2.0 - 0.1 * 1.0));
}

TEST_CASE("SGD: momentum, dampening and weight decay over two steps") {
  Tensor p = param({1.0});
  Sgd opt({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.2, .weight_decay = 0.01});
  set_grad(p, {0.5});
  opt.step();
  // step 1: d = 0.5 + 0.01 * 1 = 0.51; buf = d (no dampening on the first step)
  double p1 = 1.0 - 0.1 * 0.51;
  CHECK(values(p)[0] == doctest::Approx(p1));
  set_grad(p, {-0.3});
  opt.step();
  double d2 = -0.3 + 0.01 * p1;
  double buf2 = 0.9 * 0.51 + (1 - 0.2) * d2;
  CHECK(values(p)[0] == doctest::Approx(p1 - 0.1 * buf2));
}

TEST_CASE("SGD: Nesterov momentum") {
  Tensor p = param({2.0});
  Sgd opt({p}, {.lr = 0.5, .momentum = 0.5, .nesterov = true});
  set_grad(p, {1.0});
  opt.step();
  // buf = 1; d = g + 0.5 buf = 1.5
  CHECK(values(p)[0] == doctest::Approx(2.0 - 0.5 * 1.5));
  set_grad(p, {2.0});
  opt.step();
  // buf = 0.5 * 1 + 2 = 2.5; d = 2 + 0.5 * 2.5 = 3.25
  CHECK(values(p)[0] == doctest::Approx(1.25 - 0.5 * 3.25));
  CHECK_THROWS_CONTAINING(Sgd({p}, {.lr = 0.1, .nesterov = true}), "SGD: Nesterov momentum needs momentum > 0");
}

TEST_CASE("Adam: two steps by hand") {
  Tensor p = param({1.0, -1.0});
  double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  Adam opt({p}, {.lr = lr});
  std::vector<double> g1{0.2, -4.0}, g2{0.1, 1.0};
  set_grad(p, g1);
  opt.step();
  set_grad(p, g2);
  opt.step();
  std::vector<double> init{1.0, -1.0};
  for (int i = 0; i < 2; ++i) {
    double m = (1 - b1) * g1[i], v = (1 - b2) * g1[i] * g1[i];
    double x = init[i] - lr / (1 - b1) * m / (std::sqrt(v) / std::sqrt(1 - b2) + eps);
    // The first step moves each coordinate by lr against the sign of its gradient.
    CHECK(x == doctest::Approx(init[i] - lr * (g1[i] > 0 ? 1 : -1)));
    m = b1 * m + (1 - b1) * g2[i];
    v = b2 * v + (1 - b2) * g2[i] * g2[i];
    x -= lr / (1 - b1 * b1) * m / (std::sqrt(v) / std::sqrt(1 - b2 * b2) + eps);
    CHECK(values(p)[i] == doctest::Approx(x).epsilon(1e-12));
  }
}

TEST_CASE("Adam's L2 weight decay and AdamW's decoupled weight decay differ as documented") {
  Tensor p = param({2.0}), q = param({2.0});
  Adam adam({p}, {.lr = 0.1, .weight_decay = 0.5});
  AdamW adamw(std::vector<Tensor>{q}, [] {
    AdamWOptions o;
    o.lr = 0.1;
    o.weight_decay = 0.5;
    return o;
  }());
  set_grad(p, {1.0});
  set_grad(q, {1.0});
  adam.step();
  adamw.step();
  // Adam: g = 1 + 0.5 * 2 = 2, first step moves by lr.
  CHECK(values(p)[0] == doctest::Approx(2.0 - 0.1));
  // AdamW: p = 2 (1 - 0.1 * 0.5) = 1.9, then the Adam step of g = 1 moves by lr.
  CHECK(values(q)[0] == doctest::Approx(1.9 - 0.1));
  CHECK(AdamWOptions{}.weight_decay == 0.01);
}

TEST_CASE("parameter groups: per-group lr and weight decay; parameters without gradients stay") {
  Tensor a = param({1.0}), b = param({1.0}), c = param({1.0});
  Sgd opt(std::vector<ParamGroup>{{{a}}, {{b}, 0.5, 0.1}, {{c}}}, {.lr = 0.1});
  CHECK(opt.groups().size() == 3);
  CHECK(opt.groups()[1].lr == 0.5);
  CHECK(opt.groups()[0].weight_decay == 0.0);
  set_grad(a, {1.0});
  set_grad(b, {1.0});
  opt.step();
  CHECK(values(a)[0] == doctest::Approx(0.9));
  CHECK(values(b)[0] == doctest::Approx(1.0 - 0.5 * (1.0 + 0.1)));
  CHECK(values(c)[0] == 1.0);
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
  CHECK_THROWS_CONTAINING(Sgd(std::vector<Tensor>{a, a}), "SGD: parameter 1 of group 0 (1,) appears more than once");
  CHECK_THROWS_CONTAINING(Sgd({mul(a, 2.0)}), "is not a leaf tensor (it was computed by mul)");
}

TEST_CASE("float32 parameters follow the float64 arithmetic") {
  Tensor p32 = param({0.3, -0.7, 1.1}, DType::Float32), p64 = param({0.3, -0.7, 1.1});
  Adam a32({p32}, {.lr = 0.05, .weight_decay = 0.01}), a64({p64}, {.lr = 0.05, .weight_decay = 0.01});
  for (int s = 0; s < 5; ++s) {
    std::vector<double> g{0.1 * s - 0.2, 0.5, -0.05 * s};
    set_grad(p32, g);
    set_grad(p64, g);
    a32.step();
    a64.step();
  }
  auto v32 = values(p32), v64 = values(p64);
  for (int i = 0; i < 3; ++i) CHECK(v32[i] == doctest::Approx(v64[i]).epsilon(1e-5));
}

TEST_CASE("Adam minimises a quadratic") {
  Generator g(1);
  Tensor target = randn({10}, {DType::Float64}, &g);
  Tensor x = zeros({10}, {DType::Float64});
  x.requires_grad_();
  Adam opt({x}, {.lr = 0.1});
  for (int s = 0; s < 300; ++s) {
    opt.zero_grad();
    sum(square(sub(x, target))).backward();
    opt.step();
  }
  auto xv = values(x), tv = values(target);
  for (int i = 0; i < 10; ++i) CHECK(xv[i] == doctest::Approx(tv[i]).epsilon(1e-3));
}

TEST_CASE("clip_grad_norm scales by max_norm / (norm + 1e-6) only above max_norm") {
  Tensor a = param({0, 0}), b = param({0}), c = param({5});
  set_grad(a, {3.0, 4.0});
  set_grad(b, {12.0});
  double norm = clip_grad_norm({a, b, c}, 6.5);  // c has no gradient
  CHECK(norm == doctest::Approx(13.0));
  double k = 6.5 / (13.0 + 1e-6);
  CHECK(values(a.grad())[0] == doctest::Approx(3.0 * k));
  CHECK(values(b.grad())[0] == doctest::Approx(12.0 * k));
  CHECK(clip_grad_norm({a, b}, 100.0) == doctest::Approx(6.5).epsilon(1e-6));
  CHECK(values(b.grad())[0] == doctest::Approx(12.0 * k));  // unchanged below the limit
  // Two parameters holding the same gradient storage are scaled once.
  Tensor x = param({1.0, 1.0}), y = param({1.0, 1.0});
  sum(mul(add(x, y), 3.0)).backward();
  CHECK(clip_grad_norm({x, y}, 1.0) == doctest::Approx(std::sqrt(36.0)));
  CHECK(values(x.grad())[0] == doctest::Approx(3.0 / 6.0).epsilon(1e-6));
  CHECK(values(y.grad())[0] == doctest::Approx(3.0 / 6.0).epsilon(1e-6));
}

TEST_CASE("clip_grad_norm over many chunks: the norm of every gradient, each scaled once") {
  // Gradients larger than one multi-tensor chunk (65,536 values) and of both
  // dtypes: the sum of squares runs over chunks and adds their sums in order.
  Generator gen(11);
  std::vector<Tensor> ps;
  for (int64_t n : {int64_t{3}, int64_t{65536}, int64_t{200001}, int64_t{0}, int64_t{70000}}) {
    Tensor p = zeros({n});
    p.requires_grad_();
    p.set_grad(mul(randn({n}, {DType::Float32}, &gen), 2.0));
    ps.push_back(p);
  }
  Tensor d = zeros({1000}, {DType::Float64});
  d.requires_grad_();
  d.set_grad(randn({1000}, {DType::Float64}, &gen));
  ps.push_back(d);
  long double ref = 0;
  std::vector<std::vector<double>> before;
  for (const Tensor& p : ps) {
    std::vector<double> v = values(p.grad());
    for (double x : v) ref += static_cast<long double>(x) * x;
    before.push_back(v);
  }
  const double want = std::sqrt(static_cast<double>(ref));
  const double norm = clip_grad_norm(ps, 1.0);
  CHECK(norm == doctest::Approx(want).epsilon(1e-12));
  const double k = 1.0 / (want + 1e-6);
  for (size_t i = 0; i < ps.size(); ++i) {
    std::vector<double> after = values(ps[i].grad());
    REQUIRE(after.size() == before[i].size());
    for (size_t j = 0; j < after.size(); j += 997) CHECK(after[j] == doctest::Approx(before[i][j] * k).epsilon(1e-6));
  }
  // A second call sees the clipped norm.
  CHECK(clip_grad_norm(ps, 1.0) == doctest::Approx(1.0).epsilon(1e-5));
}

TEST_CASE("schedules: step, cosine, linear warm-up composed with cosine") {
  StepLr st(3, 0.5);
  CHECK(st.lr_at(1.0, 0) == 1.0);
  CHECK(st.lr_at(1.0, 2) == 1.0);
  CHECK(st.lr_at(1.0, 3) == 0.5);
  CHECK(st.lr_at(1.0, 7) == 0.25);
  CosineLr cos(10, 0.1);
  CHECK(cos.lr_at(1.0, 0) == doctest::Approx(1.0));
  CHECK(cos.lr_at(1.0, 5) == doctest::Approx(0.55));
  CHECK(cos.lr_at(1.0, 10) == doctest::Approx(0.1));
  CHECK(cos.lr_at(1.0, 25) == doctest::Approx(0.1));
  CHECK(cos.lr_at(1.0, 2) == doctest::Approx(0.1 + 0.9 * (1 + std::cos(M_PI * 0.2)) / 2));
  LinearWarmup wu(4, 0.2, std::make_shared<CosineLr>(10));
  CHECK(wu.lr_at(2.0, 0) == doctest::Approx(0.4));
  CHECK(wu.lr_at(2.0, 2) == doctest::Approx(2.0 * 0.6));
  CHECK(wu.lr_at(2.0, 4) == doctest::Approx(2.0));
  CHECK(wu.lr_at(2.0, 9) == doctest::Approx(1.0));  // cosine half-way
  CHECK(LinearWarmup(2).lr_at(1.0, 100) == 1.0);

  Tensor a = param({1.0}), b = param({1.0});
  Sgd opt(std::vector<ParamGroup>{{{a}}, {{b}, 0.01}}, {.lr = 0.1});
  LrScheduler sched(opt, std::make_shared<StepLr>(2, 0.1));
  CHECK(opt.groups()[0].lr == doctest::Approx(0.1));
  sched.step();
  sched.step();
  CHECK(sched.last_step() == 2);
  CHECK(opt.groups()[0].lr == doctest::Approx(0.01));
  CHECK(opt.groups()[1].lr == doctest::Approx(0.001));
}

TEST_CASE("ReduceLrOnPlateau: patience, cooldown, min_lr, and composition with warm-up") {
  Tensor a = param({1.0});
  Sgd opt({a}, {.lr = 1.0});
  ReduceLrOnPlateau pl(opt, {.factor = 0.5, .patience = 2, .cooldown = 1, .min_lr = 0.2});
  CHECK_FALSE(pl.step(10.0));  // best
  CHECK_FALSE(pl.step(9.0));   // better
  CHECK_FALSE(pl.step(9.0));   // bad 1
  CHECK_FALSE(pl.step(9.5));   // bad 2
  CHECK(pl.step(9.2));         // bad 3 > patience: reduce
  CHECK(opt.lr() == doctest::Approx(0.5));
  CHECK_FALSE(pl.step(9.3));  // cooldown: not counted
  CHECK_FALSE(pl.step(9.3));  // bad 1
  CHECK_FALSE(pl.step(9.3));  // bad 2
  CHECK(pl.step(9.3));        // reduce to 0.25
  CHECK(opt.lr() == doctest::Approx(0.25));
  for (int i = 0; i < 4; ++i) pl.step(9.3);
  CHECK(opt.lr() == doctest::Approx(0.2));  // clamped at min_lr
  // A tiny improvement below the relative threshold is not an improvement.
  ReduceLrOnPlateau acc(opt, {.maximize = true, .patience = 0, .threshold = 0.01});
  acc.step(0.5);
  CHECK(acc.step(0.504));  // < 0.5 * 1.01
  // Warm-up then plateau: the reduction scales the base the warm-up starts from.
  Tensor b = param({1.0});
  Sgd o2({b}, {.lr = 1.0});
  LrScheduler warm(o2, std::make_shared<LinearWarmup>(4, 0.0));
  ReduceLrOnPlateau pl2(o2, {.factor = 0.1, .patience = 0});
  warm.step();
  CHECK(o2.lr() == doctest::Approx(0.25));
  pl2.step(1.0);
  CHECK(pl2.step(1.0));
  CHECK(o2.lr() == doctest::Approx(0.025));
  warm.step();
  CHECK(o2.lr() == doctest::Approx(0.05));  // 0.1 * 2 / 4
}

TEST_CASE("optimizer and scheduler state: save and restore round trip") {
  auto run = [](Optimizer& opt, Tensor& p, int from, int to) {
    for (int s = from; s < to; ++s) {
      set_grad(p, {0.1 * s, -0.2, 0.3 - 0.05 * s});
      opt.step();
    }
  };
  for (int kind = 0; kind < 2; ++kind) {
    CAPTURE(kind);
    Tensor p = param({0.5, -0.5, 1.0});
    std::unique_ptr<Optimizer> opt;
    if (kind == 0) opt = std::make_unique<Adam>(std::vector<Tensor>{p}, AdamOptions{.lr = 0.05});
    else opt = std::make_unique<Sgd>(std::vector<Tensor>{p}, SgdOptions{.lr = 0.05, .momentum = 0.9});
    LrScheduler sched(*opt, std::make_shared<StepLr>(2, 0.5));
    run(*opt, p, 0, 3);
    sched.step();
    sched.step();
    sched.step();
    NamedTensors saved = opt->state_dict(), saved_sched = sched.state_dict();
    Tensor p_saved = p.detach().clone();
    run(*opt, p, 3, 6);
    auto expected = values(p);

    Tensor q = p_saved.clone();
    q.requires_grad_();
    std::unique_ptr<Optimizer> fresh;
    if (kind == 0) fresh = std::make_unique<Adam>(std::vector<Tensor>{q}, AdamOptions{.lr = 0.05});
    else fresh = std::make_unique<Sgd>(std::vector<Tensor>{q}, SgdOptions{.lr = 0.05, .momentum = 0.9});
    LrScheduler sched2(*fresh, std::make_shared<StepLr>(2, 0.5));
    fresh->load_state_dict(saved);
    sched2.load_state_dict(saved_sched);
    CHECK(sched2.last_step() == 3);
    CHECK(fresh->lr() == doctest::Approx(0.025));
    run(*fresh, q, 3, 6);
    auto got = values(q);
    for (int i = 0; i < 3; ++i) CHECK(got[i] == doctest::Approx(expected[i]).epsilon(1e-14));
  }
  // Adam state names and bad states.
  Tensor p = param({1.0, 2.0});
  Adam opt({p});
  set_grad(p, {1.0, 1.0});
  opt.step();
  auto st = opt.state_dict();
  bool has_step = false;
  for (auto& [k, t] : st) has_step = has_step || (k == "state.0.step" && t.item() == 1.0);
  CHECK(has_step);
  Tensor r = param({1.0, 2.0, 3.0});
  Adam other({r});
  CHECK_THROWS_CONTAINING(other.load_state_dict(st), "Adam.load_state_dict: state.0.exp_avg: shape (2,) does not "
                                                     "match the parameter's (3,)");
  Sgd sgd({p});
  CHECK_THROWS_CONTAINING(sgd.load_state_dict(st), "'exp_avg' is not a state of SGD");
  CHECK_THROWS_CONTAINING(opt.load_state_dict({{"param_groups.0.foo", full({}, 1.0)}}), "unknown group field 'foo'");
}

TEST_CASE("fused CUDA updates match the CPU loops (SGD, Nesterov, Adam, AdamW; float32 and float64)" *
          testing::skip_unless(testing::have_cuda(), testing::no_cuda_reason())) {
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (int kind = 0; kind < 4; ++kind) {
      CAPTURE(kind);
      Generator g(11);
      Tensor pc = randn({1000}, {dt}, &g);
      Tensor pd = pc.to(Device::cuda());
      pc.requires_grad_();
      pd.requires_grad_();
      auto make = [&](Tensor p) -> std::unique_ptr<Optimizer> {
        switch (kind) {
          case 0: return std::make_unique<Sgd>(std::vector<Tensor>{p}, SgdOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-3});
          case 1: return std::make_unique<Sgd>(std::vector<Tensor>{p}, SgdOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
          case 2: return std::make_unique<Adam>(std::vector<Tensor>{p}, AdamOptions{.lr = 0.01, .weight_decay = 1e-2});
          default: return std::make_unique<AdamW>(std::vector<Tensor>{p}, AdamWOptions{});
        }
      };
      auto oc = make(pc), od = make(pd);
      for (int s = 0; s < 3; ++s) {
        Tensor grad = randn({1000}, {dt}, &g);
        pc.set_grad(grad);
        pd.set_grad(grad.to(Device::cuda()));
        oc->step();
        od->step();
      }
      auto a = pc.to_vector<double>(), b = pd.cpu().to_vector<double>();
      double tol = dt == DType::Float32 ? 1e-5 : 1e-12;
      bool ok = true;
      for (size_t i = 0; i < a.size(); ++i) ok = ok && std::abs(a[i] - b[i]) <= tol * (1 + std::abs(a[i]));
      CHECK(ok);
    }
  }
}

TEST_CASE("a large parameter (threaded update) ends where small pieces of it (inline update) do") {
  Generator g(3);
  const int64_t n = 400000, piece = 1000;
  Tensor big = randn({n}, {}, &g);
  big.requires_grad_();
  std::vector<Tensor> pieces;
  for (int64_t i = 0; i < n; i += piece) {
    Tensor t = slice(big.detach(), 0, i, i + piece).clone();
    t.requires_grad_();
    pieces.push_back(t);
  }
  for (int kind = 0; kind < 2; ++kind) {
    std::unique_ptr<Optimizer> ob, op;
    if (kind == 0) {
      ob = std::make_unique<Adam>(std::vector<Tensor>{big}, AdamOptions{.lr = 0.01, .weight_decay = 0.1});
      op = std::make_unique<Adam>(pieces, AdamOptions{.lr = 0.01, .weight_decay = 0.1});
    } else {
      ob = std::make_unique<Sgd>(std::vector<Tensor>{big}, SgdOptions{.lr = 0.01, .momentum = 0.9});
      op = std::make_unique<Sgd>(pieces, SgdOptions{.lr = 0.01, .momentum = 0.9});
    }
    for (int s = 0; s < 2; ++s) {
      Tensor grad = randn({n}, {}, &g);
      big.set_grad(grad);
      for (size_t k = 0; k < pieces.size(); ++k)
        pieces[k].set_grad(slice(grad, 0, static_cast<int64_t>(k) * piece, static_cast<int64_t>(k + 1) * piece));
      ob->step();
      op->step();
    }
    auto bv = big.to_vector<float>();
    bool same = true;
    for (size_t k = 0; k < pieces.size(); ++k) {
      auto pv = pieces[k].to_vector<float>();
      for (int64_t i = 0; i < piece; ++i) same = same && pv[i] == bv[k * piece + i];
    }
    CHECK(same);
  }
}
