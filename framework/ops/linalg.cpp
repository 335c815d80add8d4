// matmul (batched, broadcast batch axes) and linear, through one row-major
// strided-batched GEMM kernel (linalg_kernels.h): OpenBLAS on the CPU
// (registered here), cuBLAS on CUDA (framework/cuda/linalg.cu).
#include "framework/ops/linalg.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops/conv_cpu.h"
#include "framework/ops/denormals_cpu.h"
#include "framework/ops/linalg_kernels.h"
#include "framework/ops/reduce_kernels.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape_ops.h"

namespace neurn {

namespace {

using Gemm = GemmArgs;

void gemm_cpu(const Gemm& g, const Tensor& a, const Tensor& b, const Tensor& c) {
  if (g.m == 0 || g.n == 0) return;
  // Subnormal operands (the gradients of a saturated softmax) would slow
  // OpenBLAS's kernels many times over (denormals_cpu.h).
  cpu::FlushDenormals flush;
  dispatch_float(a.dtype(), "matmul", [&](auto z) {
    using T = decltype(z);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* pc = c.data<T>();
    if (g.k == 0) {  // an empty sum: C = beta C (C may be uninitialised when beta = 0)
      for (int64_t i = 0; i < g.batch; ++i)
        for (int64_t r = 0; r < g.m; ++r)
          for (int64_t j = 0; j < g.n; ++j) {
            T& out = pc[i * g.stride_c + r * g.ldc + j];
            out = g.beta == 0.0 ? T(0) : out * static_cast<T>(g.beta);
          }
      return;
    }
    auto ta = g.trans_a ? CblasTrans : CblasNoTrans;
    auto tb = g.trans_b ? CblasTrans : CblasNoTrans;
    auto one = [&](int64_t i) {
      const T* ai = pa + i * g.stride_a;
      const T* bi = pb + i * g.stride_b;
      T* ci = pc + i * g.stride_c;
      if constexpr (std::is_same_v<T, float>) {
        cblas_sgemm(CblasRowMajor, ta, tb, static_cast<blasint>(g.m), static_cast<blasint>(g.n),
                    static_cast<blasint>(g.k), static_cast<float>(g.alpha), ai, static_cast<blasint>(g.lda), bi,
                    static_cast<blasint>(g.ldb), static_cast<float>(g.beta), ci, static_cast<blasint>(g.ldc));
      } else {
        cblas_dgemm(CblasRowMajor, ta, tb, static_cast<blasint>(g.m), static_cast<blasint>(g.n),
                    static_cast<blasint>(g.k), g.alpha, ai, static_cast<blasint>(g.lda), bi,
                    static_cast<blasint>(g.ldb), g.beta, ci, static_cast<blasint>(g.ldc));
      }
    };
    if (g.batch == 1) {
      // One product, split over the pool's threads in single-threaded
      // OpenBLAS calls as conv2d's are (cpu::parallel_gemm): OpenBLAS's own
      // threads spin between calls and, on a machine with other work, ran
      // linear's products at a fraction of the pool's rate (64x1024x3200 at
      // 8 against 202 GFLOP/s on 2 cores); they would also run outside the
      // flushing mode set above.
      cpu::parallel_gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, static_cast<T>(g.alpha), pa, g.lda, pb, g.ldb,
                         static_cast<T>(g.beta), pc, g.ldc);
      return;
    }
    // Many products (attention heads, batched matmul): each of our threads
    // runs whole products with single-threaded OpenBLAS, which on few cores
    // beats synchronising OpenBLAS's threads inside every small product. The
    // outputs are disjoint (stride_c = m n), so the split changes no result.
    cpu::SingleThreadedBlas single;
    cpu::parallel_for(g.batch, 2 * g.m * g.n * g.k, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) one(i);
    });
  });
}

