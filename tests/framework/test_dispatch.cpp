// The kernel tables of framework/dispatch.h: a call reaches the kernel of the
// tensor's device type, meta runs nothing for a kernel that returns nothing,
// a device without a kernel throws naming the op (never an uninitialised
// output), and the tables of the real ops are registered (static
// initialisation through a whole-linked archive). In a CUDA build every op
// with a CPU kernel must also have a CUDA kernel.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "framework/dispatch.h"
#include "framework/ops.h"

using namespace neurn;

namespace {

NEURN_DECLARE_KERNEL(test_fill_kernel, void(const Tensor& out, double value));
NEURN_DEFINE_KERNEL(test_fill_kernel);
NEURN_DECLARE_KERNEL(test_count_kernel, int64_t(const Tensor& x));
NEURN_DEFINE_KERNEL(test_count_kernel);

void fill_cpu(const Tensor& out, double value) {
  float* p = out.data<float>();
  for (int64_t i = 0; i < out.numel(); ++i) p[i] = static_cast<float>(value);
}
int64_t count_cpu(const Tensor& x) { return x.numel() * 10; }

NEURN_REGISTER_KERNEL(test_fill_kernel, DeviceType::CPU, fill_cpu);
NEURN_REGISTER_KERNEL(test_count_kernel, DeviceType::CPU, count_cpu);

}  // namespace

TEST_CASE("dispatch: a table runs the kernel registered for the device's type") {
  Tensor t = Tensor::empty({2, 3});
  test_fill_kernel(t.device(), t, 2.5);
  for (float v : t.to_vector<float>()) CHECK(v == 2.5f);
  CHECK(test_count_kernel(t.device(), t) == 60);
  CHECK(test_fill_kernel.has(DeviceType::CPU));
  CHECK_FALSE(test_fill_kernel.has(DeviceType::CUDA));
  CHECK(std::string(test_fill_kernel.name()) == "test_fill_kernel");
}

TEST_CASE("dispatch: meta runs nothing for a kernel without a result, and throws for one with a result") {
  Tensor m = Tensor::empty({4}, {DType::Float32, Device::meta()});
  CHECK_NOTHROW(test_fill_kernel(m.device(), m, 1.0));
  CHECK_THROWS_WITH_AS(test_count_kernel(m.device(), m), doctest::Contains("test_count_kernel"), Error);
}

TEST_CASE("dispatch: a device without a kernel throws naming the op and the device") {
  Tensor t = Tensor::empty({1});
  try {
    test_fill_kernel(Device::cuda(0), t, 1.0);
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("test_fill_kernel") != std::string::npos);
    CHECK(msg.find("cuda") != std::string::npos);
  }
}

TEST_CASE("dispatch: the engine's ops are registered in kernel_tables(), each with a CPU kernel") {
  std::set<std::string> names;
  for (const KernelTableBase* t : kernel_tables()) {
    names.insert(t->name());
    CHECK_MESSAGE(t->has(DeviceType::CPU), t->name(), " has no CPU kernel");
  }
  CHECK(names.count("test_fill_kernel") == 1);
  // One table of the engine per converted op family is enough to show the
  // archive's registrars ran; the full list is printed by `neurn kernels`.
  CHECK(names.count("unary_kernel") == 1);
  CHECK(names.count("binary_kernel") == 1);
}

#ifdef NEURN_WITH_CUDA
TEST_CASE("dispatch: in a CUDA build, every op with a CPU kernel has a CUDA kernel") {
  for (const KernelTableBase* t : kernel_tables()) {
    if (std::string(t->name()).rfind("test_", 0) == 0) continue;  // this file's own tables
    CHECK_MESSAGE(t->has(DeviceType::CUDA), t->name(), " has a CPU kernel but no CUDA kernel");
  }
}
#endif
