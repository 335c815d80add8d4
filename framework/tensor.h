#pragma once
// Tensor: a shared handle to storage with a shape, strides, a storage offset,
// a dtype and a device. Copies of a Tensor share data; clone() copies it.
//
// Views (reshape, permute, transpose, slice, expand, squeeze, unsqueeze,
// detach) share storage with their base and have their own shape, strides
// (in elements; 0 on an expanded axis) and storage offset. A tensor is
// contiguous when its strides are the row-major ones of its shape. data<T>()
// and raw_data() are for contiguous tensors only: on a view they throw,
// naming its shape and strides, because a kernel that walks a view as if it
// were row-major computes a silently wrong result. Kernels written for
// strides read strided_data<T>() / strided_raw_data() (the first element, any
// layout) together with strides(); every other kernel is handed contiguous
// tensors by its kernel table (framework/dispatch.h), and front functions that
// read data themselves call contiguous() first.
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "framework/device.h"
#include "framework/dtype.h"
#include "framework/shape.h"

namespace neurn {

class Tensor;
struct Node;

// Raw memory on one device. Meta storage has no data.
struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  std::function<void(void*)> deleter;
  // Bumped by every in-place write (copy_, fill_, add_, mul_, optimizer
  // steps); autograd compares it with the value a saved tensor saw.
  uint64_t version = 0;
  Storage(size_t nbytes, Device device);  // allocates (not on meta)
  Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> deleter);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  std::vector<int64_t> strides;  // in elements, one per axis
  int64_t offset = 0;            // of the first element in storage, in elements
  bool contiguous = true;        // strides are the row-major ones of shape (cached)
  int64_t numel = 0;
  DType dtype = DType::Float32;
  Device device;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;       // the op that produced it (non-leaf)
  std::shared_ptr<TensorImpl> grad;    // accumulated gradient (leaves)
};

struct TensorOptions {
  DType dtype = DType::Float32;
  Device device = Device::cpu();
  bool requires_grad = false;
};

class Generator;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // An uninitialised tensor (use zeros() for defined values).
  static Tensor empty(const Shape& shape, TensorOptions opt = {});
  // A contiguous tensor that shares storage with `storage`, from its start.
  static Tensor from_storage(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype);
  // A view of `storage` with the given strides and offset (in elements);
  // checks that every element it can reach lies inside the storage.
  static Tensor view_of(std::shared_ptr<Storage> storage, const Shape& shape, const std::vector<int64_t>& strides,
                        int64_t offset, DType dtype);
  // A view of this tensor's storage (no autograd: the shape ops attach it).
  Tensor as_strided(const Shape& shape, const std::vector<int64_t>& strides, int64_t offset) const;

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const std::vector<int64_t>& strides() const { return impl().strides; }
  int64_t storage_offset() const { return impl().offset; }
  bool is_contiguous() const { return impl().contiguous; }
  // Itself when contiguous (or undefined), else a contiguous copy
  // (differentiable: the gradient flows back to the view).
  Tensor contiguous() const;
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t axis) const;  // negative axes count from the end
  int64_t numel() const { return impl().numel; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().device; }
  TensorOptions options() const { return {dtype(), device(), false}; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }

  // Typed access to the data of a contiguous tensor: checks dtype, that it
  // has data (not meta) and that it is contiguous (else throws naming the
  // shape and strides: call contiguous() first).
  template <typename T> T* data() const;
  // The first element of a contiguous tensor (nullptr on meta); throws on a view.
  void* raw_data() const;
  // The first element whatever the layout, for kernels that honour strides().
  template <typename T> T* strided_data() const;
  void* strided_raw_data() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  // The in-place write counter of the storage (shared by views and detach()).
  uint64_t version() const { return impl().storage ? impl().storage->version : 0; }
  // Call after writing into the data in place outside copy_/fill_ (kernels
  // that update a tensor through its pointer: optimizers, running stats).
  void bump_version() const {
    if (impl().storage) ++impl().storage->version;
  }

  // Autograd
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  Tensor& requires_grad_(bool on = true);  // only for leaves
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  Tensor grad() const;
  void set_grad(const Tensor& g);
  void zero_grad() { impl().grad.reset(); }
  // Back-propagates from this tensor. A non-scalar needs `grad` (dL/dthis).
  // The graph is released afterwards unless retain_graph.
  void backward(const Tensor& grad = {}, bool retain_graph = false) const;
  Tensor detach() const;  // same data, no graph

  // Copies and conversions
  Tensor clone() const;
  Tensor to(Device device) const;  // a copy unless already there
  Tensor to(DType dtype) const;
  Tensor cpu() const { return to(Device::cpu()); }
  // In-place copy of src's values (same shape; any device or dtype).
  void copy_(const Tensor& src) const;
  void fill_(double value) const;

  double item() const;  // single-element tensors
  template <typename T> std::vector<T> to_vector() const;  // host copy, cast to T
  std::string str(int64_t max_per_dim = 6) const;

  // Arithmetic (broadcasting); defined in ops.
  Tensor operator-() const;
  Tensor reshape(const Shape& s) const;

  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Whether every defined tensor given is contiguous: the guard of a front
