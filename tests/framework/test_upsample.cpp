// Bilinear upsampling with align_corners both ways: hand-computed values,
// the shared tap arithmetic (framework/ops/upsample_math.h), bad arguments,
// and a float64 comparison with torch.nn.functional.interpolate (up and
// down, align_corners true and false) where /usr/bin/python3 has torch.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "framework/ops.h"
#include "framework/ops/upsample_math.h"
#include "skip.h"

using namespace neurn;

namespace {

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK_MESSAGE(std::abs(got[i] - want[i]) <= tol, "index ", i);
}

// The input both sides build: x[i] = sin(0.37 i + 0.1), (N, C, H, W) row-major.
Tensor wave(int64_t n, int64_t c, int64_t h, int64_t w) {
  std::vector<double> v(static_cast<size_t>(n * c * h * w));
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.37 * static_cast<double>(i) + 0.1);
  return from_vector<double>(v, {n, c, h, w});
}

struct Case {
  int64_t n, c, h, w, oh, ow;
  bool align;
};

}  // namespace

TEST_CASE("upsample bilinear align_corners=true known values") {
  // 2x2 -> 3x3: the corners are kept, the centre is the mean.
  Tensor x = from_vector<double>({0, 1, 2, 3}, {1, 1, 2, 2});
  check_close(upsample(x, 3, 3, UpsampleMode::Bilinear, true).to_vector<double>(),
              {0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3}, 1e-12);
  // 1x4 -> 1x7: src = d * 3 / 6 = d / 2.
  Tensor r = from_vector<double>({0, 10, 20, 40}, {1, 1, 1, 4});
  check_close(upsample(r, 1, 7, UpsampleMode::Bilinear, true).to_vector<double>(), {0, 5, 10, 15, 20, 30, 40}, 1e-12);
  // Down 1x5 -> 1x3: src = 0, 2, 4 (exact samples); and to one pixel: the first.
  Tensor r5 = from_vector<double>({1, 2, 3, 4, 5}, {1, 1, 1, 5});
  check_close(upsample(r5, 1, 3, UpsampleMode::Bilinear, true).to_vector<double>(), {1, 3, 5}, 1e-12);
  check_close(upsample(r5, 1, 1, UpsampleMode::Bilinear, true).to_vector<double>(), {1}, 0);
  // align_corners=false on the same row differs (half-pixel centres): 5 -> 3 gives src = 2/3 + ... .
  check_close(upsample(r5, 1, 3, UpsampleMode::Bilinear, false).to_vector<double>(), {1 + 1.0 / 3, 3, 5 - 1.0 / 3},
              1e-12);
  // Same size is the identity both ways.
  Tensor w = wave(1, 2, 3, 4);
  check_close(upsample(w, 3, 4, UpsampleMode::Bilinear, true).to_vector<double>(), w.to_vector<double>(), 1e-15);
}

TEST_CASE("upsample taps: the shared arithmetic") {
  // align_corners: the last output reads the last input with full weight.
  UpsampleTap t = upsample_tap(6, 4, 7, true, true);
  CHECK(t.i0 == 3);
  CHECK(t.i1 == 3);
  CHECK(t.l1 == doctest::Approx(0.0));
  t = upsample_tap(3, 4, 7, true, true);  // src 1.5
  CHECK(t.i0 == 1);
  CHECK(t.i1 == 2);
  CHECK(t.l0 == doctest::Approx(0.5));
  t = upsample_tap(0, 4, 8, true, false);  // src clamped at 0
  CHECK(t.i0 == 0);
  CHECK(t.l1 == 0.0);
  t = upsample_tap(5, 3, 8, false, false);  // nearest floor(5 * 3 / 8) = 1
  CHECK(t.i0 == 1);
  CHECK(t.l0 == 1.0);
}

