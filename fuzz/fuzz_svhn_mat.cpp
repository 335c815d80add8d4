// SVHN .mat files: our reading (shapes, types, labels) on top of libmatio.
#include "datasets/readers.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace neurn;
  std::string path = fuzz::put("svhn.mat", data, size);
  fuzz::expect_clear_errors([&] {
    data::Dataset ds = data::read_svhn_mat(path, "svhn", "test");
    for (int64_t i = 0; i < ds.size(); ++i)
      if (ds.label(i) < 0 || ds.label(i) > 9) std::abort();
  });
  return 0;
}