// function that reads data itself rather than through a kernel table, e.g.
//   if (!all_contiguous({x, w})) return op(x.contiguous(), w.contiguous());
bool all_contiguous(std::initializer_list<Tensor> tensors);

// Bytes of CPU tensor storage allocated now, and the most at any moment
// since the start or the last reset_host_peak_memory(). Counts what Storage
// allocates (as requested, before the 64-byte rounding); kernels' scratch
// buffers (std::vector) and the heap's own overhead are not in it.
struct HostMemoryStats {
  size_t allocated = 0;
  size_t peak = 0;
};
HostMemoryStats host_memory_stats();
void reset_host_peak_memory();  // peak := allocated now

// ---- creation ---------------------------------------------------------------
Tensor zeros(const Shape& shape, TensorOptions opt = {});
Tensor ones(const Shape& shape, TensorOptions opt = {});
Tensor full(const Shape& shape, double value, TensorOptions opt = {});
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor empty_like(const Tensor& t);
Tensor scalar_tensor(double value, TensorOptions opt = {});
// [start, end) with step
Tensor arange(double start, double end, double step = 1.0, TensorOptions opt = {});
// Uniform [lo, hi) and normal(mean, std), from `gen` or the default generator.
Tensor rand(const Shape& shape, TensorOptions opt = {}, Generator* gen = nullptr, double lo = 0.0, double hi = 1.0);
Tensor randn(const Shape& shape, TensorOptions opt = {}, Generator* gen = nullptr, double mean = 0.0, double std = 1.0);
// Uniform integers in [lo, hi) as int64.
Tensor randint(int64_t lo, int64_t hi, const Shape& shape, Generator* gen = nullptr);
// Copies `n = numel(shape)` values of T from host memory, then converts to
// opt.dtype and moves to opt.device.
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opt = {dtype_of<T>::value});
Tensor from_buffer(const void* data, DType src_dtype, const Shape& shape, TensorOptions opt);

// ---- template definitions ---------------------------------------------------
namespace detail {
[[noreturn]] void fail_not_contiguous(const Tensor& t, const char* what);
// t itself when contiguous (or undefined), else a contiguous copy that is
// not recorded by autograd (the kernel tables' and the host readers' copy).
Tensor contiguous_copy(const Tensor& t);
}  // namespace detail

template <typename T>
T* Tensor::strided_data() const {
  NEURN_CHECK(dtype() == dtype_of<T>::value, "Tensor::data: tensor is ", dtype_name(dtype()), ", asked for ",
              dtype_name(dtype_of<T>::value));
  NEURN_CHECK(!device().is_meta(), "Tensor::data: a meta tensor has no data");
  return static_cast<T*>(strided_raw_data());
}

template <typename T>
T* Tensor::data() const {
  if (!is_contiguous()) detail::fail_not_contiguous(*this, "data");
  return strided_data<T>();
}

template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opt) {
  NEURN_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
              " values for shape ", shape_str(shape));
  return from_buffer(values.data(), dtype_of<T>::value, shape, opt);
}

}  // namespace neurn
