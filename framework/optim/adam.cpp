#include "framework/optim/adam.h"

#include <cmath>

#include "framework/autograd.h"
#include "framework/profiler.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/optim/multi_tensor.h"
#include "framework/optim/optim_kernels.h"

namespace neurn {

NEURN_DEFINE_KERNEL(adam_update_kernel);

namespace {

// All slots in one threaded loop over their chunks (element-wise: the split
// changes no result).
void adam_update_cpu(const std::vector<AdamSlot>& slots) {
  if (slots.empty()) return;
  dispatch_float(slots[0].param.dtype(), slots[0].step.decoupled ? "AdamW" : "Adam", [&](auto z) {
    using T = decltype(z);
    struct Entry {
      T* p;
      const T* g;
      T* m;
      T* v;
      AdamCoeffs<T> c;
    };
    std::vector<Entry> es;
    std::vector<int64_t> sizes;
    for (const AdamSlot& s : slots) {
      es.push_back({s.param.data<T>(), s.grad.data<T>(), s.exp_avg.data<T>(), s.exp_avg_sq.data<T>(),
                    AdamCoeffs<T>(s.step, s.bc1, s.sqrt_bc2)});
      sizes.push_back(s.param.numel());
    }
    const std::vector<TensorChunk> chunks = chunk_tensors(sizes);
    if (chunks.empty()) return;
    int64_t total = 0;
    for (int64_t n : sizes) total += n;
    const int64_t cost = 16 * (total / static_cast<int64_t>(chunks.size()) + 1);  // per chunk
    cpu::parallel_for(static_cast<int64_t>(chunks.size()), cost, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        const TensorChunk& ch = chunks[k];
        const Entry& en = es[ch.tensor];
        for (int64_t i = ch.begin; i < ch.end; ++i) adam_update_element<T>(en.p[i], en.g[i], en.m[i], en.v[i], en.c);
      }
    });
  });
}

}  // namespace

NEURN_REGISTER_KERNEL(adam_update_kernel, DeviceType::CPU, adam_update_cpu);

Adam::Adam(std::vector<Tensor> params, AdamOptions opt)
    : Adam(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, opt, false, "Adam") {}
Adam::Adam(std::vector<ParamGroup> groups, AdamOptions opt) : Adam(std::move(groups), opt, false, "Adam") {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions opt, bool decoupled, const char* name)
    : Optimizer(std::move(groups), opt.lr, opt.weight_decay, name), opt_(opt), decoupled_(decoupled) {
  NEURN_CHECK(opt.beta1 >= 0.0 && opt.beta1 < 1.0 && opt.beta2 >= 0.0 && opt.beta2 < 1.0, name, ": betas (",
              opt.beta1, ", ", opt.beta2, ") must lie in [0, 1)");
  NEURN_CHECK(opt.eps >= 0.0, name, ": eps ", opt.eps, " is negative");
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions opt)
    : AdamW(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, opt) {}
AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions opt) : Adam(std::move(groups), opt, true, "AdamW") {}

void Adam::step() {
  ProfileScope timed("optimizer", "Adam.step");
  NoGradGuard ng;
  std::vector<AdamSlot> slots;
  size_t k = 0;
  for (Group& grp : groups_) {
    for (Tensor& p : grp.params) {
      size_t idx = k++;
      Tensor g = p.grad();
      if (!g.defined() || p.device().is_meta()) continue;
      NEURN_CHECK(g.dtype() == p.dtype() && g.device() == p.device(), name_, ": the gradient of parameter ", idx,
                  " is ", dtype_name(g.dtype()), " on ", g.device().str(), ", the parameter ", dtype_name(p.dtype()),
                  " on ", p.device().str());
      auto& st = state_[idx];
      if (st.find("step") == st.end()) {
        st["step"] = full({}, 0.0, {DType::Int64});
        st["exp_avg"] = zeros(p.shape(), p.options());
        st["exp_avg_sq"] = zeros(p.shape(), p.options());
      }
      // The step count is a host scalar: the bias corrections are per-slot
      // constants of the launch, never read back from the device.
      int64_t* step = st["step"].data<int64_t>();
      ++*step;
      AdamSlot s{p, g, st["exp_avg"], st["exp_avg_sq"],
                 AdamStep{grp.lr, opt_.beta1, opt_.beta2, opt_.eps, grp.weight_decay, decoupled_, *step}};
      s.bc1 = 1.0 - std::pow(opt_.beta1, static_cast<double>(*step));
      s.sqrt_bc2 = std::sqrt(1.0 - std::pow(opt_.beta2, static_cast<double>(*step)));
      slots.push_back(std::move(s));
    }
  }
  run_update(slots, adam_update_kernel, multi_tensor_);
}

}  // namespace neurn
