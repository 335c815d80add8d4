// A registry backbone with torchvision's ImageNet weights from a safetensors
// file, classifying a batch.
//
//   classify_backbone --weights FILE.safetensors [--model mobilenet_v2] [--size 224]
//                     [--data-root DIR] [--images N]
//
// Make the weights file with scripts/export_torchvision_weights.py (it reads
// torchvision's .pth, from the hub cache or a download). The batch is the
// first N MNIST-M test images (MNIST if MNIST-M is not prepared), resized to
// SIZE and normalized with ImageNet's mean and std, as torchvision's weights
// expect. For each image it prints the top-5 ImageNet class indices with
// their probabilities.
#include <neurn/neurn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>

using namespace neurn;

int run(int argc, char** argv) {
  std::string model_name = "mobilenet_v2", weights, root = data::data_root();
  int64_t size = 224, images = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--model") model_name = argv[i + 1];
    else if (flag == "--weights") weights = argv[i + 1];
    else if (flag == "--size") size = std::atoll(argv[i + 1]);
    else if (flag == "--data-root") root = argv[i + 1];
    else if (flag == "--images") images = std::atoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "classify_backbone: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (weights.empty()) {
    std::fprintf(stderr, "classify_backbone: --weights FILE.safetensors is required\n");
    return 2;
  }

  // The registry builds the architecture; ImageNet has 1000 classes.
  ModelOptions options;
  options.num_classes = 1000;
  options.input_size = size;
  ModulePtr model = build_model(model_name, options);
  // strict: every tensor of the model must be in the file and vice versa
  LoadReport report = load_state_file(*model, weights, /*strict=*/true);
  std::printf("%s: %s\n", model_name.c_str(), report.str().c_str());
  model->eval();

  std::string domain = data::domain_available("mnistm", root) ? "mnistm" : "mnist";
  if (!data::domain_available(domain, root)) {
    std::fprintf(stderr, "classify_backbone: %s\n", data::domain_unavailable_message(domain, root).c_str());
    return 3;
  }
  data::LoaderOptions lo;
  lo.batch_size = images;
  lo.shuffle = false;
  lo.size = size;
  lo.channels = 3;
  lo.normalize = data::loader_normalization(data::input_normalization("imagenet"));
  data::DataLoader loader(data::load_domain(domain, "test", root, data::Protocol::first_n(images)), lo);
  data::Batch batch = *loader.begin();  // (N, 3, SIZE, SIZE); a copy shares the tensors

  NoGradGuard no_grad;
  Tensor probs = softmax((*model)(batch.images), 1);  // (N, 1000)
  auto p = probs.to_vector<float>();
  for (int64_t n = 0; n < probs.shape()[0]; ++n) {
    const float* row = p.data() + n * 1000;
    std::vector<int> idx(1000);
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + 5, idx.end(), [&](int a, int b) { return row[a] > row[b]; });
    std::printf("%s test image %lld: top-5", domain.c_str(), static_cast<long long>(n));
    for (int k = 0; k < 5; ++k) std::printf("  class %d (%.3f)", idx[k], row[idx[k]]);
    std::printf("\n");
  }
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // neurn::Error says what is wrong and where
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
}
