// YAML experiment configs: syntax and schema (parse_config, the stage that
// reads a file a user hands to `neurn run`).
#include <string>

#include "experiments/config.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace neurn;
  std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::expect_clear_errors([&] { experiments::parse_config(text, "fuzz.yaml"); });
  return 0;
}
