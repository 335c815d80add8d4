// MNIST IDX files: the input is the images file (with a matching labels
// file) when its first byte is even, else the labels file (with 3 images).
#include "datasets/readers.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace neurn;
  if (size == 0) return 0;
  bool images = data[0] % 2 == 0;
  std::string fuzzed = fuzz::put(images ? "images" : "labels", data + 1, size - 1);
  std::string other;
  if (images) {
    const uint8_t labels[11] = {0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3};
    other = fuzz::put("labels", labels, sizeof labels);
  } else {
    std::vector<uint8_t> im = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28};
    im.resize(16 + 3 * 784, 7);
    other = fuzz::put("images", im.data(), im.size());
  }
  fuzz::expect_clear_errors([&] {
    data::Dataset ds = images ? data::read_mnist(fuzzed, other, "train") : data::read_mnist(other, fuzzed, "train");
    if (ds.size() > 0 && ds.image(ds.size() - 1)[783] == 1) std::printf("%s", "");  // touch the last pixel
  });
  return 0;
}
