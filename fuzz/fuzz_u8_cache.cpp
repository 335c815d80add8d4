// The decoded caches of MNIST-M and syn (NEURNU8 files).
#include "datasets/readers.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace neurn;
  std::string path = fuzz::put("cache.u8", data, size);
  fuzz::expect_clear_errors([&] { data::read_u8_cache(path, "syn", "test"); });
  return 0;
}