void fill_rows_cpu(const Tensor& bias, const Tensor& y) {
  const size_t row_bytes = static_cast<size_t>(bias.numel()) * dtype_size(y.dtype());
  const int64_t rows = y.numel() / bias.numel();
  char* py = static_cast<char*>(y.raw_data());
  for (int64_t r = 0; r < rows; ++r) std::memcpy(py + r * row_bytes, bias.raw_data(), row_bytes);
}

// The bias gradient is the column sum of g seen as (rows, n): the sums'
// kernel, so it has their contract (reduce_kernels.h: a fixed order, float32
// partial sums of at most 16 rows added in double, the same bits on any
// number of threads) instead of one float32 accumulator per column.
void sum_rows_cpu(const Tensor& g, const Tensor& db) {
  const int64_t n = db.numel(), rows = g.numel() / n;
  sum_kernel(g.device(), reshape(g, {rows, n}), reshape(db, {1, n}));
}

void run_gemm(const Gemm& g, const Tensor& a, const Tensor& b, const Tensor& c) {
  if (c.numel() > 0) gemm_kernel(c.device(), g, a, b, c);
}

Shape batch_of(const Tensor& x) { return Shape(x.shape().begin(), x.shape().end() - 2); }

// Left-pads s with ones to `n` axes.
Shape left_pad(const Shape& s, size_t n) {
  Shape out(n - s.size(), 1);
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

// x (batch..., r, c) prepared for a GEMM over out_batch: its batch stride, and
// x itself or, when its batch axes broadcast only partly, a copy expanded to
// out_batch.
Tensor batch_operand(const Tensor& x, const Shape& out_batch, int64_t& stride) {
  int64_t mat = x.shape()[x.dim() - 2] * x.shape()[x.dim() - 1];
  Shape xb = left_pad(batch_of(x), out_batch.size());
  if (shape_numel(xb) == 1) {
    stride = 0;
    return x;
  }
  stride = mat;
  if (xb == out_batch) return x;
  int64_t r = x.shape()[x.dim() - 2], c = x.shape()[x.dim() - 1];
  Shape padded = xb, full = out_batch;
  padded.insert(padded.end(), {r, c});
  full.insert(full.end(), {r, c});
  NoGradGuard ng;
  return expand(x.reshape(padded), full);
}

// out (out_batch..., m, n) = op(a) @ op(b), where a (batch_a..., ra, ca) and
// b (batch_b..., rb, cb) broadcast over out_batch; no autograd.
Tensor batched_product(const Tensor& a, bool ta, const Tensor& b, bool tb, const Shape& out_batch) {
  int64_t ra = a.shape()[a.dim() - 2], ca = a.shape()[a.dim() - 1];
  int64_t rb = b.shape()[b.dim() - 2], cb = b.shape()[b.dim() - 1];
  Gemm g;
  g.trans_a = ta;
  g.trans_b = tb;
  g.m = ta ? ca : ra;
  g.k = ta ? ra : ca;
  g.n = tb ? rb : cb;
  g.lda = ca;
  g.ldb = cb;
  g.ldc = g.n;
  Shape out_shape = out_batch;
  out_shape.push_back(g.m);
  out_shape.push_back(g.n);
  Tensor c = Tensor::empty(out_shape, a.options());
  if (b.dim() == 2 && !ta) {
    // b is one matrix: fold a's batch into the rows, one GEMM for all.
    g.m = shape_numel(Shape(a.shape().begin(), a.shape().end() - 1));
    run_gemm(g, a, b, c);
    return c;
  }
  int64_t sa = 0, sb = 0;
  Tensor ae = batch_operand(a, out_batch, sa);
  Tensor be = batch_operand(b, out_batch, sb);
  g.stride_a = sa;
  g.stride_b = sb;
  g.stride_c = g.m * g.n;
  g.batch = shape_numel(out_batch);
  run_gemm(g, ae, be, c);
  return c;
}

void check_pair(const Tensor& a, const Tensor& b, const char* op) {
  NEURN_CHECK(a.defined() && b.defined(), op, ": undefined input");
  NEURN_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ: ", dtype_name(a.dtype()), " ", shape_str(a.shape()),
              " and ", dtype_name(b.dtype()), " ", shape_str(b.shape()));
  NEURN_CHECK(is_floating(a.dtype()), op, ": dtype ", dtype_name(a.dtype()), " is not supported (expected float32 or "
              "float64)");
  NEURN_CHECK(a.device() == b.device(), op, ": tensors are on different devices: ", a.device().str(), " and ",
              b.device().str());
}

