#include "framework/optim/adam.h"

#include <cmath>

#include "framework/autograd.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/optim/update_functors.h"
#ifdef NEURN_WITH_CUDA
#include "framework/cuda/cuda_optim.h"
#endif

namespace neurn {

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
  NoGradGuard ng;
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
      int64_t* step = st["step"].data<int64_t>();
      ++*step;
      Tensor m = st["exp_avg"], v = st["exp_avg_sq"];
      AdamStep a{grp.lr, opt_.beta1, opt_.beta2, opt_.eps, grp.weight_decay, decoupled_, *step};
      double bc1 = 1.0 - std::pow(opt_.beta1, static_cast<double>(*step));
      double sqrt_bc2 = std::sqrt(1.0 - std::pow(opt_.beta2, static_cast<double>(*step)));
      p.bump_version();  // updated in place below: graphs that saved p must see it
      if (p.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
        cuda::adam_update(p.dtype(), p.numel(), p.raw_data(), g.raw_data(), m.raw_data(), v.raw_data(), a, bc1,
                          sqrt_bc2);
#endif
        continue;
      }
      dispatch_float(p.dtype(), name_, [&](auto z) {
        using T = decltype(z);
        T* pp = p.data<T>();
        const T* pg = g.data<T>();
        T* pm = m.data<T>();
        T* pv = v.data<T>();
        const int64_t n = p.numel();
        const AdamCoeffs<T> c(a, bc1, sqrt_bc2);
        // Element-wise, so splitting it over threads changes no result.
        cpu::parallel_for(n, 16, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) adam_update_element<T>(pp[i], pg[i], pm[i], pv[i], c);
        });
      });
    }
  }
}

}  // namespace neurn
