// An op of your own with its own forward and backward, gradient-checked with
// the project's checker, and used as a layer.
//
// The op is the "soft clip" y = c * tanh(x / c): linear near 0, bounded by
// +-c. Its derivative, dy/dx = 1 - tanh(x / c)^2, is what backward returns.
// The forward writes the output directly (CPU, float32 or float64);
// attach_grad records the op on the autograd graph with a closure that
// captures only what backward needs (here the output y, since
// 1 - tanh^2 = 1 - (y / c)^2).
#include <neurn/neurn.h>

#include <cmath>
#include <cstdio>

using namespace neurn;

namespace {

template <typename T>
void soft_clip_kernel(const T* x, T* y, int64_t n, double c) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(c * std::tanh(static_cast<double>(x[i]) / c));
}

// (any shape) -> (same shape)
Tensor soft_clip(const Tensor& x, double c) {
  NEURN_CHECK(c > 0, "soft_clip: c must be positive, got ", c);
  NEURN_CHECK(x.device().is_cpu(), "soft_clip: this example op runs on the CPU, got a tensor on ", x.device().str());
  const Tensor& in = x;  // tensors are contiguous row-major
  Tensor y = Tensor::empty(in.shape(), {in.dtype()});
  if (in.dtype() == DType::Float64) soft_clip_kernel(in.data<double>(), y.data<double>(), in.numel(), c);
  else if (in.dtype() == DType::Float32) soft_clip_kernel(in.data<float>(), y.data<float>(), in.numel(), c);
  else NEURN_FAIL("soft_clip: expected float32 or float64, got ", dtype_name(in.dtype()));
  Tensor saved = y.detach();  // backward needs the output only
  return attach_grad(y, "soft_clip", {x}, [saved, c](const Tensor& grad_out) -> std::vector<Tensor> {
    // dL/dx = dL/dy * (1 - (y / c)^2), written with the engine's ops so it
    // is differentiable too and runs wherever they run
    Tensor t = mul(saved, 1.0 / c);
    return {mul(grad_out, rsub(1.0, square(t)))};
  });
}

// The op as a layer, usable in a Sequential or a model of your own.
class SoftClip : public Module {
 public:
  explicit SoftClip(double c) : c_(c) {}
  Tensor forward(const Tensor& x) override { return soft_clip(x, c_); }
  std::string type() const override { return "SoftClip"; }  // its token in the layer trace

 private:
  double c_;
};

}  // namespace

int main() {
  // 1. The gradient check: float64, central differences against backward.
  Tensor x = leaf({4, 5}, /*seed=*/1, -3.0, 3.0);
  GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return soft_clip(in[0], 2.0); }, {x});
  std::printf("gradcheck soft_clip: %s\n", r.ok ? "ok" : r.message.c_str());
  bool accum = accumulates([](const std::vector<Tensor>& in) { return soft_clip(in[0], 2.0); }, {x});
  std::printf("gradients accumulate: %s\n", accum ? "ok" : "FAILED");

  // 2. The layer inside a small model, a training step included.
  auto model = std::make_shared<Sequential>();
  model->emplace<Linear>(8, 16);
  model->emplace<SoftClip>(1.5);
  model->emplace<Linear>(16, 3);
  Generator gen(0);
  Tensor input = randn({6, 8}, {}, &gen);
  Tensor target = from_vector<int64_t>({0, 1, 2, 0, 1, 2}, {6});
  Sgd sgd(model->parameters(), SgdOptions{.lr = 0.1});
  double first = 0, last = 0;
  for (int step = 0; step < 20; ++step) {
    Tensor loss = cross_entropy((*model)(input), target);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    (step == 0 ? first : last) = loss.item();
  }
  std::printf("training with SoftClip: loss %.4f -> %.4f\n", first, last);
  return r.ok && accum && last < first ? 0 : 1;
}
