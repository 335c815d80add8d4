// End to end: the engine, the layers and Adam learn a small separable problem.
#include <doctest/doctest.h>

#include "framework/optim/optim.h"
#include "layers/layers.h"

using namespace neurn;

namespace {

// 1x8x8 images: class 0 holds a bright horizontal bar, class 1 a vertical
// one, at a random position, over uniform noise.
void make_bars(int64_t n, Generator& gen, Tensor& images, Tensor& labels) {
  std::vector<float> px(static_cast<size_t>(n * 64));
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    y[i] = static_cast<int64_t>(gen.below(2));
    int64_t pos = static_cast<int64_t>(gen.below(8));
    for (int64_t r = 0; r < 8; ++r)
      for (int64_t c = 0; c < 8; ++c) {
        bool on = y[i] == 0 ? r == pos : c == pos;
        px[static_cast<size_t>(i * 64 + r * 8 + c)] = static_cast<float>(0.4 * gen.uniform() + (on ? 0.6 : 0.0));
      }
  }
  images = from_vector(px, {n, 1, 8, 8});
  labels = from_vector(y, {n});
}

}  // namespace

TEST_CASE("a small CNN learns a separable problem to at least 95% training accuracy") {
  Generator data_gen(11), init_gen(12);
  Tensor x, y;
  make_bars(128, data_gen, x, y);
  auto net = std::make_shared<Sequential>();
  {
    ParamScope scope({}, &init_gen);
    net->emplace<Conv2d>(1, 8, 3, 1, 1);
    net->emplace<ReLU>();
    net->emplace<MaxPool2d>(2);
    net->emplace<Conv2d>(8, 16, 3, 1, 1);
    net->emplace<ReLU>();
    net->emplace<Flatten>();
    net->emplace<Linear>(16 * 4 * 4, 2);
  }
  Adam opt(net->parameters(), {.lr = 0.01});
  double first_loss = 0, loss_value = 0;
  for (int step = 0; step < 60; ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy((*net)(x), y);
    loss.backward();
    opt.step();
    loss_value = loss.item();
    if (step == 0) first_loss = loss_value;
  }
  NoGradGuard ng;
  net->eval();
  auto pred = argmax((*net)(x), 1).to_vector<int64_t>();
  auto truth = y.to_vector<int64_t>();
  int correct = 0;
  for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == truth[i];
  double acc = static_cast<double>(correct) / static_cast<double>(pred.size());
  CHECK(loss_value < first_loss);
  MESSAGE("accuracy " << acc << ", loss " << first_loss << " -> " << loss_value);
  CHECK(acc >= 0.95);
}
