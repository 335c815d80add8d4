#include "framework/optim/optimizer.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "framework/autograd.h"
#include "framework/cuda/cuda_autocast.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/ops/reduce.h"
#include "framework/optim/multi_tensor.h"
#include "framework/optim/optim_kernels.h"

namespace neurn {

Optimizer::Optimizer(std::vector<ParamGroup> groups, double default_lr, double default_weight_decay, const char* name)
    : name_(name) {
  NEURN_CHECK(!groups.empty(), name, ": no parameter groups given");
  std::set<TensorImpl*> seen;
  for (size_t g = 0; g < groups.size(); ++g) {
    Group grp;
    grp.lr = groups[g].lr.value_or(default_lr);
    grp.weight_decay = groups[g].weight_decay.value_or(default_weight_decay);
    grp.initial_lr = grp.lr;
    NEURN_CHECK(grp.lr >= 0.0, name, ": learning rate ", grp.lr, " of group ", g, " is negative");
    NEURN_CHECK(grp.weight_decay >= 0.0, name, ": weight decay ", grp.weight_decay, " of group ", g, " is negative");
    for (size_t i = 0; i < groups[g].params.size(); ++i) {
      const Tensor& p = groups[g].params[i];
      NEURN_CHECK(p.defined(), name, ": parameter ", i, " of group ", g, " is undefined");
      NEURN_CHECK(p.is_leaf(), name, ": parameter ", i, " of group ", g, " ", shape_str(p.shape()),
                  " is not a leaf tensor (it was computed by ", p.grad_fn()->op, ")");
      NEURN_CHECK(is_floating(p.dtype()), name, ": parameter ", i, " of group ", g, " is ", dtype_name(p.dtype()));
      NEURN_CHECK(seen.insert(p.impl_ptr().get()).second, name, ": parameter ", i, " of group ", g, " ",
                  shape_str(p.shape()), " appears more than once");
      // bf16 autocast converts an optimizer's parameters once per step (cuda_autocast.h).
      if (p.dtype() == DType::Float32) cuda::autocast_weight_cache().add_weight(p);
      grp.params.push_back(p);
    }
    groups_.push_back(std::move(grp));
  }
  state_.resize(seen.size());
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  for (auto& g : groups_) g.lr = lr;
}

std::vector<Tensor> Optimizer::parameters() const {
  std::vector<Tensor> out;
  for (const auto& g : groups_) out.insert(out.end(), g.params.begin(), g.params.end());
  return out;
}

NamedTensors Optimizer::state_dict() const {
  NamedTensors out;
  auto scalar = [](double v) { return full({}, v, {DType::Float64}); };
  for (size_t g = 0; g < groups_.size(); ++g) {
    std::string pre = "param_groups." + std::to_string(g) + ".";
    out.push_back({pre + "lr", scalar(groups_[g].lr)});
    out.push_back({pre + "initial_lr", scalar(groups_[g].initial_lr)});
    out.push_back({pre + "weight_decay", scalar(groups_[g].weight_decay)});
    out.push_back({pre + "params", full({}, static_cast<double>(groups_[g].params.size()), {DType::Int64})});
  }
  for (size_t k = 0; k < state_.size(); ++k)
    for (const auto& [name, t] : state_[k]) out.push_back({"state." + std::to_string(k) + "." + name, t.clone()});
  return out;
}

void Optimizer::load_state_dict(const NamedTensors& state) {
  std::vector<Tensor> params = parameters();
  std::vector<std::string> names = state_names();
  std::vector<Group> groups = groups_;
  std::vector<std::map<std::string, Tensor>> st(state_.size());
  std::vector<bool> group_seen(groups.size(), false);
  auto fail = [&](const std::string& key, const std::string& why) {
    NEURN_FAIL(name_, ".load_state_dict: ", key, ": ", why);
  };
  for (const auto& [key, t] : state) {
    NEURN_CHECK(t.defined(), name_, ".load_state_dict: ", key, ": undefined tensor");
    if (key.rfind("param_groups.", 0) == 0) {
      std::string rest = key.substr(13);
      size_t dot = rest.find('.');
      if (dot == std::string::npos) fail(key, "malformed key");
      size_t g = std::stoul(rest.substr(0, dot));
      std::string field = rest.substr(dot + 1);
      if (g >= groups.size())
        fail(key, "the state has more parameter groups than this optimizer (" + std::to_string(groups.size()) + ")");
      if (t.numel() != 1) fail(key, "expected a scalar, got shape " + shape_str(t.shape()));
      double v = t.item();
      group_seen[g] = true;
      if (field == "lr") groups[g].lr = v;
      else if (field == "initial_lr") groups[g].initial_lr = v;
      else if (field == "weight_decay") groups[g].weight_decay = v;
      else if (field == "params") {
        if (static_cast<size_t>(v) != groups[g].params.size())
          fail(key, "the saved group has " + std::to_string(static_cast<int64_t>(v)) + " parameters, this one " +
                        std::to_string(groups[g].params.size()));
      } else {
        fail(key, "unknown group field '" + field + "'");
      }
    } else if (key.rfind("state.", 0) == 0) {
      std::string rest = key.substr(6);
      size_t dot = rest.find('.');
      if (dot == std::string::npos) fail(key, "malformed key");
      size_t k = std::stoul(rest.substr(0, dot));
      std::string name = rest.substr(dot + 1);
      if (k >= params.size())
        fail(key, "parameter index out of range (this optimizer has " + std::to_string(params.size()) + ")");
      if (std::find(names.begin(), names.end(), name) == names.end())
        fail(key, std::string("'") + name + "' is not a state of " + name_);
      const Tensor& p = params[k];
      if (name == "step") {
        if (t.numel() != 1) fail(key, "expected a scalar step count, got shape " + shape_str(t.shape()));
        st[k][name] = full({}, t.item(), {DType::Int64});
      } else {
        if (t.shape() != p.shape())
          fail(key, "shape " + shape_str(t.shape()) + " does not match the parameter's " + shape_str(p.shape()));
        Tensor buf = Tensor::empty(p.shape(), p.options());
        buf.copy_(t);
        st[k][name] = buf;
      }
    } else {
      fail(key, "unknown key");
    }
  }
  for (size_t g = 0; g < groups.size(); ++g)
    NEURN_CHECK(group_seen[g], name_, ".load_state_dict: no entries for param_groups.", g,
                " (the state has fewer groups than this optimizer)");
  groups_ = std::move(groups);
  state_ = std::move(st);
}

void note_updated(const Tensor& param) {
  param.bump_version();
  cuda::autocast_weight_cache().invalidate(param);
}

NEURN_DEFINE_KERNEL(grad_sq_sum_kernel);
NEURN_DEFINE_KERNEL(grad_scale_kernel);

namespace {

std::vector<int64_t> numels(const std::vector<Tensor>& ts) {
  std::vector<int64_t> n;
  for (const Tensor& t : ts) n.push_back(t.numel());
  return n;
}

double grad_sq_sum_cpu(const std::vector<Tensor>& grads) {
  const std::vector<TensorChunk> chunks = chunk_tensors(numels(grads));
  if (chunks.empty()) return 0.0;
  std::vector<double> part(chunks.size());
  dispatch_float(grads[0].dtype(), "clip_grad_norm", [&](auto z) {
    using T = decltype(z);
    cpu::parallel_for(static_cast<int64_t>(chunks.size()), 2 * kMultiTensorChunk, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        const TensorChunk& ch = chunks[static_cast<size_t>(k)];
        const T* g = grads[static_cast<size_t>(ch.tensor)].data<T>();
        double lane[8] = {};
        int64_t i = ch.begin;
        for (; i + 8 <= ch.end; i += 8)
          for (int j = 0; j < 8; ++j) lane[j] += static_cast<double>(g[i + j]) * static_cast<double>(g[i + j]);
        for (; i < ch.end; ++i) lane[0] += static_cast<double>(g[i]) * static_cast<double>(g[i]);
        double chunk_sum = 0.0;
        for (double v : lane) chunk_sum += v;
        part[static_cast<size_t>(k)] = chunk_sum;
      }
    });
  });
  double total = 0.0;
  for (double v : part) total += v;  // chunk order
  return total;
}

