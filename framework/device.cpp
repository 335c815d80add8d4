#include "framework/device.h"

#include "framework/error.h"
#ifdef NEURN_WITH_CUDA
#include "framework/cuda/cuda_backend.h"
#endif

namespace neurn {

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "meta") return meta();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    // Digits only ("cuda:-1", "cuda:1x" and "cuda: 1" are not devices); whether
    // cuda:N exists is checked when memory is first allocated there.
    const std::string n = s.substr(5);
    bool digits = !n.empty() && n.size() <= 4;
    for (char c : n) digits = digits && c >= '0' && c <= '9';
    if (digits) return cuda(std::stoi(n));
  }
  NEURN_FAIL("unknown device '", s, "' (expected cpu, cuda, cuda:N or meta)");
}

std::string Device::str() const {
  switch (type) {
    case DeviceType::CPU: return "cpu";
    case DeviceType::Meta: return "meta";
    case DeviceType::CUDA: return "cuda:" + std::to_string(index);
  }
  return "?";
}

int cuda_device_count() {
#ifdef NEURN_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

bool cuda_available() { return cuda_device_count() > 0; }

}  // namespace neurn
