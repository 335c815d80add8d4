// Strided views (framework/tensor.h): every view op shares storage with its
// input and has its own shape, strides and offset; contiguous() copies once;
// element-wise ops read views through their strides and agree exactly with
// the same op on contiguous copies; gradients flow through every view; an
// in-place write through a view is seen by the version counter; and kernels
// reached through the tables (matmul, conv) get contiguous inputs.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/elementwise_kernels.h"
#include "framework/ops/strided_copy.h"
#include "gradcheck.h"

using namespace neurn;
using namespace neurn::testing;

namespace {

// 0, 1, 2, ... in float64.
Tensor ramp(const Shape& s) {
  return arange(0, static_cast<double>(shape_numel(s)), 1.0, {DType::Float64}).reshape(s);
}

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

// The same values laid out contiguously, computed element by element through
// the strides (independent of the strided copy under test).
std::vector<double> gather(const Tensor& t) {
  const double* base = t.strided_data<double>();
  std::vector<double> out;
  std::vector<int64_t> idx(t.shape().size(), 0);
  for (int64_t n = 0; n < t.numel(); ++n) {
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * t.strides()[d];
    out.push_back(base[off]);
    for (int64_t d = static_cast<int64_t>(idx.size()) - 1; d >= 0; --d) {
      if (++idx[d] < t.shape()[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("views share storage: a write through the view is read through the base") {
  Tensor x = ramp({2, 3, 4});
  struct Case {
    const char* name;
    Tensor view;
  };
  std::vector<Case> cases = {
      {"permute", permute(x, {2, 0, 1})},
      {"transpose", transpose(x, 0, 2)},
      {"slice step 2", slice(x, 2, 1, 4, 2)},
      {"reshape", reshape(x, {6, 4})},
      {"flatten", flatten(x, 0, 1)},
      {"unsqueeze", unsqueeze(x, 1)},
      {"squeeze", squeeze(unsqueeze(x, 3), 3)},
      {"expand", expand(slice(x, 1, 0, 1), {2, 5, 4})},
      {"detach", permute(x, {1, 0, 2}).detach()},
      {"split", split(x, {1, 2}, 1)[1]},
      {"chunk", chunk(x, 2, 2)[1]},
  };
  for (auto& c : cases) {
    INFO(std::string(c.name));
    CHECK(c.view.storage() == x.storage());
    // The view reads what the base holds at its positions.
    std::vector<double> before = gather(c.view);
    CHECK(values(c.view) == before);
  }
  // Write through a slice view: the base changes at exactly those positions.
  Tensor base = ramp({3, 4});
  Tensor col = slice(base, 1, 1, 4, 2);  // columns 1 and 3
  col.fill_(-1.0);
  CHECK(values(base) == std::vector<double>{0, -1, 2, -1, 4, -1, 6, -1, 8, -1, 10, -1});
  Tensor t = transpose(base, 0, 1);  // (4, 3)
  slice(t, 0, 0, 1).copy_(from_vector<double>({7, 8, 9}, {1, 3}));
  CHECK(values(slice(base, 1, 0, 1)) == std::vector<double>{7, 8, 9});
  add_(slice(t, 0, 2, 3), ones({1, 3}, {DType::Float64}));  // column 2 of base += 1
  CHECK(values(slice(base, 1, 2, 3)) == std::vector<double>{3, 7, 11});
}

TEST_CASE("strides, offsets and is_contiguous of each view") {
  Tensor x = ramp({2, 3, 4});
  CHECK(x.is_contiguous());
  CHECK(x.strides() == std::vector<int64_t>{12, 4, 1});
  Tensor p = permute(x, {2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == std::vector<int64_t>{1, 12, 4});
  CHECK_FALSE(p.is_contiguous());
  Tensor s = slice(x, 2, 1, 4, 2);
  CHECK(s.shape() == Shape{2, 3, 2});
  CHECK(s.strides() == std::vector<int64_t>{12, 4, 2});
  CHECK(s.storage_offset() == 1);
  CHECK_FALSE(s.is_contiguous());
  Tensor rows = slice(x, 0, 1, 2);  // one outer block: contiguous, offset 12
  CHECK(rows.is_contiguous());
  CHECK(rows.storage_offset() == 12);
  CHECK(values(rows)[0] == 12.0);
  CHECK(rows.data<double>()[0] == 12.0);  // data() applies the offset
  Tensor e = expand(ramp({3, 1}), {2, 3, 4});
  CHECK(e.strides() == std::vector<int64_t>{0, 1, 0});
  CHECK_FALSE(e.is_contiguous());
  CHECK(unsqueeze(x, 0).is_contiguous());
  CHECK(unsqueeze(p, 3).strides() == std::vector<int64_t>{1, 12, 4, 1});
  // Nested views compose their offsets and strides.
  Tensor n = slice(permute(slice(x, 1, 1, 3), {2, 1, 0}), 0, 1, 4, 2);  // (2, 2, 2)
  CHECK(n.storage_offset() == 5);
  CHECK(n.strides() == std::vector<int64_t>{2, 4, 12});
  CHECK(values(n) == std::vector<double>{5, 17, 9, 21, 7, 19, 11, 23});
  // Meta tensors have views too (shapes, strides, no data).
  Tensor m = Tensor::empty({2, 3, 4}, {DType::Float32, Device::meta()});
  Tensor mp = permute(m, {1, 2, 0});
  CHECK(mp.shape() == Shape{3, 4, 2});
  CHECK(mp.contiguous().is_contiguous());
}

TEST_CASE("contiguous() returns itself when contiguous and copies a view exactly once") {
  Tensor x = ramp({4, 5, 6});
  CHECK(x.contiguous().same(x));
  Tensor p = permute(x, {2, 0, 1});
  const size_t before = host_memory_stats().allocated;
  Tensor c = p.contiguous();
  CHECK(host_memory_stats().allocated - before == static_cast<size_t>(p.numel()) * sizeof(double));
  CHECK(c.is_contiguous());
  CHECK(c.storage() != x.storage());
  CHECK(values(c) == gather(p));
  CHECK(c.contiguous().same(c));
  // A strided copy with 8 axes that do not merge, and a view of a view.
  Tensor big = ramp({2, 3, 2, 3, 2, 3, 2, 3});
  Tensor q = permute(big, {7, 6, 5, 4, 3, 2, 1, 0});
  CHECK(values(q.contiguous()) == gather(q));
  Tensor r = slice(slice(q, 0, 1, 3), 7, 0, 2);
  CHECK(values(r.contiguous()) == gather(r));
}

TEST_CASE("reshape is a view where the strides allow it and copies where they do not") {
  Tensor x = ramp({4, 6, 5});
  Tensor rows = slice(x, 0, 1, 3);  // (2, 6, 5), not the whole storage but contiguous
  Tensor r1 = reshape(rows, {12, 5});
  CHECK(r1.storage() == x.storage());
  Tensor cols = slice(x, 2, 0, 2);  // (4, 6, 2): axes 0, 1 still merge
  Tensor r2 = reshape(cols, {24, 2});
  CHECK(r2.storage() == x.storage());
  CHECK(r2.strides() == std::vector<int64_t>{5, 1});
  CHECK(values(r2) == gather(cols));
  Tensor p = permute(x, {0, 2, 1});  // (4, 5, 6): the last two axes do not merge
  Tensor r3 = reshape(p, {4, 30});
  CHECK(r3.storage() != x.storage());
  CHECK(r3.is_contiguous());
  CHECK(values(r3) == gather(p));
  Tensor r4 = reshape(p, {2, 2, 5, 6});  // splitting an axis of a view is still a view
  CHECK(r4.storage() == x.storage());
  CHECK(values(r4) == gather(p));
  Tensor e = expand(ramp({1, 3}), {4, 3});
  Tensor r5 = flatten(e, 0);
  CHECK(r5.storage() != e.storage());
  CHECK(values(r5) == std::vector<double>{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2});
}

TEST_CASE("element-wise ops on permuted, sliced and expanded views equal the ops on contiguous copies") {
  Generator g(3);
  Tensor a = rand({4, 5, 6}, {DType::Float64}, &g, -2, 2);
  Tensor b = rand({6, 5, 4}, {DType::Float64}, &g, 0.5, 2);
  Tensor c = rand({5, 1}, {DType::Float64}, &g, -1, 1);
  Tensor big = rand({4, 10, 6}, {DType::Float64}, &g, -1, 1);
  Tensor pa = permute(a, {2, 1, 0});           // (6, 5, 4)
  Tensor sb = slice(big, 1, 1, 10, 2);         // (4, 5, 6), step 2
  Tensor psb = permute(sb, {2, 1, 0});         // (6, 5, 4)
  Tensor ec = expand(c, {6, 5, 4});            // stride 0 on axes 0 and 2
  auto same_as_contiguous = [](const Tensor& got, const Tensor& want) {
    CHECK(got.shape() == want.shape());
    CHECK(values(got) == values(want));  // exact: the same functor on the same values
  };
  same_as_contiguous(add(pa, b), add(pa.contiguous(), b));
  same_as_contiguous(mul(b, pa), mul(b, pa.contiguous()));
  same_as_contiguous(div(psb, pa), div(psb.contiguous(), pa.contiguous()));
  same_as_contiguous(sub(ec, psb), sub(ec.contiguous(), psb.contiguous()));
  same_as_contiguous(maximum(pa, ec), maximum(pa.contiguous(), ec.contiguous()));
  same_as_contiguous(add(sb, c.reshape({1, 5, 1})), add(sb.contiguous(), c.reshape({1, 5, 1})));
  same_as_contiguous(pow(b, slice(pa, 2, 0, 1)), pow(b, slice(pa, 2, 0, 1).contiguous()));
  same_as_contiguous(exp(pa), exp(pa.contiguous()));
  same_as_contiguous(relu(psb), relu(psb.contiguous()));
  same_as_contiguous(mul(sb, 3.0), mul(sb.contiguous(), 3.0));
  same_as_contiguous(gelu(ec), gelu(ec.contiguous()));
  Tensor cond = gt(pa, b);
  same_as_contiguous(where(cond, psb, ec), where(cond, psb.contiguous(), ec.contiguous()));
  same_as_contiguous(where(transpose(gt(a, 0.0 * a), 0, 2), pa, psb),
                     where(transpose(gt(a, 0.0 * a), 0, 2).contiguous(), pa.contiguous(), psb.contiguous()));
  // Reductions and other ops reached through the tables see contiguous copies.
  same_as_contiguous(sum(pa, {1}), sum(pa.contiguous(), {1}));
  same_as_contiguous(softmax(psb, -1), softmax(psb.contiguous(), -1));
}

TEST_CASE("gradients (float64) through every view op and through element-wise ops on views") {
  using V = const std::vector<Tensor>&;
  struct Row {
    const char* name;
    OpFn f;
    std::vector<Tensor> in;
  };
  std::vector<Row> rows = {
      {"permute", [](V x) { return permute(x[0], {1, 2, 0}); }, {leaf({2, 3, 4}, 1)}},
      {"transpose", [](V x) { return transpose(x[0], 0, 2); }, {leaf({2, 3, 4}, 2)}},
      {"slice step 3", [](V x) { return slice(x[0], 1, 1, 8, 3); }, {leaf({2, 8, 3}, 3)}},
      {"expand", [](V x) { return expand(x[0], {2, 3, 4}); }, {leaf({3, 1}, 4)}},
      {"unsqueeze/squeeze", [](V x) { return squeeze(unsqueeze(x[0], 1), 2); }, {leaf({3, 1, 4}, 5)}},
      {"reshape of a view (a copy)", [](V x) { return reshape(permute(x[0], {2, 0, 1}), {4, 6}); },
       {leaf({2, 3, 4}, 6)}},
      {"reshape of a view (a view)", [](V x) { return reshape(slice(x[0], 2, 0, 3), {6, 3}); }, {leaf({2, 3, 4}, 7)}},
      {"contiguous", [](V x) { return transpose(x[0], 0, 1).contiguous(); }, {leaf({3, 4}, 8)}},
      {"chained views", [](V x) { return slice(permute(slice(x[0], 0, 1, 3), {2, 1, 0}), 0, 0, 4, 2); },
       {leaf({3, 3, 4}, 9)}},
      {"split", [](V x) { return mul(split(x[0], {1, 3}, 1)[1], split(x[0], {3, 1}, 1)[0]); }, {leaf({2, 4}, 10)}},
      {"mul of views", [](V x) { return mul(permute(x[0], {1, 0}), slice(x[1], 0, 0, 6, 2)); },
       {leaf({3, 2}, 11), leaf({4, 3}, 12)}},
      {"add of an expanded view", [](V x) { return add(expand(x[0], {4, 3}), transpose(x[1], 0, 1)); },
       {leaf({1, 3}, 13), leaf({3, 4}, 14)}},
      {"div and exp of views", [](V x) { return div(exp(transpose(x[0], 0, 1)), slice(x[1], 1, 1, 3)); },
       {leaf({2, 3}, 15), leaf({3, 4}, 16, 0.5, 2.0)}},
      {"where on views", [](V x) { return where(gt(permute(x[0], {1, 0}), 0.0 * permute(x[0], {1, 0})), permute(x[0], {1, 0}), x[1]); },
       {leaf_away_from({2, 3}, 17, {0.0}), leaf({3, 2}, 18)}},
      {"concat of views", [](V x) { return concat({permute(x[0], {1, 0}), slice(x[1], 0, 1, 3)}, 0); },
       {leaf({3, 2}, 19), leaf({4, 3}, 20)}},
      {"pad of a view", [](V x) { return pad(transpose(x[0], 0, 1), {1, 2, 0, 1}); }, {leaf({3, 2}, 21)}},
      {"matmul of a transposed view", [](V x) { return matmul(transpose(x[0], 0, 1), x[1]); },
       {leaf({4, 3}, 22), leaf({4, 2}, 23)}},
      {"sum of a permuted view", [](V x) { return sum(permute(x[0], {2, 0, 1}), {0}); }, {leaf({2, 3, 4}, 24)}},
  };
  for (auto& r : rows) {
    INFO(std::string(r.name));
    CHECK_GRADCHECK(gradcheck(r.f, r.in));
    CHECK(accumulates(r.f, r.in));
  }
}

TEST_CASE("the version counter sees an in-place write through a view") {
  SUBCASE("a saved tensor's base changed through a view") {
    Tensor a = randn({3, 4}, {DType::Float64}).requires_grad_();
    Tensor b = randn({3, 4}, {DType::Float64});
    Tensor loss = sum(mul(a, b));  // mul saves b for a's gradient
    slice(transpose(b, 0, 1), 0, 1, 2).fill_(0.0);
    CHECK_THROWS_CONTAINING(loss.backward(), "mul's saved other");
  }
  SUBCASE("a saved view changed through its base") {
    Tensor a = randn({4, 3}, {DType::Float64}).requires_grad_();
    Tensor b = randn({3, 4}, {DType::Float64});
    Tensor loss = sum(mul(a, permute(b, {1, 0})));
    add_(b, ones({3, 4}, {DType::Float64}));
    CHECK_THROWS_CONTAINING(loss.backward(), "mul's saved other");
  }
  SUBCASE("views bump the shared counter, and an untouched graph runs") {
    Tensor b = zeros({2, 3});
    Tensor v = permute(b, {1, 0});
    const uint64_t v0 = b.version();
    v.copy_(ones({3, 2}));
    CHECK(b.version() == v0 + 1);
    CHECK(values(b) == std::vector<double>(6, 1.0));
    Tensor a = ones({2, 3}).requires_grad_();
    Tensor loss = sum(mul(a, permute(v, {1, 0})));
    loss.backward();
    CHECK(values(a.grad()) == std::vector<double>(6, 1.0));
  }
}

TEST_CASE("data<T>() and raw_data() on a non-contiguous view throw, naming it") {
  Tensor x = ramp({2, 3});
  Tensor t = transpose(x, 0, 1);
  CHECK_THROWS_CONTAINING(t.data<double>(), "shape (3, 2) is a non-contiguous view (strides (1, 3)");
  CHECK_THROWS_CONTAINING(t.raw_data(), "call contiguous() first");
  CHECK(t.strided_data<double>() == x.data<double>());
  CHECK(t.contiguous().data<double>()[1] == 3.0);
}

TEST_CASE("a permute -> matmul / conv chain through the kernel tables") {
  Generator g(5);
  // (N, H, W, C) channels-last input permuted to NCHW, as a ViT or a
  // channels-last loader would hand it to a convolution.
  Tensor nhwc = rand({2, 5, 6, 3}, {DType::Float64}, &g, -1, 1);
  Tensor w = rand({4, 3, 3, 3}, {DType::Float64}, &g, -1, 1);
  Tensor x = permute(nhwc, {0, 3, 1, 2});
  CHECK_FALSE(x.is_contiguous());
  Tensor y = conv2d(x, w);
  CHECK(values(y) == values(conv2d(x.contiguous(), w)));
  // (B, T, D) -> (B, D, T) @ (B, T, E): a batched matmul on a transposed view.
  Tensor q = rand({2, 4, 3}, {DType::Float64}, &g, -1, 1);
  Tensor k = rand({2, 4, 5}, {DType::Float64}, &g, -1, 1);
  Tensor m = matmul(transpose(q, 1, 2), k);
  CHECK(values(m) == values(matmul(transpose(q, 1, 2).contiguous(), k)));
  // Channel shuffle as ShuffleNet writes it: reshape, transpose, flatten.
  Tensor c = ramp({1, 6, 2, 2});
  Tensor shuffled = flatten(transpose(reshape(c, {1, 2, 3, 2, 2}), 1, 2), 1, 2);
  CHECK(shuffled.shape() == Shape{1, 6, 2, 2});
  std::vector<double> s = values(shuffled);
  CHECK(std::vector<double>(s.begin(), s.begin() + 8) == std::vector<double>{0, 1, 2, 3, 12, 13, 14, 15});
  // And the gradient of the whole chain.
  OpFn f = [](const std::vector<Tensor>& in) {
    return tanh(conv2d(permute(in[0], {0, 3, 1, 2}), in[1]));
  };
  CHECK_GRADCHECK(gradcheck(f, {leaf({1, 4, 4, 2}, 30), leaf({3, 2, 3, 3}, 31)}));
}

namespace {
// Two tables that report what their kernels receive: the plain one gets
// contiguous tensors (a view copied, a contiguous tensor passed as it is),
// the strided one gets the view itself.
NEURN_DECLARE_KERNEL(test_view_plain_kernel, int64_t(const Tensor& x, const Tensor& same_as));
NEURN_DEFINE_KERNEL(test_view_plain_kernel);
NEURN_DECLARE_KERNEL(test_view_strided_kernel, int64_t(const Tensor& x, const Tensor& same_as));
NEURN_DEFINE_STRIDED_KERNEL(test_view_strided_kernel);
// 1: contiguous and the very tensor passed; 2: contiguous, another handle;
// 3: a view, the very tensor passed.
int64_t what_arrived(const Tensor& x, const Tensor& same_as) {
  if (x.is_contiguous()) return x.same(same_as) ? 1 : 2;
  return x.same(same_as) ? 3 : 0;
}
NEURN_REGISTER_KERNEL(test_view_plain_kernel, DeviceType::CPU, what_arrived);
NEURN_REGISTER_KERNEL(test_view_strided_kernel, DeviceType::CPU, what_arrived);
}  // namespace

TEST_CASE("kernel tables hand contiguous tensors to their kernels unless the table is strided") {
  Tensor x = ramp({3, 4});
  Tensor t = transpose(x, 0, 1);
  CHECK(test_view_plain_kernel(Device::cpu(), x, x) == 1);
  CHECK(test_view_plain_kernel(Device::cpu(), t, t) == 2);
  CHECK(test_view_strided_kernel(Device::cpu(), t, t) == 3);
  CHECK(test_view_strided_kernel(Device::cpu(), x, x) == 1);
  CHECK_FALSE(test_view_plain_kernel.strided());
  CHECK(test_view_strided_kernel.strided());
  CHECK(binary_kernel.strided());
  CHECK(strided_copy_kernel.strided());
  CHECK_FALSE(unary_backward_kernel.strided());
}

TEST_CASE("views: an in-place write into an expanded view is refused, naming the axis") {
  Tensor base = from_vector(std::vector<float>{1, 2, 3}, {1, 3});
  Tensor e = expand(base, {4, 3});  // four rows over one row of storage
  Tensor src = from_vector(std::vector<float>(12, 5.0f), {4, 3});
  CHECK_THROWS_WITH(e.copy_(src), doctest::Contains("several elements at one memory location"));
  CHECK_THROWS_WITH(add_(e, src), doctest::Contains("along axis 0"));
  CHECK_THROWS_WITH(mul_(e, 2.0), doctest::Contains("copy_"));
  CHECK(base.to_vector<float>() == std::vector<float>{1, 2, 3});  // nothing was written
  // A size-1 axis with stride 0 aliases nothing; fill_ writes one value and stays allowed.
  Tensor one = expand(base, {1, 3});
  one.copy_(from_vector(std::vector<float>{7, 8, 9}, {1, 3}));
  CHECK(base.to_vector<float>() == std::vector<float>{7, 8, 9});
  e.fill_(4.0);
  CHECK(base.to_vector<float>() == std::vector<float>{4, 4, 4});
  // Its contiguous() copy takes writes.
  Tensor c = e.contiguous();
  c.copy_(src);
  CHECK(c.to_vector<float>() == std::vector<float>(12, 5.0f));
}
