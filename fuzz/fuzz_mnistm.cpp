// MNIST-M: the labels file (first byte even) or an image of the folder
// (first byte odd: the input is 00000000.png, listed by a fixed labels file).
#include "datasets/readers.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace neurn;
  if (size == 0) return 0;
  static const std::string dir = [] {
    std::string d = fuzz::scratch() + "/mnistm";
    std::filesystem::create_directories(d);
    return d;
  }();
  if (data[0] % 2 == 0) {
    std::string labels = fuzz::put("labels.txt", data + 1, size - 1);
    fuzz::expect_clear_errors([&] { data::read_mnistm_labels(labels); });
  } else {
    fuzz::put("mnistm/00000000.png", data + 1, size - 1);
    const char list[] = "00000000.png 3\n";
    std::string labels = fuzz::put("fixed_labels.txt", reinterpret_cast<const uint8_t*>(list), sizeof list - 1);
    fuzz::expect_clear_errors([&] { data::read_mnistm_folder(dir, labels, "train", 1); });
  }
  return 0;
}
