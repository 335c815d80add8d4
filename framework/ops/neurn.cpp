#include "framework/ops/neurn.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <vector>

#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops/parallel_cpu.h"
#ifdef NEURN_WITH_CUDA
#include "framework/cuda/cuda_neurn.h"
#endif

namespace neurn {

// ---- options -----------------------------------------------------------------

const char* neurn_padding_name(NeuRNPadding p) {
  switch (p) {
    case NeuRNPadding::Valid: return "valid";
    case NeuRNPadding::Zero: return "zero";
    case NeuRNPadding::Reflect: return "reflect";
  }
  return "?";
}

const char* neurn_scope_name(NeuRNScope s) {
  switch (s) {
    case NeuRNScope::Image: return "image";
    case NeuRNScope::Channel: return "channel";
    case NeuRNScope::Batch: return "batch";
  }
  return "?";
}

NeuRNPadding parse_neurn_padding(const std::string& s) {
  if (s == "valid") return NeuRNPadding::Valid;
  if (s == "zero" || s == "zeros") return NeuRNPadding::Zero;
  if (s == "reflect") return NeuRNPadding::Reflect;
  NEURN_FAIL("neurn: unknown padding '", s, "' (expected valid, zero or reflect)");
}

NeuRNScope parse_neurn_scope(const std::string& s) {
  if (s == "image") return NeuRNScope::Image;
  if (s == "channel") return NeuRNScope::Channel;
  if (s == "batch") return NeuRNScope::Batch;
  NEURN_FAIL("neurn: unknown max_scope '", s, "' (expected image, channel or batch)");
}

void validate_neurn_options(const NeuRNOptions& opt) {
  NEURN_CHECK(opt.k >= 1 && opt.k % 2 == 1, "neurn: k must be odd and at least 1, got ", opt.k);
  NEURN_CHECK(opt.eps >= 0 && std::isfinite(opt.eps), "neurn: eps must be finite and >= 0, got ", opt.eps);
}

NeuRNOptions neurn_options_from_map(const std::map<std::string, std::string>& kv) {
  NeuRNOptions opt;
  for (const auto& [key, value] : kv) {
    if (key == "k") {
      char* end = nullptr;
      long long k = std::strtoll(value.c_str(), &end, 10);
      NEURN_CHECK(!value.empty() && *end == '\0', "neurn: k expects an odd integer, got '", value, "'");
      opt.k = k;
    } else if (key == "padding") {
      opt.padding = parse_neurn_padding(value);
    } else if (key == "max_scope" || key == "scope") {
      opt.max_scope = parse_neurn_scope(value);
    } else if (key == "eps") {
      char* end = nullptr;
      double e = std::strtod(value.c_str(), &end);
      NEURN_CHECK(!value.empty() && *end == '\0', "neurn: eps expects a number, got '", value, "'");
      opt.eps = e;
    } else {
      NEURN_FAIL("neurn: unknown option '", key, "' (expected k, padding, max_scope, eps)");
    }
  }
  validate_neurn_options(opt);
  return opt;
}

NeuRNOptions parse_neurn_options(const std::string& spec) {
  std::map<std::string, std::string> kv;
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    auto eq = item.find('=');
    NEURN_CHECK(eq != std::string::npos && eq > 0, "neurn: option '", item, "' in '", spec,
                "' is not key=value (e.g. k=3,padding=valid,max_scope=image)");
    std::string key = item.substr(0, eq);
    NEURN_CHECK(!kv.count(key), "neurn: option '", key, "' is given twice in '", spec, "'");
    kv[key] = item.substr(eq + 1);
  }
  return neurn_options_from_map(kv);
}

std::string neurn_options_str(const NeuRNOptions& opt) {
  std::ostringstream os;
  os << "k=" << opt.k << ",padding=" << neurn_padding_name(opt.padding)
     << ",max_scope=" << neurn_scope_name(opt.max_scope) << ",eps=" << opt.eps;
  return os.str();
}

// ---- CPU kernels ---------------------------------------------------------------

