// A model of your own: a small CNN defined as a Module with named children,
// NeuRN in front, trained on MNIST and tested on MNIST-M and USPS.
//
//   custom_cnn [--data-root DIR] [--train-images N] [--test-images N] [--epochs E]
//
// The data root is prepared by `neurn data prepare` (default $NEURN_DATA,
// else ./data). Domains that are not there are reported and left out.
#include <neurn/neurn.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace neurn;

// Two 5x5 conv blocks and two fully connected layers for 32x32 RGB digits.
// register_module names each child, so the state-dict keys read
// "conv1.weight", "fc2.bias", ... like a PyTorch module's.
class SmallCnn : public Module {
 public:
  SmallCnn() {
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(3, 32, 5, 1, 2));
    conv2_ = register_module("conv2", std::make_shared<Conv2d>(32, 64, 5, 1, 2));
    fc1_ = register_module("fc1", std::make_shared<Linear>(64 * 8 * 8, 256));
    fc2_ = register_module("fc2", std::make_shared<Linear>(256, 10));
  }
  Tensor forward(const Tensor& x) override {                         // (N, 3, 32, 32)
    Tensor h = max_pool2d(relu((*conv1_)(x)), Pool2dOptions{{2, 2}});  // (N, 32, 16, 16)
    h = max_pool2d(relu((*conv2_)(h)), Pool2dOptions{{2, 2}});         // (N, 64, 8, 8)
    h = relu((*fc1_)(flatten(h)));                                     // (N, 256)
    return (*fc2_)(h);                                                 // (N, 10) logits
  }

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<Linear> fc1_, fc2_;
};

namespace {

data::LoaderOptions loader_options(bool train) {
  data::LoaderOptions o;
  o.batch_size = 64;
  o.shuffle = train;
  o.size = 32;     // every domain resized to 32x32 ...
  o.channels = 3;  // ... and made RGB
  return o;
}

double accuracy(Module& model, const data::Dataset& ds) {
  NoGradGuard no_grad;
  model.eval();
  data::DataLoader loader(ds, loader_options(false));
  int64_t correct = 0;
  for (const data::Batch& b : loader) {
    auto pred = argmax(model(b.images), 1).to_vector<int64_t>();
    auto label = b.labels.to_vector<int64_t>();
    for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == label[i];
  }
  return ds.empty() ? 0.0 : 100.0 * static_cast<double>(correct) / static_cast<double>(ds.size());
}

}  // namespace

int run(int argc, char** argv) {
  std::string root = data::data_root();
  int64_t train_images = 10000, test_images = 2000, epochs = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--data-root") root = argv[i + 1];
    else if (flag == "--train-images") train_images = std::atoll(argv[i + 1]);
    else if (flag == "--test-images") test_images = std::atoll(argv[i + 1]);
    else if (flag == "--epochs") epochs = std::atoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "custom_cnn: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (!data::domain_available("mnist", root)) {
    std::fprintf(stderr, "custom_cnn: %s\n", data::domain_unavailable_message("mnist", root).c_str());
    return 3;
  }

  // NeuRN (3x3 local contrast) in front of the CNN, as a named child "front".
  auto model = std::make_shared<Sequential>();
  model->add("front", make_neurn_layer("k=3"));
  model->add("net", std::make_shared<SmallCnn>());
  std::printf("model: NeuRN + SmallCnn, %lld parameters\n", static_cast<long long>(model->num_parameters()));

  data::Dataset train = data::load_domain("mnist", "train", root, data::Protocol::first_n(train_images));
  data::DataLoader loader(train, loader_options(true));
  Adam optimizer(model->parameters(), AdamOptions{.lr = 1e-3});

  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    model->train();
    auto start = std::chrono::steady_clock::now();
    int64_t step = 0;
    double loss_sum = 0;
    for (const data::Batch& b : loader) {
      Tensor loss = cross_entropy((*model)(b.images), b.labels);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      loss_sum += loss.item();
      ++step;
      // a progress line: batches per second and the time left in this epoch
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      double rate = static_cast<double>(step) / s;
      std::printf("\repoch %lld  %lld/%lld  loss %.3f  %.1f batches/s  ETA %.0f s   ", static_cast<long long>(epoch + 1),
                  static_cast<long long>(step), static_cast<long long>(loader.num_batches()), loss_sum / step, rate,
                  static_cast<double>(loader.num_batches() - step) / rate);
      std::fflush(stdout);
    }
    std::printf("\n");
  }

  std::printf("mnist (source, test): %.1f%%\n",
              accuracy(*model, data::load_domain("mnist", "test", root, data::Protocol::first_n(test_images))));
  for (const char* target : {"mnistm", "usps"}) {
    if (!data::domain_available(target, root)) {
      std::printf("%s: not available (%s)\n", target, data::domain_unavailable_message(target, root).c_str());
      continue;
    }
    std::printf("%s (target, test): %.1f%%\n", target,
                accuracy(*model, data::load_domain(target, "test", root, data::Protocol::first_n(test_images))));
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