// a (..., M, K) @ b (..., K, N), both at least 2-D.
Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  const Shape &sa = a.shape(), &sb = b.shape();
  int64_t k = sa[sa.size() - 1];
  NEURN_CHECK(k == sb[sb.size() - 2], "matmul: shapes ", shape_str(sa), " and ", shape_str(sb),
              " do not match: a has ", k, " columns, b has ", sb[sb.size() - 2], " rows");
  Shape ba = batch_of(a), bb = batch_of(b);
  size_t nb = std::max(ba.size(), bb.size());
  Shape pa = left_pad(ba, nb), pb = left_pad(bb, nb), out_batch(nb);
  for (size_t i = 0; i < nb; ++i) {
    NEURN_CHECK(pa[i] == pb[i] || pa[i] == 1 || pb[i] == 1, "matmul: the batch axes of ", shape_str(sa), " and ",
                shape_str(sb), " cannot be broadcast together");
    out_batch[i] = pa[i] == 1 ? pb[i] : pa[i];
  }
  int64_t m = sa[sa.size() - 2], n = sb[sb.size() - 1];
  count_flops(2 * shape_numel(out_batch) * m * n * k);
  Tensor out = batched_product(a, false, b, false, out_batch);
  bool ga = a.requires_grad(), gb = b.requires_grad();
  // da = g b^T needs only b, db = a^T g only a.
  SavedTensor as(gb ? a : Tensor(), "matmul", "input"), bs(ga ? b : Tensor(), "matmul", "other");
  return attach_grad(out, "matmul", {a, b}, [as, bs, sa, sb, ga, gb, out_batch](const Tensor& g) -> std::vector<Tensor> {
    Tensor da, db;
    if (ga) da = sum_to_shape(batched_product(g, false, bs.get(), true, out_batch), sa);  // g @ b^T
    if (gb) {
      const Tensor& ad = as.get();
      if (sb.size() == 2) {
        // b is shared by the whole batch: db = sum_i a_i^T g_i = A^T G with
        // the batch folded into the rows.
        int64_t kk = sa.back(), nn = g.shape()[g.dim() - 1];
        db = batched_product(ad.reshape({-1, kk}), true, g.reshape({-1, nn}), false, {});
      } else {
        db = sum_to_shape(batched_product(ad, true, g, false, out_batch), sb);  // a^T @ g
      }
    }
    return {da, db};
  });
}

}  // namespace

