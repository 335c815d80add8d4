#pragma once
// Opt-in bf16 autocast for the CUDA matrix products and convolutions: while
// an AutocastGuard is alive on a thread, float32 GEMMs (matmul, linear) and
// convolutions on CUDA read their operands as bfloat16 and accumulate and
// write in float32. Parameters stay float32 (master weights), as do every
// other op and all reductions. No effect on the CPU or in a CPU-only build.
// NEURN_AUTOCAST_BF16=1 in the environment switches it on by default.
namespace neurn::cuda {

bool autocast_bf16();            // the current thread's setting
void set_autocast_bf16(bool on);

class AutocastGuard {
 public:
  explicit AutocastGuard(bool on = true) : prev_(autocast_bf16()) { set_autocast_bf16(on); }
  ~AutocastGuard() { set_autocast_bf16(prev_); }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace neurn::cuda
