#include "framework/tensor.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <malloc.h>
#include <ostream>
#include <sstream>

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops/strided_copy.h"
#include "framework/random.h"
#include "framework/tensor_kernels.h"
#ifdef NEURN_WITH_CUDA
// Only for the copies between devices in copy_ (a kernel table is keyed by
// one device; a copy from the host to a GPU has two).
#include "framework/cuda/cuda_backend.h"
#endif

namespace neurn {

// ---- storage ------------------------------------------------------------------

namespace {
// Relaxed atomics: the loader's threads allocate too; the peak is exact
// because every increase tries to raise it.
std::atomic<size_t> g_host_allocated{0};
std::atomic<size_t> g_host_peak{0};

void host_allocated_add(size_t n) {
  size_t now = g_host_allocated.fetch_add(n, std::memory_order_relaxed) + n;
  size_t peak = g_host_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_host_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}
}  // namespace

HostMemoryStats host_memory_stats() {
  return {g_host_allocated.load(std::memory_order_relaxed), g_host_peak.load(std::memory_order_relaxed)};
}

void reset_host_peak_memory() { g_host_peak.store(g_host_allocated.load(std::memory_order_relaxed), std::memory_order_relaxed); }

Storage::Storage(size_t n, Device dev) : nbytes(n), device(dev) {
  if (dev.is_meta() || n == 0) return;
  if (dev.is_cpu()) {
    // Keep freed blocks in the heap instead of returning them to the OS:
    // glibc maps blocks above its (adaptive, at most 32 MB) threshold fresh
    // and trims the heap top, so every training step paid a page fault per
    // 4 KB of activations (~10% of a digits-ConvNet step at batch 128).
    static const bool heap_tuned = [] {
      mallopt(M_MMAP_THRESHOLD, 1 << 30);
      mallopt(M_TRIM_THRESHOLD, 1 << 30);
      return true;
    }();
    (void)heap_tuned;
    size_t rounded = (n + 63) / 64 * 64;  // 64-byte aligned for SIMD
    data = std::aligned_alloc(64, rounded);
    NEURN_CHECK(data, "out of host memory allocating ", n, " bytes");
    host_allocated_add(n);
    deleter = [n](void* p) {
      std::free(p);
      g_host_allocated.fetch_sub(n, std::memory_order_relaxed);
    };
    return;
  }
#ifdef NEURN_WITH_CUDA
  // Also makes dev this thread's current CUDA device: the op allocating its
  // output here launches its kernels next (framework/cuda/cuda_backend.h).
  data = cuda::allocate(n, dev.index);
  deleter = [index = dev.index](void* p) { cuda::deallocate(p, index); };
#else
  NEURN_FAIL("cannot allocate on ", dev.str(), ": neurn was built without CUDA (configure with NEURN_CUDA=ON)");
#endif
}

Storage::Storage(void* d, size_t n, Device dev, std::function<void(void*)> del)
    : data(d), nbytes(n), device(dev), deleter(std::move(del)) {}

Storage::~Storage() {
  if (data && deleter) deleter(data);
}

// ---- tensor basics ----------------------------------------------------------------

TensorImpl& Tensor::impl() const {
  NEURN_CHECK(impl_, "operation on an undefined tensor");
  return *impl_;
}

namespace {
bool strides_are_contiguous(const Shape& shape, const std::vector<int64_t>& strides) {
  if (shape_numel(shape) == 0) return true;  // no elements: any strides describe it
  int64_t expected = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    if (shape[d] != 1 && strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}
}  // namespace

Tensor Tensor::empty(const Shape& shape, TensorOptions opt) {
  for (auto d : shape) NEURN_CHECK(d >= 0, "Tensor::empty: negative size in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->numel = shape_numel(shape);
  impl->dtype = opt.dtype;
  impl->device = opt.device;
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(impl->numel) * dtype_size(opt.dtype), opt.device);
  impl->requires_grad = opt.requires_grad;
  return Tensor(std::move(impl));
}

Tensor Tensor::from_storage(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype) {
  NEURN_CHECK(storage, "Tensor::from_storage: no storage");
  return view_of(std::move(storage), shape, contiguous_strides(shape), 0, dtype);
}

Tensor Tensor::view_of(std::shared_ptr<Storage> storage, const Shape& shape, const std::vector<int64_t>& strides,
                       int64_t offset, DType dtype) {
  NEURN_CHECK(storage, "Tensor::view_of: no storage");
  NEURN_CHECK(strides.size() == shape.size(), "Tensor::view_of: ", strides.size(), " strides for shape ",
              shape_str(shape));
  NEURN_CHECK(offset >= 0, "Tensor::view_of: negative storage offset ", offset);
  int64_t last = offset;  // the furthest element the view reaches
  const int64_t numel = shape_numel(shape);
  for (size_t d = 0; d < shape.size(); ++d) {
    NEURN_CHECK(shape[d] >= 0 && strides[d] >= 0, "Tensor::view_of: negative size or stride in shape ",
                shape_str(shape), " strides ", shape_str(strides));
    if (numel > 0) last += (shape[d] - 1) * strides[d];
  }
  NEURN_CHECK(storage->device.is_meta() || numel == 0 ||
                  static_cast<size_t>(last + 1) * dtype_size(dtype) <= storage->nbytes,
              "Tensor::view_of: a view of shape ", shape_str(shape), ", strides ", shape_str(strides), " and offset ",
              offset, " reaches past the end of its storage (", storage->nbytes, " bytes)");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->contiguous = strides_are_contiguous(shape, strides);
  impl->numel = numel;
  impl->dtype = dtype;
  impl->device = storage->device;
  impl->storage = std::move(storage);
  return Tensor(std::move(impl));
}

Tensor Tensor::as_strided(const Shape& shape, const std::vector<int64_t>& strides, int64_t offset) const {
  return view_of(impl().storage, shape, strides, offset, dtype());
}

void* Tensor::strided_raw_data() const {
  const auto& st = impl().storage;
  if (!st || !st->data) return nullptr;
  return static_cast<char*>(st->data) + impl().offset * static_cast<int64_t>(dtype_size(impl().dtype));
}

void* Tensor::raw_data() const {
  if (!is_contiguous() && !device().is_meta()) detail::fail_not_contiguous(*this, "raw_data");
  return strided_raw_data();
}

namespace detail {
void fail_not_contiguous(const Tensor& t, const char* what) {
  NEURN_FAIL("Tensor::", what, ": the tensor of shape ", shape_str(t.shape()), " is a non-contiguous view (strides ",
             shape_str(t.strides()), ", storage offset ", t.storage_offset(),
             "); call contiguous() first, or read it with strided_data() and its strides");
}

Tensor contiguous_copy(const Tensor& t) {
  if (!t.defined() || t.is_contiguous()) return t;
  Tensor out = Tensor::empty(t.shape(), t.options());
  out.copy_(t);
  return out;
}
}  // namespace detail

bool all_contiguous(std::initializer_list<Tensor> tensors) {
  for (const Tensor& t : tensors)
    if (t.defined() && !t.is_contiguous()) return false;
  return true;
}

Tensor Tensor::contiguous() const {
  if (!defined() || is_contiguous()) return *this;
  Tensor out = detail::contiguous_copy(*this);
  return attach_grad(out, "contiguous", {*this}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
}

int64_t Tensor::size(int64_t axis) const { return shape()[normalize_axis(axis, dim(), "Tensor::size")]; }

Tensor& Tensor::requires_grad_(bool on) {
  NEURN_CHECK(is_leaf(), "requires_grad_: only leaf tensors can change requires_grad (this one was made by ",
              impl().grad_fn->op, ")");
  NEURN_CHECK(!on || is_floating(dtype()), "requires_grad_: a ", dtype_name(dtype()), " tensor cannot require a gradient");
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }

void Tensor::set_grad(const Tensor& g) {
  if (!g.defined()) {
    impl().grad.reset();
    return;
  }
  NEURN_CHECK(g.shape() == shape(), "set_grad: gradient of shape ", shape_str(g.shape()), " for a tensor of shape ",
              shape_str(shape()));
  impl().grad = detail::contiguous_copy(g).impl_ptr();  // optimizers update .grad as a plain buffer
}

Tensor Tensor::detach() const { return view_of(impl().storage, shape(), strides(), storage_offset(), dtype()); }


Tensor Tensor::clone() const {
  Tensor out = empty(shape(), options());
  out.copy_(*this);
  return out;
}

namespace {

template <typename S, typename D>
void convert_loop(const S* src, D* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<D>(src[i]);
}

template <typename F>
void dispatch_host(DType t, F&& f) {
  switch (t) {
    case DType::Float32: f(float{}); return;
    case DType::Float64: f(double{}); return;
    case DType::Int64: f(int64_t{}); return;
    case DType::UInt8: f(uint8_t{}); return;
    default: NEURN_FAIL("dtype ", dtype_name(t), " is not supported on the CPU");
  }
}

void host_convert(const void* src, DType sd, void* dst, DType dd, int64_t n) {
  if (sd == dd) {
    std::memcpy(dst, src, static_cast<size_t>(n) * dtype_size(sd));
    return;
  }
  dispatch_host(sd, [&](auto s) {
    using S = decltype(s);
    dispatch_host(dd, [&](auto d) {
      using D = decltype(d);
      convert_loop(static_cast<const S*>(src), static_cast<D*>(dst), n);
    });
  });
}

}  // namespace

// The kernels behind copy_, fill_ and to(dtype). The copy between two
// tensors of one dtype honours both tensors' strides (a strided table); the
// conversion and the fill work on contiguous tensors.
NEURN_DEFINE_KERNEL(convert_kernel);
NEURN_DEFINE_KERNEL(fill_kernel);

namespace {
void convert_cpu(const Tensor& src, const Tensor& dst) {
  host_convert(src.raw_data(), src.dtype(), dst.raw_data(), dst.dtype(), src.numel());
}
void fill_cpu(const Tensor& t, double value) {
  dispatch_host(t.dtype(), [&](auto z) {
    using T = decltype(z);
    T* p = t.data<T>();
    const T v = static_cast<T>(value);
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; ++i) p[i] = v;
  });
}
}  // namespace
NEURN_REGISTER_KERNEL(convert_kernel, DeviceType::CPU, convert_cpu);
NEURN_REGISTER_KERNEL(fill_kernel, DeviceType::CPU, fill_cpu);

void Tensor::copy_(const Tensor& src) const {
  NEURN_CHECK(src.shape() == shape(), "copy_: source of shape ", shape_str(src.shape()), " into a tensor of shape ",
              shape_str(shape()));
  // An expanded view maps many of its elements to one memory location: which
  // of their values would land there depends on the order of the writes (and
  // on the threads), so such a write is refused, as PyTorch does. add_ and
  // mul_ write through here too. fill_ stays allowed: every write is the same.
  for (size_t d = 0; d < shape().size(); ++d) {
    NEURN_CHECK(strides()[d] != 0 || shape()[d] <= 1, "copy_: the destination ", shape_str(shape()),
                " with strides ", shape_str(strides()), " has several elements at one memory location (an expand() "
                "along axis ", d, "); write into a contiguous() copy instead");
  }
  Device sd = src.device(), dd = device();
  if (sd.is_meta() || dd.is_meta()) {
    NEURN_CHECK(sd.is_meta() && dd.is_meta(), "copy_: cannot copy data between ", sd.str(), " and ", dd.str());
    return;
  }
  if (numel() == 0) return;
  bump_version();  // before the write: a failed copy may have written part of it
  if (sd == dd) {
    if (src.dtype() == dtype()) return strided_copy_kernel(dd, src, *this);
    if (is_contiguous()) return convert_kernel(dd, src, *this);  // the table makes src contiguous
    Tensor converted = Tensor::empty(shape(), options());
    convert_kernel(dd, src, converted);
    return strided_copy_kernel(dd, converted, *this);
  }
  // Between devices: convert on the source's device, make both ends
  // contiguous, then move the bytes.
  if (src.dtype() != dtype()) return copy_(src.to(dtype()));
  if (!is_contiguous()) {
    Tensor staged = Tensor::empty(shape(), options());
    staged.copy_(src);
    return strided_copy_kernel(dd, staged, *this);
  }
  const Tensor s = detail::contiguous_copy(src);
#ifdef NEURN_WITH_CUDA
  if (sd.is_cpu() && dd.is_cuda()) return cuda::copy_host_to_device(raw_data(), dd.index, s.raw_data(), nbytes());
  if (sd.is_cuda() && dd.is_cpu()) return cuda::copy_device_to_host(raw_data(), s.raw_data(), sd.index, nbytes());
  if (sd.is_cuda() && dd.is_cuda())
    return cuda::copy_device_to_device(raw_data(), dd.index, s.raw_data(), sd.index, nbytes());
#endif
  NEURN_FAIL("copy_: cannot copy from ", sd.str(), " to ", dd.str(), " in this build");
}

void Tensor::fill_(double value) const {
  if (device().is_meta() || numel() == 0) return;
  bump_version();
  if (is_contiguous()) return fill_kernel(device(), *this, value);
  // A view: fill a contiguous block and copy it through the strides (an
  // expanded view writes its shared elements more than once, all the same).
  Tensor block = Tensor::empty(shape(), options());
  fill_kernel(device(), block, value);
  strided_copy_kernel(device(), block, *this);
}

Tensor Tensor::to(Device d) const {
  if (device() == d) return *this;
  Tensor out = empty(shape(), {dtype(), d, false});
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(DType t) const {
  if (dtype() == t) return *this;
  Tensor out = empty(shape(), {t, device(), false});
  if (numel() > 0) convert_kernel(device(), *this, out);
  return out;
}

double Tensor::item() const {
  NEURN_CHECK(numel() == 1, "item: the tensor has ", numel(), " elements, shape ", shape_str(shape()),
              " (expected exactly one)");
  return to_vector<double>()[0];
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  NEURN_CHECK(!device().is_meta(), "to_vector: a meta tensor has no data");
  Tensor host = detail::contiguous_copy(to(Device::cpu()));
  std::vector<T> out(static_cast<size_t>(numel()));
  if (numel()) host_convert(host.raw_data(), dtype(), out.data(), dtype_of<T>::value, numel());
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

std::string Tensor::str(int64_t max_per_dim) const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype()) << ", device=" << device().str();
  if (requires_grad()) os << ", requires_grad";
  os << ")";
  if (device().is_meta()) return os.str();
  std::vector<double> v = to_vector<double>();
  auto strides = contiguous_strides(shape());
  std::function<void(int64_t, int64_t)> rec = [&](int64_t axis, int64_t offset) {
    if (axis == dim()) {
      os << std::setprecision(6) << v[static_cast<size_t>(offset)];
      return;
    }
    os << "[";
    int64_t n = shape()[axis];
    for (int64_t i = 0; i < n; ++i) {
      if (n > max_per_dim && i == max_per_dim / 2) {
        os << "..., ";
        i = n - max_per_dim / 2;
      }
      rec(axis + 1, offset + i * strides[axis]);
      if (i + 1 < n) os << ", ";
    }
    os << "]";
  };
  os << "\n";
  rec(0, 0);
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

// ---- creation ---------------------------------------------------------------------

Tensor full(const Shape& shape, double value, TensorOptions opt) {
  bool rg = opt.requires_grad;
  opt.requires_grad = false;
  Tensor t = Tensor::empty(shape, opt);
  t.fill_(value);
  if (rg) t.requires_grad_();
  return t;
}
Tensor zeros(const Shape& shape, TensorOptions opt) { return full(shape, 0.0, opt); }
Tensor ones(const Shape& shape, TensorOptions opt) { return full(shape, 1.0, opt); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.options()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.options()); }
Tensor full_like(const Tensor& t, double v) { return full(t.shape(), v, t.options()); }
Tensor empty_like(const Tensor& t) { return Tensor::empty(t.shape(), t.options()); }
Tensor scalar_tensor(double v, TensorOptions opt) { return full({}, v, opt); }

namespace {
// Fills a host double buffer with f(i) and moves it to opt.
template <typename F>
Tensor generate(const Shape& shape, TensorOptions opt, F&& f) {
  bool rg = opt.requires_grad;
  Tensor host = Tensor::empty(shape, {DType::Float64, Device::cpu(), false});
  if (!opt.device.is_meta()) {
    double* p = host.data<double>();
    for (int64_t i = 0; i < host.numel(); ++i) p[i] = f(i);
  }
  Tensor out = opt.device.is_meta() ? Tensor::empty(shape, {opt.dtype, opt.device, false})
                                    : host.to(opt.dtype).to(opt.device);
  if (rg) out.requires_grad_();
  return out;
}
}  // namespace

Tensor arange(double start, double end, double step, TensorOptions opt) {
  NEURN_CHECK(step != 0, "arange: step must be non-zero");
  int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((end - start) / step)));
  return generate({n}, opt, [&](int64_t i) { return start + static_cast<double>(i) * step; });
}