NEURN_DEFINE_KERNEL(gemm_kernel);
NEURN_DEFINE_KERNEL(fill_rows_kernel);
NEURN_DEFINE_KERNEL(sum_rows_kernel);
NEURN_REGISTER_KERNEL(gemm_kernel, DeviceType::CPU, gemm_cpu);
NEURN_REGISTER_KERNEL(fill_rows_kernel, DeviceType::CPU, fill_rows_cpu);
NEURN_REGISTER_KERNEL(sum_rows_kernel, DeviceType::CPU, sum_rows_cpu);

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_pair(a, b, "matmul");
  NEURN_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both operands need at least 1 dimension, got ",
              shape_str(a.shape()), " and ", shape_str(b.shape()));
  // Vectors as in NumPy: a 1-D a is a row (1, K), a 1-D b a column (K, 1),
  // and the added axis is removed from the result.
  if (a.dim() == 1 && b.dim() == 1) {
    NEURN_CHECK(a.numel() == b.numel(), "matmul: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
                " do not match: vectors of different lengths");
    return reshape(matmul_nd(reshape(a, {1, a.numel()}), reshape(b, {b.numel(), 1})), {});
  }
  if (a.dim() == 1) {
    NEURN_CHECK(a.numel() == b.shape()[b.dim() - 2], "matmul: shapes ", shape_str(a.shape()), " and ",
                shape_str(b.shape()), " do not match: a has ", a.numel(), " columns, b has ", b.shape()[b.dim() - 2],
                " rows");
    return squeeze(matmul_nd(reshape(a, {1, a.numel()}), b), -2);
  }
  if (b.dim() == 1) {
    NEURN_CHECK(a.shape()[a.dim() - 1] == b.numel(), "matmul: shapes ", shape_str(a.shape()), " and ",
                shape_str(b.shape()), " do not match: a has ", a.shape()[a.dim() - 1], " columns, b has ",
                b.numel(), " rows");
    return squeeze(matmul_nd(a, reshape(b, {b.numel(), 1})), -1);
  }
  return matmul_nd(a, b);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_pair(x, weight, "linear");
  NEURN_CHECK(weight.dim() == 2, "linear: weight must be (out, in), got ", shape_str(weight.shape()));
  int64_t out_f = weight.shape()[0], in_f = weight.shape()[1];
  NEURN_CHECK(x.dim() >= 1 && x.shape()[x.dim() - 1] == in_f, "linear: input ", shape_str(x.shape()),
              " does not end in ", in_f, " features as weight ", shape_str(weight.shape()), " expects");
  if (bias.defined()) {
    check_pair(x, bias, "linear");
    NEURN_CHECK(bias.dim() == 1 && bias.numel() == out_f, "linear: bias ", shape_str(bias.shape()),
                " does not match weight ", shape_str(weight.shape()), " (expected (", out_f, ",))");
  }
  int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  Shape out_shape = x.shape();
  out_shape.back() = out_f;
  count_flops(2 * rows * in_f * out_f + (bias.defined() ? rows * out_f : 0));

  Tensor y = Tensor::empty(out_shape, x.options());
  Gemm g;
  g.trans_b = true;  // y = x W^T
  g.m = rows;
  g.n = out_f;
  g.k = in_f;
  g.lda = in_f;
  g.ldb = in_f;
  g.ldc = out_f;
  if (bias.defined() && y.numel() > 0) {
    // Start from the bias in every row and let the GEMM add x W^T (beta = 1).
    g.beta = 1.0;
    fill_rows_kernel(y.device(), bias, y);
  }
  run_gemm(g, x, weight, y);

  bool gx = x.requires_grad(), gw = weight.requires_grad(), gbias = bias.defined() && bias.requires_grad();
  // dx = g W needs only W, dW = g^T x only x.
  SavedTensor xs(gw ? x : Tensor(), "linear", "input"), ws(gx ? weight : Tensor(), "linear", "weight");
  Shape x_shape = x.shape();
  std::vector<Tensor> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  bool has_bias = bias.defined();
  return attach_grad(y, "linear", inputs,
                     [xs, ws, x_shape, gx, gw, gbias, has_bias, rows, in_f, out_f](const Tensor& gy) -> std::vector<Tensor> {
                       Tensor g2 = gy.reshape({rows, out_f});
                       std::vector<Tensor> grads(has_bias ? 3 : 2);
                       if (gx) grads[0] = batched_product(g2, false, ws.get(), false, {}).reshape(x_shape);  // g W
                       if (gw) grads[1] = batched_product(g2, true, xs.get().reshape({rows, in_f}), false, {});  // g^T x
                       if (gbias) {
                         Tensor db = Tensor::empty({out_f}, gy.options());  // (out_f)
                         if (out_f > 0) sum_rows_kernel(gy.device(), g2, db);
                         grads[2] = db;
                       }
                       return grads;
                     });
}

}  // namespace neurn
