// safetensors: header JSON, dtypes, shapes, offsets.
#include <string>

#include "framework/serialize/safetensors.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace neurn;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  fuzz::expect_clear_errors([&] {
    std::map<std::string, std::string> meta;
    NamedTensors t = decode_safetensors(bytes, "fuzz.safetensors", &meta);
    for (auto& [name, tensor] : t) (void)tensor.numel();
  });
  return 0;
}