TEST_CASE("upsample align_corners: meta, FLOPs and bad arguments") {
  Tensor m = Tensor::empty({2, 3, 5, 5}, {DType::Float32, Device::meta()});
  FlopCounter fc;
  CHECK(upsample(m, 9, 10, UpsampleMode::Bilinear, true).shape() == Shape{2, 3, 9, 10});
  CHECK(fc.flops() == 8 * 2 * 3 * 9 * 10);
  Tensor x = wave(1, 1, 2, 2);
  CHECK_THROWS_WITH_AS(upsample(x, 4, 4, UpsampleMode::Nearest, true),
                       doctest::Contains("upsample: align_corners=true needs bilinear"), Error);
}

TEST_CASE("upsample bilinear against torch.nn.functional.interpolate (float64)" *
          neurn::testing::skip_unless(neurn::testing::have_torch(), neurn::testing::kNoTorch)) {
  const std::vector<Case> cases = {
      {2, 3, 4, 5, 9, 11, true},  {2, 3, 4, 5, 9, 11, false}, {1, 2, 9, 7, 4, 3, true}, {1, 2, 9, 7, 4, 3, false},
      {1, 1, 3, 3, 1, 6, true},   {1, 1, 3, 3, 1, 6, false},  {1, 2, 6, 6, 12, 12, true}, {1, 2, 6, 6, 12, 12, false},
  };
  std::ostringstream py;
  py << "import math, torch\n"
        "import torch.nn.functional as F\n"
        "torch.set_printoptions(precision=17)\n"
        "for n,c,h,w,oh,ow,al in [";
  for (const Case& k : cases)
    py << "(" << k.n << "," << k.c << "," << k.h << "," << k.w << "," << k.oh << "," << k.ow << ","
       << (k.align ? "True" : "False") << "),";
  py << "]:\n"
        "  x = torch.tensor([math.sin(0.37 * i + 0.1) for i in range(n*c*h*w)], dtype=torch.float64)"
        ".reshape(n,c,h,w).requires_grad_()\n"
        "  y = F.interpolate(x, size=(oh,ow), mode='bilinear', align_corners=al)\n"
        "  r = torch.tensor([math.cos(0.11 * i) for i in range(y.numel())], dtype=torch.float64).reshape(y.shape)\n"
        "  (y * r).sum().backward()\n"
        "  print(' '.join(repr(v) for v in y.flatten().tolist()))\n"
        "  print(' '.join(repr(v) for v in x.grad.flatten().tolist()))\n";
  std::string cmd = "/usr/bin/python3 -c \"" + py.str() + "\" 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buf[4096];
  while (size_t got = fread(buf, 1, sizeof buf, pipe)) out.append(buf, got);
  REQUIRE_MESSAGE(pclose(pipe) == 0, "python failed: ", out);
  std::istringstream lines(out);
  double worst = 0;
  for (const Case& k : cases) {
    CAPTURE(k.h);
    CAPTURE(k.w);
    CAPTURE(k.oh);
    CAPTURE(k.ow);
    CAPTURE(k.align);
    std::string ly, lg;
    REQUIRE(std::getline(lines, ly));
    REQUIRE(std::getline(lines, lg));
    std::vector<double> ty, tg;
    std::istringstream sy(ly), sg(lg);
    for (double v; sy >> v;) ty.push_back(v);
    for (double v; sg >> v;) tg.push_back(v);
    Tensor x = wave(k.n, k.c, k.h, k.w);
    x.requires_grad_();
    Tensor y = upsample(x, k.oh, k.ow, UpsampleMode::Bilinear, k.align);
    std::vector<double> rv(static_cast<size_t>(y.numel()));
    for (size_t i = 0; i < rv.size(); ++i) rv[i] = std::cos(0.11 * static_cast<double>(i));
    sum(mul(y, from_vector<double>(rv, y.shape()))).backward();
    std::vector<double> ny = y.to_vector<double>(), ng = x.grad().to_vector<double>();
    REQUIRE(ny.size() == ty.size());
    REQUIRE(ng.size() == tg.size());
    for (size_t i = 0; i < ny.size(); ++i) worst = std::max(worst, std::abs(ny[i] - ty[i]));
    for (size_t i = 0; i < ng.size(); ++i) worst = std::max(worst, std::abs(ng[i] - tg[i]));
  }
  MESSAGE("upsample vs torch interpolate (float64, forward and input gradient): worst abs difference " << worst);
  CHECK(worst < 1e-12);
}