namespace {

struct Geom {
  int64_t N, C, H, W, r, k;
  NeuRNPadding pad;
  int64_t planes_per_group, groups;
  double eps;
};

// PyTorch's reflect: -1 -> 1, n -> n - 2 (the edge pixel is not repeated).
// Valid for -n < i < 2n - 1, which the k / 2 < H, W check guarantees.
inline int64_t reflect_index(int64_t i, int64_t n) {
  if (i < 0) i = -i;
  if (i >= n) i = 2 * (n - 1) - i;
  return i;
}

// In-bounds pixels of the patch along one axis (valid / zero padding).
inline int64_t clipped_count(int64_t i, int64_t r, int64_t n) {
  return std::min(n - 1, i + r) - std::max<int64_t>(0, i - r) + 1;
}

// Scratch reused across planes (one plane at a time, sized for the largest).
struct Work {
  std::vector<double> line, pre, suf, h, v, tmp;              // forward
  std::vector<double> p1, p2, h1, h2, v1, v2, acc;            // backward
  std::vector<int64_t> rc, cc;
};

// Sums of every window of k consecutive entries of a line: out[a] = in[a] +
// ... + in[a + k - 1] for a in [0, L - k]. The line is cut into blocks of k;
// a window is the suffix of one block plus the prefix of the next, so every
// partial sum spans fewer than k entries and the rounding error scales with
// the window's own values, not with the whole line's (a long prefix sum would
// lose the spread of a flat patch next to a bright one). `in` is a line of
// `width` interleaved values (a row of W columns for the vertical pass; 1 for
// the horizontal one); pre and suf hold L * width.
void window_sums(const double* in, int64_t L, int64_t width, int64_t k, double* pre, double* suf, double* out) {
  for (int64_t t = 0; t < L; ++t) {
    const double* x = in + t * width;
    double* p = pre + t * width;
    if (t % k == 0) {
      for (int64_t c = 0; c < width; ++c) p[c] = x[c];
    } else {
      const double* q = p - width;
      for (int64_t c = 0; c < width; ++c) p[c] = q[c] + x[c];
    }
  }
  for (int64_t t = L - 1; t >= 0; --t) {
    const double* x = in + t * width;
    double* sfx = suf + t * width;
    if (t % k == k - 1 || t == L - 1) {
      for (int64_t c = 0; c < width; ++c) sfx[c] = x[c];
    } else {
      const double* q = sfx + width;
      for (int64_t c = 0; c < width; ++c) sfx[c] = q[c] + x[c];
    }
  }
  for (int64_t a = 0; a + k <= L; ++a) {
    double* o = out + a * width;
    const double* sfx = suf + a * width;
    if (a % k == 0) {
      for (int64_t c = 0; c < width; ++c) o[c] = sfx[c];
    } else {
      const double* p = pre + (a + k - 1) * width;
      for (int64_t c = 0; c < width; ++c) o[c] = sfx[c] + p[c];
    }
  }
}

// Sigma and the patch mean for one (H, W) plane, after subtracting its mean
// `s`. Box sums of y and y^2 over the padded plane (H + 2r, W + 2r): window
// sums along every row, then along the columns of those. Out-of-bounds pixels
// are 0 for valid (and not counted) and zero padding (whose zeros, -s after
// the shift, are added back in closed form), mirrored for reflect. Writes
// sigma into `sig`, the shifted patch mean into `mean` (if given); returns the
// plane maximum of sigma (as stored in T) and its first index.
template <typename T>
void plane_forward(const Geom& g, const T* x, T* sig, T* mean, double* shift_out, double* pmax, int64_t* parg,
                   Work& w) {
  const int64_t H = g.H, W = g.W, r = g.r, k = g.k, HW = H * W;
  double s = 0;
  for (int64_t p = 0; p < HW; ++p) s += static_cast<double>(x[p]);
  s /= static_cast<double>(HW);
  *shift_out = s;
  if (k == 1) {  // a single pixel has no spread
    std::fill(sig, sig + HW, T(0));
    if (mean) std::fill(mean, mean + HW, T(0));
    *pmax = 0;
    *parg = 0;
    return;
  }
  const bool reflect = g.pad == NeuRNPadding::Reflect;
  const int64_t Wp = W + 2 * r, Hp = H + 2 * r;
  // Horizontal: padded row of y and y^2 -> window sums, into rows r..r+H-1 of
  // the (Hp, W) arrays h1, h2; the padding rows stay 0 or get mirrored.
  w.line.resize(2 * Wp);
  w.pre.resize(std::max(2 * Wp, 2 * Hp * W));
  w.suf.resize(std::max(2 * Wp, 2 * Hp * W));
  w.h.assign(2 * Hp * W, 0.0);  // (Hp, 2, W): y sums then y^2 sums per row
  w.v.resize(2 * H * W);
  w.tmp.resize(2 * Wp);
  double* line = w.line.data();
  for (int64_t i = 0; i < H; ++i) {
    const T* row = x + i * W;
    for (int64_t t = 0; t < Wp; ++t) {
      int64_t col = t - r;
      double y = 0;
      if (col >= 0 && col < W) {
        y = static_cast<double>(row[col]) - s;
      } else if (reflect) {
        y = static_cast<double>(row[reflect_index(col, W)]) - s;
      }
      line[2 * t] = y;
      line[2 * t + 1] = y * y;
    }
    window_sums(line, Wp, 2, k, w.pre.data(), w.suf.data(), w.tmp.data());
    double* h1 = w.h.data() + (i + r) * 2 * W;
    double* h2 = h1 + W;
    for (int64_t j = 0; j < W; ++j) {
      h1[j] = w.tmp[2 * j];
      h2[j] = w.tmp[2 * j + 1];
    }
  }
  if (reflect)
    for (int64_t iq = -r; iq < 0; ++iq) {
      std::copy_n(w.h.data() + (reflect_index(iq, H) + r) * 2 * W, 2 * W, w.h.data() + (iq + r) * 2 * W);
      std::copy_n(w.h.data() + (reflect_index(H - 1 - iq, H) + r) * 2 * W, 2 * W, w.h.data() + (H - 1 - iq + r) * 2 * W);
    }
  // Vertical: window sums down the columns (both arrays at once).
  window_sums(w.h.data(), Hp, 2 * W, k, w.pre.data(), w.suf.data(), w.v.data());
  w.cc.resize(W);
  for (int64_t j = 0; j < W; ++j) w.cc[j] = clipped_count(j, r, W);
  const double kk = static_cast<double>(k * k);
  const double tiny = 4.0 * static_cast<double>(k) * std::numeric_limits<double>::epsilon();
  double best = -1;
  int64_t best_at = 0;
  for (int64_t i = 0; i < H; ++i) {
    const double* v1 = w.v.data() + i * 2 * W;
    const double* v2 = v1 + W;
    const int64_t rc = clipped_count(i, r, H);
    T* srow = sig + i * W;
    T* mrow = mean ? mean + i * W : nullptr;
    for (int64_t j = 0; j < W; ++j) {
      double s1 = v1[j], s2 = v2[j], n = kk;
      if (g.pad == NeuRNPadding::Valid) {
        n = static_cast<double>(rc * w.cc[j]);
      } else if (g.pad == NeuRNPadding::Zero) {
        // The out-of-bounds pixels are zeros, i.e. -s after the shift.
        double m = kk - static_cast<double>(rc * w.cc[j]);
        s1 -= m * s;
        s2 += m * s * s;
      }
      double mu = s1 / n, e2 = s2 / n;
      double var = e2 - mu * mu;
      // Below the rounding level of the sums a variance is noise: a flat
      // patch must give exactly 0 (and so no gradient), not sqrt(1e-17).
      T sd = var > tiny * e2 ? static_cast<T>(std::sqrt(var)) : T(0);
      srow[j] = sd;
      if (mrow) mrow[j] = static_cast<T>(mu);
      if (static_cast<double>(sd) > best) {
        best = static_cast<double>(sd);
        best_at = i * W + j;
      }
    }
  }
  *pmax = best;
  *parg = best_at;
}

// dL/dx for one plane. The sensitivity of sigma at p is a_p = dL/dsigma_p /
// (2 sigma_p), and dvar_p/dy_q = 2 (y_q - mean_p) / n_p for every (padded)
// pixel q of p's patch, so dL/dy_q = 2 (y_q * sum_p A_p - sum_p A_p mean_p)
// with A_p = a_p / n_p, the sums running over the outputs p whose patch holds
// q: a box sum again. With reflect, the padded positions fold back onto the
// pixel they mirror.
template <typename T>
void plane_backward(const Geom& g, const T* x, const T* out, const T* mean, const T* gout, double s, double D,
                    double dc, int64_t arg, T* dx, Work& w) {
  const int64_t H = g.H, W = g.W, r = g.r, HW = H * W;
  if (g.k == 1) {
    std::fill(dx, dx + HW, T(0));
    return;
  }
  const bool reflect = g.pad == NeuRNPadding::Reflect;
  const double kk = static_cast<double>(g.k * g.k);
  w.cc.resize(W);
  w.rc.resize(H);
  for (int64_t j = 0; j < W; ++j) w.cc[j] = clipped_count(j, r, W);
  for (int64_t i = 0; i < H; ++i) w.rc[i] = clipped_count(i, r, H);
  // A and B, then their transposed box sums along rows (folded for reflect).
  w.h1.assign(HW, 0.0);  // row sums of A
  w.h2.assign(HW, 0.0);  // row sums of B
  w.p1.resize(W + 1);
  w.p2.resize(W + 1);
  double* pa = w.p1.data();
  double* pb = w.p2.data();
  const int64_t lo = reflect ? -r : 0, hi = reflect ? W + r : W;
  for (int64_t i = 0; i < H; ++i) {
    pa[0] = pb[0] = 0;
    for (int64_t j = 0; j < W; ++j) {
      int64_t p = i * W + j;
      double a = 0, b = 0;
      double o = static_cast<double>(out[p]);
      if (o > 0) {
        double sd = o * D;
        double dsig = static_cast<double>(gout[p]) / D + (p == arg ? dc : 0.0);
        double n = g.pad == NeuRNPadding::Valid ? static_cast<double>(w.rc[i] * w.cc[j]) : kk;
        a = dsig / (2 * sd * n);
        b = a * static_cast<double>(mean[p]);
      }
      pa[j + 1] = pa[j] + a;
      pb[j + 1] = pb[j] + b;
    }
    double* ha = w.h1.data() + i * W;
    double* hb = w.h2.data() + i * W;
    for (int64_t jq = lo; jq < hi; ++jq) {
      int64_t a0 = std::max<int64_t>(0, jq - r), a1 = std::min(W, jq + r + 1);
      int64_t d = reflect ? reflect_index(jq, W) : jq;
      ha[d] += pa[a1] - pa[a0];
      hb[d] += pb[a1] - pb[a0];
    }
  }
  // Running sums down the columns over the output rows whose patch holds
  // padded row iq, then dL/dx.
  w.v1.assign(W, 0.0);
  w.v2.assign(W, 0.0);
  double* va = w.v1.data();
  double* vb = w.v2.data();
  auto add_row = [&](int64_t i, double sign) {
    if (i < 0 || i >= H) return;
    const double* a = w.h1.data() + i * W;
    const double* b = w.h2.data() + i * W;
    for (int64_t j = 0; j < W; ++j) {
      va[j] += sign * a[j];
      vb[j] += sign * b[j];
    }
  };
  const int64_t rlo = reflect ? -r : 0, rhi = reflect ? H + r : H;
  if (reflect) w.acc.assign(HW, 0.0);
  for (int64_t i = rlo - r; i < rlo + r; ++i) add_row(i, 1.0);
  for (int64_t iq = rlo; iq < rhi; ++iq) {
    add_row(iq + r, 1.0);
    int64_t d = reflect ? reflect_index(iq, H) : iq;
    const T* xr = x + d * W;
    if (reflect) {
      double* ar = w.acc.data() + d * W;
      for (int64_t j = 0; j < W; ++j) ar[j] += 2 * ((static_cast<double>(xr[j]) - s) * va[j] - vb[j]);
    } else {
      T* dr = dx + d * W;
      for (int64_t j = 0; j < W; ++j) dr[j] = static_cast<T>(2 * ((static_cast<double>(xr[j]) - s) * va[j] - vb[j]));
    }
    add_row(iq - r, -1.0);
  }
  if (reflect)
    for (int64_t p = 0; p < HW; ++p) dx[p] = static_cast<T>(w.acc[p]);
}

// Planes run in parallel (each thread with its own scratch); the per-scope
// maximum is then taken over the plane maxima in order, so the first maximum
// in row-major order wins whatever the thread count.
template <typename T>
void forward_cpu(const Geom& g, const T* x, T* out, T* mean, double* shift, double* gmax, int64_t* garg) {
  const int64_t HW = g.H * g.W, planes = g.N * g.C;
  std::vector<double> pmax(planes);
  std::vector<int64_t> parg(planes);
  cpu::parallel_for(planes, 20 * HW, [&](int64_t b, int64_t e) {
    Work w;
    for (int64_t plane = b; plane < e; ++plane)
      plane_forward<T>(g, x + plane * HW, out + plane * HW, mean ? mean + plane * HW : nullptr, &shift[plane],
                       &pmax[plane], &parg[plane], w);
  });
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    double best = -1;
    int64_t best_at = 0;
    for (int64_t q = 0; q < g.planes_per_group; ++q) {
      int64_t plane = grp * g.planes_per_group + q;
      if (pmax[plane] > best) {  // strict: the first maximum wins
        best = pmax[plane];
        best_at = plane * HW + parg[plane];
      }
    }
    gmax[grp] = best;
    garg[grp] = best_at;
  }
  cpu::parallel_for(planes, 2 * HW, [&](int64_t b, int64_t e) {
    for (int64_t plane = b; plane < e; ++plane) {
      double D = gmax[plane / g.planes_per_group] + g.eps;
      T* o = out + plane * HW;
      // D == 0 only when eps == 0 and sigma == 0 everywhere: the output stays 0.
      if (D > 0)
        for (int64_t p = 0; p < HW; ++p) o[p] = static_cast<T>(static_cast<double>(o[p]) / D);
    }
  });
}

