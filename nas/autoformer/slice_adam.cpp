#include "nas/autoformer/slice_adam.h"

#include <cmath>

#include "framework/autograd.h"
#include "framework/optim/update_functors.h"
#ifdef NEURN_WITH_CUDA
#include "framework/cuda/cuda_optim.h"
#endif

namespace neurn::autoformer {

SliceAdam::SliceAdam(std::vector<Tensor> params, AdamOptions opt)
    : Optimizer(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, opt.lr, opt.weight_decay, "SliceAdam"),
      opt_(opt) {
  NEURN_CHECK(opt.beta1 >= 0.0 && opt.beta1 < 1.0 && opt.beta2 >= 0.0 && opt.beta2 < 1.0, "SliceAdam: betas (",
              opt.beta1, ", ", opt.beta2, ") must lie in [0, 1)");
  NEURN_CHECK(opt.eps >= 0.0, "SliceAdam: eps ", opt.eps, " is negative");
}

void SliceAdam::set_active(const std::vector<ActiveSlice>& slices) {
  active_.clear();
  for (const auto& s : slices) {
    NEURN_CHECK(s.param.defined() && static_cast<int64_t>(s.extent.size()) == s.param.dim(),
                "SliceAdam::set_active: box ", shape_str(s.extent), " does not match a parameter of shape ",
                s.param.defined() ? shape_str(s.param.shape()) : std::string("(undefined)"));
    for (int64_t i = 0; i < s.param.dim(); ++i)
      NEURN_CHECK(s.extent[i] >= 0 && s.extent[i] <= s.param.size(i), "SliceAdam::set_active: box ",
                  shape_str(s.extent), " exceeds the parameter's shape ", shape_str(s.param.shape()));
    active_[s.param.impl_ptr().get()] = s.extent;
  }
}

namespace {

// Calls f(offset, length) for every contiguous run of the box `extent` of a
// row-major tensor of shape `shape` (one run per index of the leading axes).
template <typename F>
void for_each_run(const Shape& shape, const Shape& extent, F f) {
  const size_t r = shape.size();
  if (r == 0) return f(0, 1);
  for (int64_t e : extent)
    if (e == 0) return;
  std::vector<int64_t> stride(r, 1), idx(r - 1, 0);
  for (size_t i = r - 1; i-- > 0;) stride[i] = stride[i + 1] * shape[i + 1];
  while (true) {
    int64_t off = 0;
    for (size_t i = 0; i + 1 < r; ++i) off += idx[i] * stride[i];
    f(off, extent[r - 1]);
    size_t a = r - 1;  // odometer over the leading axes
    while (a > 0) {
      --a;
      if (++idx[a] < extent[a]) break;
      idx[a] = 0;
      if (a == 0) return;
    }
    if (r == 1) return;
  }
}

}  // namespace

void SliceAdam::step() {
  NoGradGuard ng;
  size_t k = 0;
  for (Group& grp : groups_) {
    for (Tensor& p : grp.params) {
      size_t idx = k++;
      Tensor g = p.grad();
      if (!g.defined() || p.device().is_meta()) continue;
      NEURN_CHECK(g.dtype() == p.dtype() && g.shape() == p.shape() && g.device() == p.device(),
                  "SliceAdam: the gradient of parameter ", idx, " does not match it in dtype, shape or device");
      auto it = active_.find(p.impl_ptr().get());
      Shape extent = it == active_.end() ? p.shape() : it->second;
      auto& st = state_[idx];
      if (st.find("step") == st.end()) {
        st["step"] = full({}, 0.0, {DType::Int64});  // a host counter, as Adam's
        st["exp_avg"] = zeros(p.shape(), p.options());
        st["exp_avg_sq"] = zeros(p.shape(), p.options());
        st["step_count"] = zeros(p.shape(), p.options());
      }
      for (const char* name : {"exp_avg", "exp_avg_sq", "step_count"})
        if (st[name].device() != p.device()) st[name] = st[name].to(p.device());
      ++*st["step"].data<int64_t>();
      AdamStep a{grp.lr, opt_.beta1, opt_.beta2, opt_.eps, grp.weight_decay, false, 1};
      p.bump_version();  // updated in place below: graphs that saved p must see it
      if (p.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
        cuda::slice_adam_update(p.dtype(), static_cast<int>(p.dim()), p.shape().data(), extent.data(), p.raw_data(),
                                g.raw_data(), st["exp_avg"].raw_data(), st["exp_avg_sq"].raw_data(),
                                st["step_count"].raw_data(), a);
#else
        NEURN_FAIL("SliceAdam: a parameter on ", p.device().str(), " in a build without CUDA");
#endif
        continue;
      }
      dispatch_float(p.dtype(), "SliceAdam", [&](auto z) {
        using T = decltype(z);
        T* pp = p.data<T>();
        const T* pg = g.data<T>();
        T* pm = st["exp_avg"].data<T>();
        T* pv = st["exp_avg_sq"].data<T>();
        T* pc = st["step_count"].data<T>();
        int64_t cached = -1;
        AdamCoeffs<T> c(a, 1.0, 1.0);
        for_each_run(p.shape(), extent, [&](int64_t off, int64_t len) {
          for (int64_t i = off; i < off + len; ++i) {
            int64_t n = static_cast<int64_t>(pc[i]) + 1;
            pc[i] = static_cast<T>(n);
            if (n != cached) {  // the elements of a run were mostly used equally often
              double bc1 = 1.0 - std::pow(opt_.beta1, static_cast<double>(n));
              double sqrt_bc2 = std::sqrt(1.0 - std::pow(opt_.beta2, static_cast<double>(n)));
              c = AdamCoeffs<T>(a, bc1, sqrt_bc2);
              cached = n;
            }
            adam_update_element<T>(pp[i], pg[i], pm[i], pv[i], c);
          }
        });
      });
    }
  }
}

}  // namespace neurn::autoformer