void grad_scale_cpu(const std::vector<Tensor>& grads, double coef) {
  const std::vector<TensorChunk> chunks = chunk_tensors(numels(grads));
  if (chunks.empty()) return;
  dispatch_float(grads[0].dtype(), "clip_grad_norm", [&](auto z) {
    using T = decltype(z);
    const T c = static_cast<T>(coef);
    cpu::parallel_for(static_cast<int64_t>(chunks.size()), kMultiTensorChunk, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        const TensorChunk& ch = chunks[static_cast<size_t>(k)];
        T* g = grads[static_cast<size_t>(ch.tensor)].data<T>();
        for (int64_t i = ch.begin; i < ch.end; ++i) g[i] *= c;
      }
    });
  });
}

}  // namespace

NEURN_REGISTER_KERNEL(grad_sq_sum_kernel, DeviceType::CPU, grad_sq_sum_cpu);
NEURN_REGISTER_KERNEL(grad_scale_kernel, DeviceType::CPU, grad_scale_cpu);

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  NEURN_CHECK(max_norm > 0.0, "clip_grad_norm: max_norm must be positive, got ", max_norm);
  NoGradGuard ng;
  // The gradients by device and dtype, each storage once: two parameters may
  // hold the same gradient (autograd hands an unchanged upstream gradient to
  // both inputs of an add); it counts in the norm once per parameter, as in
  // PyTorch, but is scaled once.
  struct Bucket {
    Device device;
    DType dtype;
    std::vector<Tensor> all, distinct;
  };
  std::vector<Bucket> buckets;
  std::set<const void*> seen;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined() || g.numel() == 0) continue;
    auto it = std::find_if(buckets.begin(), buckets.end(),
                           [&](const Bucket& b) { return b.device == g.device() && b.dtype == g.dtype(); });
    if (it == buckets.end()) {
      buckets.push_back({g.device(), g.dtype(), {}, {}});
      it = buckets.end() - 1;
    }
    it->all.push_back(g);
    if (seen.insert(g.raw_data()).second) it->distinct.push_back(g);
  }
  double sq = 0.0;
  for (const Bucket& b : buckets) sq += grad_sq_sum_kernel(b.device, b.all);  // one pass, one host read, per bucket
  const double norm = std::sqrt(sq);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    for (const Bucket& b : buckets) {
      for (const Tensor& g : b.distinct) g.bump_version();
      grad_scale_kernel(b.device, b.distinct, coef);
    }
  }
  return norm;
}

}  // namespace neurn