template <typename T>
void backward_cpu(const Geom& g, const T* x, const T* out, const T* mean, const double* shift, const double* gmax,
                  const int64_t* garg, const T* gout, T* dx) {
  const int64_t HW = g.H * g.W, planes = g.N * g.C;
  // dL/dc = -sum_q g_q sigma_q / D^2 = -sum_q g_q out_q / D over the scope.
  std::vector<double> pdot(planes);
  cpu::parallel_for(planes, 2 * HW, [&](int64_t b, int64_t e) {
    for (int64_t plane = b; plane < e; ++plane) {
      double dot = 0;
      const T* go = gout + plane * HW;
      const T* o = out + plane * HW;
      for (int64_t p = 0; p < HW; ++p) dot += static_cast<double>(go[p]) * static_cast<double>(o[p]);
      pdot[plane] = dot;
    }
  });
  std::vector<double> dc(g.groups);
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    double dot = 0;
    for (int64_t q = 0; q < g.planes_per_group; ++q) dot += pdot[grp * g.planes_per_group + q];
    double D = gmax[grp] + g.eps;
    dc[grp] = D > 0 ? -dot / D : 0.0;
  }
  cpu::parallel_for(planes, 24 * HW, [&](int64_t b, int64_t e) {
    Work w;
    for (int64_t plane = b; plane < e; ++plane) {
      int64_t grp = plane / g.planes_per_group, off = plane * HW;
      double D = gmax[grp] + g.eps;
      if (!(D > 0)) {
        std::fill(dx + off, dx + off + HW, T(0));
        continue;
      }
      int64_t arg = (garg[grp] >= off && garg[grp] < off + HW) ? garg[grp] - off : -1;
      plane_backward<T>(g, x + off, out + off, mean + off, gout + off, shift[plane], D, dc[grp], arg, dx + off, w);
    }
  });
}