Tensor rand(const Shape& shape, TensorOptions opt, Generator* gen, double lo, double hi) {
  Generator& g = gen ? *gen : default_generator();
  uint64_t base = g.advance(static_cast<uint64_t>(shape_numel(shape)));
  uint64_t seed = g.seed();
  return generate(shape, opt, [&](int64_t i) { return lo + (hi - lo) * counter_uniform(seed, base + i); });
}

Tensor randn(const Shape& shape, TensorOptions opt, Generator* gen, double mean, double std) {
  Generator& g = gen ? *gen : default_generator();
  uint64_t base = g.advance(static_cast<uint64_t>(shape_numel(shape)));
  uint64_t seed = g.seed();
  return generate(shape, opt, [&](int64_t i) { return mean + std * counter_normal(seed, base + i); });
}

Tensor randint(int64_t lo, int64_t hi, const Shape& shape, Generator* gen) {
  NEURN_CHECK(hi > lo, "randint: empty range [", lo, ", ", hi, ")");
  Generator& g = gen ? *gen : default_generator();
  uint64_t base = g.advance(static_cast<uint64_t>(shape_numel(shape)));
  Tensor out = Tensor::empty(shape, {DType::Int64, Device::cpu(), false});
  int64_t* p = out.data<int64_t>();
  for (int64_t i = 0; i < out.numel(); ++i)
    p[i] = lo + static_cast<int64_t>(counter_uniform(g.seed(), base + i) * static_cast<double>(hi - lo));
  return out;
}

Tensor from_buffer(const void* data, DType src_dtype, const Shape& shape, TensorOptions opt) {
  bool rg = opt.requires_grad;
  Tensor host = Tensor::empty(shape, {opt.dtype, Device::cpu(), false});
  if (host.numel()) host_convert(data, src_dtype, host.raw_data(), opt.dtype, host.numel());
  Tensor out = host.to(opt.device);
  if (rg) out.requires_grad_();
  return out;
}

}  // namespace neurn
