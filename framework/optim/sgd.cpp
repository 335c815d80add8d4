#include "framework/optim/sgd.h"

#include <type_traits>

#include "framework/autograd.h"
#include "framework/profiler.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/optim/multi_tensor.h"
#include "framework/optim/optim_kernels.h"

namespace neurn {

NEURN_DEFINE_KERNEL(sgd_update_kernel);

namespace {

// All slots in one threaded loop over their chunks: the update is element-wise,
// so neither the split nor the thread count changes a result.
void sgd_update_cpu(const std::vector<SgdSlot>& slots) {
  if (slots.empty()) return;
  const bool momentum = slots[0].momentum_buffer.defined(), nesterov = slots[0].step.nesterov;
  dispatch_float(slots[0].param.dtype(), "SGD", [&](auto z) {
    using T = decltype(z);
    struct Entry {
      T* p;
      const T* g;
      T* buf;
      SgdCoeffs<T> c;
    };
    std::vector<Entry> es;
    std::vector<int64_t> sizes;
    for (const SgdSlot& s : slots) {
      es.push_back({s.param.data<T>(), s.grad.data<T>(), momentum ? s.momentum_buffer.data<T>() : nullptr,
                    SgdCoeffs<T>(s.step)});
      sizes.push_back(s.param.numel());
    }
    const std::vector<TensorChunk> chunks = chunk_tensors(sizes);
    if (chunks.empty()) return;
    int64_t total = 0;
    for (int64_t n : sizes) total += n;
    const int64_t cost = 8 * (total / static_cast<int64_t>(chunks.size()) + 1);  // per chunk
    auto run = [&](auto kM, auto kN) {
      constexpr bool M = decltype(kM)::value, N = decltype(kN)::value;
      cpu::parallel_for(static_cast<int64_t>(chunks.size()), cost, [&](int64_t b, int64_t e) {
        for (int64_t k = b; k < e; ++k) {
          const TensorChunk& ch = chunks[k];
          const Entry& en = es[ch.tensor];
          for (int64_t i = ch.begin; i < ch.end; ++i)
            sgd_update_element<M, N, T>(en.p[i], en.g[i], M ? en.buf + i : nullptr, en.c);
        }
      });
    };
    if (!momentum) run(std::false_type{}, std::false_type{});
    else if (nesterov) run(std::true_type{}, std::true_type{});
    else run(std::true_type{}, std::false_type{});
  });
}

}  // namespace

NEURN_REGISTER_KERNEL(sgd_update_kernel, DeviceType::CPU, sgd_update_cpu);

Sgd::Sgd(std::vector<Tensor> params, SgdOptions opt) : Sgd(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, opt) {}

Sgd::Sgd(std::vector<ParamGroup> groups, SgdOptions opt)
    : Optimizer(std::move(groups), opt.lr, opt.weight_decay, "SGD"), opt_(opt) {
  NEURN_CHECK(opt.momentum >= 0.0, "SGD: momentum ", opt.momentum, " is negative");
  NEURN_CHECK(!opt.nesterov || (opt.momentum > 0.0 && opt.dampening == 0.0),
              "SGD: Nesterov momentum needs momentum > 0 and dampening 0, got momentum ", opt.momentum,
              " and dampening ", opt.dampening);
}

void Sgd::step() {
  ProfileScope timed("optimizer", "SGD.step");
  NoGradGuard ng;
  std::vector<SgdSlot> slots;
  size_t k = 0;
  for (Group& grp : groups_) {
    for (Tensor& p : grp.params) {
      size_t idx = k++;
      Tensor g = p.grad();
      if (!g.defined() || p.device().is_meta()) continue;
      NEURN_CHECK(g.dtype() == p.dtype() && g.device() == p.device(), "SGD: the gradient of parameter ", idx, " is ",
                  dtype_name(g.dtype()), " on ", g.device().str(), ", the parameter ", dtype_name(p.dtype()), " on ",
                  p.device().str());
      SgdSlot s{p, g, Tensor(), SgdStep{grp.lr, opt_.momentum, opt_.dampening, grp.weight_decay, opt_.nesterov, false}};
      if (opt_.momentum != 0.0) {
        auto it = state_[idx].find("momentum_buffer");
        if (it == state_[idx].end()) {
          s.momentum_buffer = zeros(p.shape(), p.options());
          state_[idx]["momentum_buffer"] = s.momentum_buffer;
          s.step.first_step = true;
        } else {
          s.momentum_buffer = it->second;
        }
      }
      slots.push_back(std::move(s));
    }
  }
  run_update(slots, sgd_update_kernel, multi_tensor_);
}

}  // namespace neurn
