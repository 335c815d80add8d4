#pragma once
#include <string>

namespace neurn {

// cpu: host memory. cuda: GPU memory (the CUDA backend). meta: shape only, no
// data: running a model on meta tensors computes shapes, FLOPs and the trace.
enum class DeviceType : uint8_t { CPU, CUDA, Meta };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  static Device meta() { return {DeviceType::Meta, 0}; }
  // "cpu", "cuda", "cuda:1", "meta"
  static Device parse(const std::string& s);

  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool is_meta() const { return type == DeviceType::Meta; }
  bool operator==(const Device& o) const = default;
  std::string str() const;
};

// Whether a usable CUDA device is present (false in a CPU-only build, and when
// the driver is missing or too old: the binary then says so once and runs on
// the CPU).
bool cuda_available();
int cuda_device_count();

}  // namespace neurn
