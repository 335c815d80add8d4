// USPS: Hastie's text format when the first byte is even, else libsvm; both
// through read_decompressed, so gzip and bzip2 inputs are fuzzed too.
#include "datasets/readers.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace neurn;
  if (size == 0) return 0;
  std::string path = fuzz::put("usps", data + 1, size - 1);
  fuzz::expect_clear_errors([&] {
    data::Dataset ds = data[0] % 2 == 0 ? data::read_usps_text(path, "train") : data::read_usps_libsvm(path, "train");
    for (int64_t i = 0; i < ds.size(); ++i)
      if (ds.label(i) < 0 || ds.label(i) > 9) std::abort();
  });
  return 0;
}
