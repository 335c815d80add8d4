#include "framework/ops/neurn.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <vector>

#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops/neurn_kernels.h"
#include "framework/ops/parallel_cpu.h"

namespace neurn {

// ---- options -----------------------------------------------------------------

const char* neurn_padding_name(NeuRNPadding p) {
  switch (p) {
    case NeuRNPadding::Valid:
      return "valid";
    case NeuRNPadding::Zero:
      return "zero";
    case NeuRNPadding::Reflect:
      return "reflect";
  }
  return "?";
}

const char* neurn_scope_name(NeuRNScope s) {
  switch (s) {
    case NeuRNScope::Image:
      return "image";
    case NeuRNScope::Channel:
      return "channel";
    case NeuRNScope::Batch:
      return "batch";
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
  std::vector<double> line1, line2, pre, suf, h, v, acc, lines, tr, tro, tmp;
  std::vector<double> inv_rc, inv_cc;
  std::vector<int64_t> rc, cc;
};

// Up to this k, window sums are added up directly (k - 1 vector adds per
// output, the fewest operations); above it, the block scheme below takes a
// fixed three passes whatever k. Either way the cost is bounded independently
// of k, and every partial sum spans at most k entries.
constexpr int64_t kDirectMaxK = 7;

// Window sums of `width` interleaved lines at once (a "row" is `width`
// contiguous doubles): out row a = row(a) + ... + row(a + k - 1) for a in
// [0, n). row(t) returns a pointer to row t, or nullptr for a row of zeros.
//
// The block scheme (van Herk / Gil-Werman, for sums): rows are cut into
// blocks of k; a window is the suffix of one block plus the prefix of the
// next, so every partial sum spans fewer than k rows and its rounding error
// scales with the window's own values, not with a whole prefix (which would
// blur the spread of a flat patch next to a bright one).
template <typename RowFn>
void window_sums(RowFn row, int64_t n, int64_t width, int64_t k, double* __restrict out, Work& w) {
  if (k <= kDirectMaxK) {
    for (int64_t a = 0; a < n; ++a) {
      double* __restrict o = out + a * width;
      bool first = true;
      for (int64_t t = a; t < a + k; ++t) {
        const double* __restrict x = row(t);
        if (!x) continue;
        if (first) {
          std::copy(x, x + width, o);
          first = false;
        } else {
          for (int64_t c = 0; c < width; ++c) o[c] += x[c];
        }
      }
      if (first) std::fill(o, o + width, 0.0);
    }
    return;
  }
  const int64_t L = n + k - 1;
  w.pre.resize(L * width);
  w.suf.resize(L * width);
  for (int64_t t = 0; t < L; ++t) {
    const double* __restrict x = row(t);
    double* __restrict p = w.pre.data() + t * width;
    if (t % k == 0) {
      if (x)
        std::copy(x, x + width, p);
      else
        std::fill(p, p + width, 0.0);
    } else {
      const double* __restrict q = p - width;
      if (x) {
        for (int64_t c = 0; c < width; ++c) p[c] = q[c] + x[c];
      } else {
        std::copy(q, q + width, p);
      }
    }
  }
  for (int64_t t = L - 1; t >= 0; --t) {
    const double* __restrict x = row(t);
    double* __restrict sfx = w.suf.data() + t * width;
    if (t % k == k - 1 || t == L - 1) {
      if (x)
        std::copy(x, x + width, sfx);
      else
        std::fill(sfx, sfx + width, 0.0);
    } else {
      const double* __restrict q = sfx + width;
      if (x) {
        for (int64_t c = 0; c < width; ++c) sfx[c] = q[c] + x[c];
      } else {
        std::copy(q, q + width, sfx);
      }
    }
  }
  for (int64_t a = 0; a < n; ++a) {
    double* __restrict o = out + a * width;
    const double* __restrict sfx = w.suf.data() + a * width;
    if (a % k == 0) {
      std::copy(sfx, sfx + width, o);
    } else {
      const double* __restrict p = w.pre.data() + (a + k - 1) * width;
      for (int64_t c = 0; c < width; ++c) o[c] = sfx[c] + p[c];
    }
  }
}

// Window sums along one line of n + k - 1 doubles: out[a] for a in [0, n);
// the same two schemes, written for a single line.
void window_sums_line(const double* __restrict line, int64_t n, int64_t k, double* __restrict out, Work& w) {
  if (k <= kDirectMaxK) {
    std::copy(line, line + n, out);
    for (int64_t t = 1; t < k; ++t)
      for (int64_t a = 0; a < n; ++a) out[a] += line[a + t];
    return;
  }
  const int64_t L = n + k - 1;
  w.pre.resize(L);
  w.suf.resize(L);
  double* __restrict pre = w.pre.data();
  double* __restrict suf = w.suf.data();
  for (int64_t b = 0; b < L; b += k) {
    const int64_t e = std::min(L, b + k);
    double acc = 0;
    for (int64_t t = b; t < e; ++t) pre[t] = acc += line[t];
    acc = 0;
    for (int64_t t = e - 1; t >= b; --t) suf[t] = acc += line[t];
  }
  for (int64_t a = 0; a < n; ++a) out[a] = suf[a] + (a % k == 0 ? 0.0 : pre[a + k - 1]);
}

// Window sums along many lines at once: `lines` holds nlines lines of
// n + k - 1 doubles; line l's sums go to out + l * out_stride. The block
// scheme runs on groups of 8 lines interleaved column by column, so its
// passes are vector operations across lines instead of one long chain of
// dependent adds along each line.
void lines_window_sums(const double* lines, int64_t nlines, int64_t n, int64_t k, double* out, int64_t out_stride,
                       Work& w) {
  const int64_t L = n + k - 1;
  if (k <= kDirectMaxK) {
    for (int64_t l = 0; l < nlines; ++l) window_sums_line(lines + l * L, n, k, out + l * out_stride, w);
    return;
  }
  constexpr int64_t G = 8;
  w.tr.resize(L * G);
  w.tro.resize(n * G);
  for (int64_t l0 = 0; l0 < nlines; l0 += G) {
    const int64_t g = std::min(G, nlines - l0);
    const double* __restrict src = lines + l0 * L;
    double* __restrict tr_w = w.tr.data();
    for (int64_t t = 0; t < L; ++t)
      for (int64_t u = 0; u < g; ++u) tr_w[t * g + u] = src[u * L + t];
    const double* tr = w.tr.data();
    window_sums([tr, g](int64_t t) { return tr + t * g; }, n, g, k, w.tro.data(), w);
    double* __restrict dst = out + l0 * out_stride;
    const double* __restrict tro = w.tro.data();
    for (int64_t a = 0; a < n; ++a)
      for (int64_t u = 0; u < g; ++u) dst[u * out_stride + a] = tro[a * g + u];
  }
}

void prepare_counts(const Geom& g, Work& w) {
  w.rc.resize(g.H);
  w.cc.resize(g.W);
  w.inv_rc.resize(g.H);
  w.inv_cc.resize(g.W);
  for (int64_t i = 0; i < g.H; ++i) {
    w.rc[i] = clipped_count(i, g.r, g.H);
    w.inv_rc[i] = 1.0 / static_cast<double>(w.rc[i]);
  }
  for (int64_t j = 0; j < g.W; ++j) {
    w.cc[j] = clipped_count(j, g.r, g.W);
    w.inv_cc[j] = 1.0 / static_cast<double>(w.cc[j]);
  }
}

// Sum (in double) with four independent accumulators, so the adds pipeline
// (one chain would wait for every add).
template <typename T>
double plane_sum(const T* __restrict x, int64_t n) {
  double a[4] = {0, 0, 0, 0};
  int64_t p = 0;
  for (; p + 4 <= n; p += 4)
    for (int u = 0; u < 4; ++u) a[u] += static_cast<double>(x[p + u]);
  for (; p < n; ++p) a[0] += static_cast<double>(x[p]);
  return (a[0] + a[1]) + (a[2] + a[3]);
}

// The first index of the largest value (NaN-free input).
template <typename T>
int64_t first_argmax(const T* __restrict x, int64_t n) {
  T m[4] = {x[0], x[0], x[0], x[0]};
  int64_t p = 0;
  for (; p + 4 <= n; p += 4)
    for (int u = 0; u < 4; ++u) m[u] = x[p + u] > m[u] ? x[p + u] : m[u];
  for (; p < n; ++p) m[0] = x[p] > m[0] ? x[p] : m[0];
  const T best = std::max(std::max(m[0], m[1]), std::max(m[2], m[3]));
  for (p = 0; p < n; ++p)
    if (x[p] == best) return p;
  return 0;
}

// Per column of row i: 1 / (pixels in the patch) and, for zero padding, the
// number of out-of-bounds pixels of the patch.
void row_counts(const Geom& g, const Work& w, int64_t i, double* inv_n, double* n_out) {
  const double inv_kk = 1.0 / static_cast<double>(g.k * g.k), kk = static_cast<double>(g.k * g.k);
  for (int64_t j = 0; j < g.W; ++j) {
    inv_n[j] = g.pad == NeuRNPadding::Valid ? w.inv_rc[i] * w.inv_cc[j] : inv_kk;
    n_out[j] = g.pad == NeuRNPadding::Zero ? kk - static_cast<double>(w.rc[i] * w.cc[j]) : 0.0;
  }
}

// Sigma and the patch mean for one (H, W) plane, after subtracting its mean
// `s`. Box sums of y and y^2: window sums along each (padded) row, then down
// the columns of those. Out-of-bounds pixels are 0 for valid (and not
// counted) and for zero padding (whose zeros, -s after the shift, are added
// back in closed form); reflect mirrors rows and columns. Writes sigma into
// `sig`, the shifted patch mean into `mean` (if given); returns the plane
// maximum of sigma (as stored in T) and its first index.
template <typename T>
void plane_forward(const Geom& g, const T* __restrict x, T* __restrict sig, T* __restrict mean, double* shift_out,
                   double* pmax, int64_t* parg, Work& w) {
  const int64_t H = g.H, W = g.W, r = g.r, k = g.k, HW = H * W;
  const double s = plane_sum(x, HW) / static_cast<double>(HW);
  *shift_out = s;
  if (k == 1) {  // a single pixel has no spread
    std::fill(sig, sig + HW, T(0));
    if (mean) std::fill(mean, mean + HW, T(0));
    *pmax = 0;
    *parg = 0;
    return;
  }
  const bool reflect = g.pad == NeuRNPadding::Reflect;
  const int64_t Wp = W + 2 * r;
  w.lines.resize(2 * H * Wp);  // line 2i: row i of y, padded; line 2i + 1: of y^2
  w.h.resize(H * 2 * W);       // row i: [sums of y (W) | sums of y^2 (W)]
  w.v.resize(H * 2 * W);
  for (int64_t i = 0; i < H; ++i) {
    const T* __restrict row = x + i * W;
    double* __restrict l1 = w.lines.data() + 2 * i * Wp;
    double* __restrict l2 = l1 + Wp;
    for (int64_t c = 0; c < r; ++c) {
      double a = reflect ? static_cast<double>(row[reflect_index(c - r, W)]) - s : 0.0;
      double b = reflect ? static_cast<double>(row[reflect_index(W + c, W)]) - s : 0.0;
      l1[c] = a;
      l2[c] = a * a;
      l1[r + W + c] = b;
      l2[r + W + c] = b * b;
    }
    for (int64_t j = 0; j < W; ++j) {
      double y = static_cast<double>(row[j]) - s;
      l1[r + j] = y;
      l2[r + j] = y * y;
    }
  }
  lines_window_sums(w.lines.data(), 2 * H, W, k, w.h.data(), W, w);
  // Down the columns: padded row t is image row t - r (mirrored, or zeros).
  const double* hp = w.h.data();
  auto row = [&](int64_t t) -> const double* {
    int64_t i = t - r;
    if (reflect) return hp + reflect_index(i, H) * 2 * W;
    return (i >= 0 && i < H) ? hp + i * 2 * W : nullptr;
  };
  window_sums(row, H, 2 * W, k, w.v.data(), w);

  prepare_counts(g, w);
  const double tiny = 4.0 * static_cast<double>(k) * std::numeric_limits<double>::epsilon();
  w.line1.resize(W);
  w.line2.resize(W);
  double* __restrict inv_n = w.line1.data();
  double* __restrict n_out = w.line2.data();
  for (int64_t i = 0; i < H; ++i) {
    const double* __restrict v1 = w.v.data() + i * 2 * W;
    const double* __restrict v2 = v1 + W;
    T* __restrict srow = sig + i * W;
    row_counts(g, w, i, inv_n, n_out);
    for (int64_t j = 0; j < W; ++j) {
      // Zero padding: the out-of-bounds pixels are zeros, i.e. -s after the shift.
      double s1 = v1[j] - n_out[j] * s, s2 = v2[j] + n_out[j] * s * s;
      double mu = s1 * inv_n[j], e2 = s2 * inv_n[j];
      double var = e2 - mu * mu;
      // Below the rounding level of the sums a variance is noise: a flat
      // patch must give exactly 0 (and so no gradient), not sqrt(1e-17).
      var = var > tiny * e2 ? var : 0.0;
      srow[j] = static_cast<T>(std::sqrt(var));
    }
    if (mean) {
      T* __restrict mrow = mean + i * W;
      for (int64_t j = 0; j < W; ++j) mrow[j] = static_cast<T>((v1[j] - n_out[j] * s) * inv_n[j]);
    }
  }
  const int64_t best_at = first_argmax(sig, HW);
  const T best = sig[best_at];
  *pmax = static_cast<double>(best);
  *parg = best_at;
}

// dL/dx for one plane. The sensitivity of sigma at p is a_p = dL/dsigma_p /
// (2 sigma_p), and dvar_p/dy_q = 2 (y_q - mean_p) / n_p for every (padded)
// pixel q of p's patch, so dL/dy_q = 2 (y_q * sum_p A_p - sum_p A_p mean_p)
// with A_p = a_p / n_p, the sums running over the outputs p whose patch holds
// q: a box sum again. With reflect, the padded positions fold back onto the
// pixel they mirror.
template <typename T>
void plane_backward(const Geom& g, const T* __restrict x, const T* __restrict out, const T* __restrict mean,
                    const T* __restrict gout, double s, double D, double dc, int64_t arg, T* __restrict dx, Work& w) {
  const int64_t H = g.H, W = g.W, r = g.r, k = g.k, HW = H * W;
  if (k == 1) {
    std::fill(dx, dx + HW, T(0));
    return;
  }
  const bool reflect = g.pad == NeuRNPadding::Reflect;
  prepare_counts(g, w);
  const double inv_D = 1.0 / D;
  // Along rows: A and B on a zero-padded line; the outputs are the padded
  // columns [-r, W + r) for reflect (then folded), [0, W) otherwise.
  const int64_t pad = reflect ? 2 * r : r, n_out = reflect ? W + 2 * r : W;
  const int64_t Lw = W + 2 * pad;
  w.lines.assign(2 * H * Lw, 0.0);  // line 2i: row i of A, zero-padded; line 2i + 1: of B
  w.acc.resize(2 * W);
  w.h.resize(H * 2 * W);  // row i: [row sums of A (W) | of B (W)]
  double* __restrict inv_n = w.acc.data();
  double* __restrict unused = inv_n + W;
  for (int64_t i = 0; i < H; ++i) {
    const int64_t off = i * W;
    double* __restrict la = w.lines.data() + 2 * i * Lw + pad;
    double* __restrict lb = la + Lw;
    row_counts(g, w, i, inv_n, unused);
    for (int64_t j = 0; j < W; ++j) {
      // sigma = o * D and dL/dsigma = g / D, so a = g / (2 sigma D n); the
      // argmax gets dL/dc as well (below).
      double o = static_cast<double>(out[off + j]);
      double safe_o = o > 0 ? o : 1.0;
      double a = static_cast<double>(gout[off + j]) * inv_n[j] * 0.5 * inv_D * inv_D / safe_o;
      a = o > 0 ? a : 0.0;
      la[j] = a;
      lb[j] = a * static_cast<double>(mean[off + j]);
    }
    if (arg >= off && arg < off + W && out[arg] > 0) {
      const int64_t j = arg - off;
      double dsig = static_cast<double>(gout[arg]) * inv_D + dc;
      la[j] = dsig * inv_n[j] / (2 * static_cast<double>(out[arg]) * D);
      lb[j] = la[j] * static_cast<double>(mean[arg]);
    }
  }
  if (reflect) {
    w.tmp.resize(2 * H * n_out);
    lines_window_sums(w.lines.data(), 2 * H, n_out, k, w.tmp.data(), n_out, w);
    std::fill(w.h.begin(), w.h.end(), 0.0);
    for (int64_t l = 0; l < 2 * H; ++l) {
      const double* t = w.tmp.data() + l * n_out;
      double* hr = w.h.data() + l * W;
      for (int64_t jq = -r; jq < W + r; ++jq) hr[reflect_index(jq, W)] += t[jq + r];
    }
  } else {
    lines_window_sums(w.lines.data(), 2 * H, W, k, w.h.data(), W, w);
  }
  // Down the columns: output row iq (padded rows [-r, H + r) for reflect)
  // sums the row sums of image rows iq - r .. iq + r.
  const int64_t rpad = reflect ? 2 * r : r, rows_out = reflect ? H + 2 * r : H;
  const double* hp = w.h.data();
  auto row = [&](int64_t t) -> const double* {
    int64_t i = t - rpad;
    return (i >= 0 && i < H) ? hp + i * 2 * W : nullptr;
  };
  w.v.resize(rows_out * 2 * W);
  window_sums(row, rows_out, 2 * W, k, w.v.data(), w);
  if (reflect) {
    w.acc.assign(HW, 0.0);
    for (int64_t iq = -r; iq < H + r; ++iq) {
      int64_t d = reflect_index(iq, H);
      const double* __restrict ta = w.v.data() + (iq + r) * 2 * W;
      const double* __restrict tb = ta + W;
      const T* __restrict xr = x + d * W;
      double* __restrict ar = w.acc.data() + d * W;
      for (int64_t j = 0; j < W; ++j) ar[j] += 2 * ((static_cast<double>(xr[j]) - s) * ta[j] - tb[j]);
    }
    for (int64_t p = 0; p < HW; ++p) dx[p] = static_cast<T>(w.acc[p]);
  } else {
    for (int64_t i = 0; i < H; ++i) {
      const double* __restrict ta = w.v.data() + i * 2 * W;
      const double* __restrict tb = ta + W;
      const T* __restrict xr = x + i * W;
      T* __restrict dr = dx + i * W;
      for (int64_t j = 0; j < W; ++j) dr[j] = static_cast<T>(2 * ((static_cast<double>(xr[j]) - s) * ta[j] - tb[j]));
    }
  }
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
      const T* __restrict go = gout + plane * HW;
      const T* __restrict o = out + plane * HW;
      double d[4] = {0, 0, 0, 0};
      int64_t p = 0;
      for (; p + 4 <= HW; p += 4)
        for (int u = 0; u < 4; ++u) d[u] += static_cast<double>(go[p + u]) * static_cast<double>(o[p + u]);
      for (; p < HW; ++p) d[0] += static_cast<double>(go[p]) * static_cast<double>(o[p]);
      pdot[plane] = (d[0] + d[1]) + (d[2] + d[3]);
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

NeuRNGeometry make_geometry(const Tensor& x, const NeuRNOptions& opt) {
  NeuRNGeometry c;
  c.n = x.size(0);
  c.c = x.size(1);
  c.h = x.size(2);
  c.w = x.size(3);
  c.r = opt.k / 2;
  c.padding = static_cast<int>(opt.padding);
  switch (opt.max_scope) {
    case NeuRNScope::Image:
      c.planes_per_group = c.c;
      break;
    case NeuRNScope::Channel:
      c.planes_per_group = 1;
      break;
    case NeuRNScope::Batch:
      c.planes_per_group = c.n * c.c;
      break;
  }
  c.groups = c.planes_per_group > 0 ? c.n * c.c / c.planes_per_group : 0;
  c.eps = opt.eps;
  return c;
}

Geom cpu_geom(const NeuRNGeometry& c) {
  Geom g;
  g.N = c.n;
  g.C = c.c;
  g.H = c.h;
  g.W = c.w;
  g.r = c.r;
  g.k = 2 * c.r + 1;
  g.pad = static_cast<NeuRNPadding>(c.padding);
  g.eps = c.eps;
  g.planes_per_group = c.planes_per_group;
  g.groups = c.groups;
  return g;
}

void neurn_cpu(const NeuRNGeometry& c, const Tensor& x, const Tensor& out, const Tensor& mean, const Tensor& shift,
               const Tensor& gmax, const Tensor& garg) {
  const Geom g = cpu_geom(c);
  dispatch_float(x.dtype(), "neurn", [&](auto z) {
    using T = decltype(z);
    forward_cpu<T>(g, x.data<T>(), out.data<T>(), mean.defined() ? mean.data<T>() : nullptr, shift.data<double>(),
                   gmax.data<double>(), garg.data<int64_t>());
  });
}

void neurn_backward_cpu(const NeuRNGeometry& c, const Tensor& x, const Tensor& out, const Tensor& mean,
                        const Tensor& shift, const Tensor& gmax, const Tensor& garg, const Tensor& gout,
                        const Tensor& dx) {
  const Geom g = cpu_geom(c);
  dispatch_float(x.dtype(), "neurn", [&](auto z) {
    using T = decltype(z);
    backward_cpu<T>(g, x.data<T>(), out.data<T>(), mean.data<T>(), shift.data<double>(), gmax.data<double>(),
                    garg.data<int64_t>(), gout.data<T>(), dx.data<T>());
  });
}

}  // namespace

NEURN_DEFINE_KERNEL(neurn_kernel);
NEURN_DEFINE_KERNEL(neurn_backward_kernel);
NEURN_REGISTER_KERNEL(neurn_kernel, DeviceType::CPU, neurn_cpu);
NEURN_REGISTER_KERNEL(neurn_backward_kernel, DeviceType::CPU, neurn_backward_cpu);

// ---- the op ------------------------------------------------------------------------

Tensor neurn_norm(const Tensor& x, const NeuRNOptions& opt) {
  validate_neurn_options(opt);
  NEURN_CHECK(x.defined(), "neurn: undefined input");
  NEURN_CHECK(x.dim() == 4, "neurn: expected x of shape (N, C, H, W), got ", shape_str(x.shape()));
  NEURN_CHECK(is_floating(x.dtype()), "neurn: expected a floating-point tensor, got ", dtype_name(x.dtype()));
  const NeuRNGeometry g = make_geometry(x, opt);
  if (opt.padding == NeuRNPadding::Reflect && x.numel() > 0)
    NEURN_CHECK(g.r < g.h && g.r < g.w, "neurn: reflect padding needs k / 2 < H and < W; got k = ", opt.k,
                " for an image of ", g.h, " x ", g.w, " (input ", shape_str(x.shape()), ")");
  Tensor out = Tensor::empty(x.shape(), x.options());  // (N, C, H, W)
  count_flops(kNeuRNFlopsPerElement * x.numel());
  if (x.numel() == 0) return out;

  const bool need_grad = any_requires_grad({x});
  TensorOptions f64{DType::Float64, x.device(), false};
  Tensor mean = need_grad ? Tensor::empty(x.shape(), x.options()) : Tensor();  // (N, C, H, W)
  Tensor shift = Tensor::empty({g.n * g.c}, f64);                               // (N C)
  Tensor gmax = Tensor::empty({g.groups}, f64);                                 // (groups)
  Tensor garg = Tensor::empty({g.groups}, {DType::Int64, x.device(), false});   // (groups)
  neurn_kernel(x.device(), g, x, out, mean, shift, gmax, garg);
  if (!need_grad) return out;
  SavedTensor xs(x, "neurn", "input"), os(out, "neurn", "output");
  return attach_grad(
      out, "neurn", {x}, [g, xs, os, mean, shift, gmax, garg](const Tensor& gout_in) -> std::vector<Tensor> {
        const Tensor &xd = xs.get(), &od = os.get();
        Tensor gout = gout_in.dtype() == xd.dtype() ? gout_in : gout_in.to(xd.dtype());
        Tensor dx = Tensor::empty(xd.shape(), xd.options());
        neurn_backward_kernel(xd.device(), g, xd, od, mean, shift, gmax, garg, gout, dx);
        return {dx};
      });
}

}  // namespace neurn