Geom make_geom(const Tensor& x, const NeuRNOptions& opt) {
  Geom g;
  g.N = x.size(0);
  g.C = x.size(1);
  g.H = x.size(2);
  g.W = x.size(3);
  g.k = opt.k;
  g.r = opt.k / 2;
  g.pad = opt.padding;
  g.eps = opt.eps;
  switch (opt.max_scope) {
    case NeuRNScope::Image: g.planes_per_group = g.C; break;
    case NeuRNScope::Channel: g.planes_per_group = 1; break;
    case NeuRNScope::Batch: g.planes_per_group = g.N * g.C; break;
  }
  g.groups = g.planes_per_group > 0 ? g.N * g.C / g.planes_per_group : 0;
  return g;
}

#ifdef NEURN_WITH_CUDA
cuda::NeuRNGeometry cuda_geom(const Geom& g) {
  cuda::NeuRNGeometry c;
  c.n = g.N;
  c.c = g.C;
  c.h = g.H;
  c.w = g.W;
  c.r = g.r;
  c.padding = static_cast<int>(g.pad);
  c.planes_per_group = g.planes_per_group;
  c.groups = g.groups;
  c.eps = g.eps;
  return c;
}
#endif

}  // namespace

// ---- the op ------------------------------------------------------------------------

Tensor neurn_norm(const Tensor& x, const NeuRNOptions& opt) {
  validate_neurn_options(opt);
  NEURN_CHECK(x.defined(), "neurn: undefined input");
  NEURN_CHECK(x.dim() == 4, "neurn: expected x of shape (N, C, H, W), got ", shape_str(x.shape()));
  NEURN_CHECK(is_floating(x.dtype()), "neurn: expected a floating-point tensor, got ", dtype_name(x.dtype()));
  Geom g = make_geom(x, opt);
  if (opt.padding == NeuRNPadding::Reflect && x.numel() > 0)
    NEURN_CHECK(g.r < g.H && g.r < g.W, "neurn: reflect padding needs k / 2 < H and < W; got k = ", opt.k,
                " for an image of ", g.H, " x ", g.W, " (input ", shape_str(x.shape()), ")");
  Tensor out = Tensor::empty(x.shape(), x.options());
  count_flops(kNeuRNFlopsPerElement * x.numel());
  if (x.device().is_meta() || x.numel() == 0) return out;

  const bool need_grad = any_requires_grad({x});
  TensorOptions f64{DType::Float64, x.device(), false};
  Tensor mean = need_grad ? Tensor::empty(x.shape(), x.options()) : Tensor();
  Tensor shift = Tensor::empty({g.N * g.C}, f64);
  Tensor gmax = Tensor::empty({g.groups}, f64);
  Tensor garg = Tensor::empty({g.groups}, {DType::Int64, x.device(), false});
  if (x.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
    NEURN_CHECK(x.dtype() == DType::Float32, "neurn: dtype ", dtype_name(x.dtype()),
                " is not supported on CUDA (expected float32; float64 runs on the CPU)");
    cuda::NeuRNGeometry cg = cuda_geom(g);
    Tensor scratch = Tensor::empty({static_cast<int64_t>(cuda::neurn_scratch_doubles(cg))}, f64);
    cuda::neurn_forward(cg, static_cast<const float*>(x.raw_data()), static_cast<float*>(out.raw_data()),
                        need_grad ? static_cast<float*>(mean.raw_data()) : nullptr,
                        static_cast<double*>(shift.raw_data()), static_cast<double*>(gmax.raw_data()),
                        static_cast<int64_t*>(garg.raw_data()), static_cast<double*>(scratch.raw_data()));
#else
    NEURN_FAIL("neurn: this build has no CUDA backend");
#endif
  } else {
    dispatch_float(x.dtype(), "neurn", [&](auto z) {
      using T = decltype(z);
      forward_cpu<T>(g, x.data<T>(), out.data<T>(), need_grad ? mean.data<T>() : nullptr, shift.data<double>(),
                     gmax.data<double>(), garg.data<int64_t>());
    });
  }
  if (!need_grad) return out;
  Tensor xd = x.detach(), od = out.detach();
  return attach_grad(out, "neurn", {x}, [g, xd, od, mean, shift, gmax, garg](const Tensor& gout_in) -> std::vector<Tensor> {
    Tensor gout = gout_in.dtype() == xd.dtype() ? gout_in : gout_in.to(xd.dtype());
    Tensor dx = Tensor::empty(xd.shape(), xd.options());
    if (xd.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
      cuda::NeuRNGeometry cg = cuda_geom(g);
      Tensor scratch = Tensor::empty({static_cast<int64_t>(cuda::neurn_scratch_doubles(cg))},
                                     {DType::Float64, xd.device(), false});
      cuda::neurn_backward(cg, static_cast<const float*>(xd.raw_data()), static_cast<const float*>(od.raw_data()),
                           static_cast<const float*>(mean.raw_data()), static_cast<const double*>(shift.raw_data()),
                           static_cast<const double*>(gmax.raw_data()), static_cast<const int64_t*>(garg.raw_data()),
                           static_cast<const float*>(gout.raw_data()), static_cast<float*>(dx.raw_data()),
                           static_cast<double*>(scratch.raw_data()));
#endif
      return {dx};
    }
    dispatch_float(xd.dtype(), "neurn", [&](auto z) {
      using T = decltype(z);
      backward_cpu<T>(g, xd.data<T>(), od.data<T>(), mean.data<T>(), shift.data<double>(), gmax.data<double>(),
                      garg.data<int64_t>(), gout.data<T>(), dx.data<T>());
    });
    return {dx};
  });
}

}  // namespace neurn
