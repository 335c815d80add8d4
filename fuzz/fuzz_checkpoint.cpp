// Checkpoint files (<base>.safetensors with the JSON metadata inside), as
// --resume and `neurn eval` read them.
#include "experiments/checkpoint.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace neurn;
  fuzz::put("ckpt.safetensors", data, size);
  fuzz::expect_clear_errors([&] {
    experiments::Checkpoint c = experiments::load_checkpoint(fuzz::scratch() + "/ckpt");
    (void)c.meta.dump();
  });
  return 0;
}
