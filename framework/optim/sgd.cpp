#include "framework/optim/sgd.h"

#include <type_traits>

#include "framework/autograd.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/optim/update_functors.h"
#ifdef NEURN_WITH_CUDA
#include "framework/cuda/cuda_optim.h"
#endif

namespace neurn {

Sgd::Sgd(std::vector<Tensor> params, SgdOptions opt) : Sgd(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, opt) {}

Sgd::Sgd(std::vector<ParamGroup> groups, SgdOptions opt)
    : Optimizer(std::move(groups), opt.lr, opt.weight_decay, "SGD"), opt_(opt) {
  NEURN_CHECK(opt.momentum >= 0.0, "SGD: momentum ", opt.momentum, " is negative");
  NEURN_CHECK(!opt.nesterov || (opt.momentum > 0.0 && opt.dampening == 0.0),
              "SGD: Nesterov momentum needs momentum > 0 and dampening 0, got momentum ", opt.momentum,
              " and dampening ", opt.dampening);
}

void Sgd::step() {
  NoGradGuard ng;
  size_t k = 0;
  for (Group& grp : groups_) {
    for (Tensor& p : grp.params) {
      size_t idx = k++;
      Tensor g = p.grad();
      if (!g.defined() || p.device().is_meta()) continue;
      NEURN_CHECK(g.dtype() == p.dtype() && g.device() == p.device(), "SGD: the gradient of parameter ", idx, " is ",
                  dtype_name(g.dtype()), " on ", g.device().str(), ", the parameter ", dtype_name(p.dtype()), " on ",
                  p.device().str());
      SgdStep s{grp.lr, opt_.momentum, opt_.dampening, grp.weight_decay, opt_.nesterov, false};
      Tensor buf;
      if (s.momentum != 0.0) {
        auto it = state_[idx].find("momentum_buffer");
        if (it == state_[idx].end()) {
          buf = zeros(p.shape(), p.options());
          state_[idx]["momentum_buffer"] = buf;
          s.first_step = true;
        } else {
          buf = it->second;
        }
      }
      p.bump_version();  // updated in place below: graphs that saved p must see it
      if (p.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
        cuda::sgd_update(p.dtype(), p.numel(), p.raw_data(), g.raw_data(), buf.defined() ? buf.raw_data() : nullptr, s);
#endif
        continue;
      }
      dispatch_float(p.dtype(), "SGD", [&](auto z) {
        using T = decltype(z);
        T* pp = p.data<T>();
        const T* pg = g.data<T>();
        T* pb = buf.defined() ? buf.data<T>() : nullptr;
        const int64_t n = p.numel();
        const SgdCoeffs<T> c(s);
        auto run = [&](auto momentum, auto nesterov) {
          constexpr bool kM = decltype(momentum)::value, kN = decltype(nesterov)::value;
          cpu::parallel_for(n, 8, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) sgd_update_element<kM, kN, T>(pp[i], pg[i], kM ? pb + i : nullptr, c);
          });
        };
        if (!pb) run(std::false_type{}, std::false_type{});
        else if (s.nesterov) run(std::true_type{}, std::true_type{});
        else run(std::true_type{}, std::false_type{});
      });
    }
  }
}

}  // namespace neurn