// Nearest upsampling's source index is upsample_tap (upsample_math.h), the one
// function the CPU loop and the CUDA kernel call; its scale is a float, as
// PyTorch computes it, and a double scale picks another pixel in places.
TEST_CASE("upsample nearest: one shared source index, float scale as PyTorch") {
  // floor(41 * float(2 / 82)) = 0 but floor(41 * (2.0 / 82)) = 1; the
  // reverse at 49 of 98 (values checked against torch 1.13's interpolate).
  CHECK(upsample_tap(41, 2, 82, false, false).i0 == 0);
  CHECK(static_cast<int64_t>(41 * (2.0 / 82.0)) == 1);
  CHECK(upsample_tap(49, 2, 98, false, false).i0 == 1);
  CHECK(static_cast<int64_t>(49 * (2.0 / 98.0)) == 0);
  // The op reads exactly that index along both axes: x holds its own column
  // (row) numbers, so y holds the source indices.
  int64_t wrong = 0;
  for (int64_t in = 1; in <= 24; ++in)
    for (int64_t out = 1; out <= 100; out += (out < 40 ? 1 : 7)) {
      std::vector<double> idx(static_cast<size_t>(in));
      for (int64_t i = 0; i < in; ++i) idx[static_cast<size_t>(i)] = static_cast<double>(i);
      auto yw = upsample(from_vector<double>(idx, {1, 1, 1, in}), 1, out, UpsampleMode::Nearest).to_vector<double>();
      auto yh = upsample(from_vector<double>(idx, {1, 1, in, 1}), out, 1, UpsampleMode::Nearest).to_vector<double>();
      for (int64_t d = 0; d < out; ++d) {
        const double want = static_cast<double>(upsample_tap(d, in, out, false, false).i0);
        wrong += yw[static_cast<size_t>(d)] != want;
        wrong += yh[static_cast<size_t>(d)] != want;
      }
    }
  CHECK(wrong == 0);
}

TEST_CASE("upsample nearest against torch.nn.functional.interpolate: the same source pixel everywhere" *
          neurn::testing::skip_unless(neurn::testing::have_torch(), neurn::testing::kNoTorch)) {
  // One line per (in, out): torch's source index of every output position.
  std::ostringstream py;
  py << "import torch\n"
        "import torch.nn.functional as F\n"
        "for i in range(1, 33):\n"
        "  for o in list(range(1, 70)) + [82, 94, 98, 110, 122, 164, 196, 255]:\n"
        "    x = torch.arange(i, dtype=torch.float64).reshape(1, 1, 1, i)\n"
        "    y = F.interpolate(x, size=(1, o), mode='nearest')\n"
        "    print(i, o, ' '.join(str(int(v)) for v in y.flatten().tolist()))\n";
  std::string cmd = "/usr/bin/python3 -c \"" + py.str() + "\" 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buf[4096];
  while (size_t got = fread(buf, 1, sizeof buf, pipe)) out.append(buf, got);
  REQUIRE_MESSAGE(pclose(pipe) == 0, "python failed: ", out);
  std::istringstream lines(out);
  int64_t cases = 0, wrong = 0;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ls(line);
    int64_t in = 0, o = 0;
    ls >> in >> o;
    std::vector<double> idx(static_cast<size_t>(in));
    for (int64_t i = 0; i < in; ++i) idx[static_cast<size_t>(i)] = static_cast<double>(i);
    auto y = upsample(from_vector<double>(idx, {1, 1, 1, in}), 1, o, UpsampleMode::Nearest).to_vector<double>();
    for (int64_t d = 0; d < o; ++d) {
      int64_t t = -1;
      ls >> t;
      if (y[static_cast<size_t>(d)] != static_cast<double>(t)) {
        ++wrong;
        INFO("in " << in << " out " << o << " d " << d << ": neurn " << y[static_cast<size_t>(d)] << ", torch " << t);
        CHECK(y[static_cast<size_t>(d)] == static_cast<double>(t));
      }
    }
    ++cases;
  }
  CHECK(cases == 32 * 77);
  CHECK(wrong == 0);
}
