// NeuRN in front of registry models: the trace starts with the NeuRN token,
// parameters and output shapes do not change, FLOPs grow by NeuRN's, and a
// forward/backward runs.
#include <doctest/doctest.h>

#include "gradcheck.h"
#include "layers/neurn_layer.h"
#include "models/registry.h"

using namespace neurn;

TEST_CASE("NeuRN in front of any registry model (ModelOptions::front)") {
  for (const ModelInfo& info : list_models()) {
    INFO("model " << info.name);
    ModelOptions plain;
    plain.input_size = std::max<int64_t>(32, info.min_input_size);
    ModelOptions with = plain;
    with.front = [] { return make_neurn_layer(std::map<std::string, std::string>{{"k", "3"}, {"padding", "valid"}}); };
    ModelTrace a = trace_model(info.name, plain), b = trace_model(info.name, with);
    REQUIRE(!b.tokens.empty());
    CHECK(b.tokens.front() == "NeuRN");
    CHECK(std::vector<std::string>(b.tokens.begin() + 1, b.tokens.end()) == a.tokens);
    CHECK(b.params == a.params);
    CHECK(b.output_shape == a.output_shape);
    CHECK(b.flops - a.flops == kNeuRNFlopsPerElement * 3 * plain.input_size * plain.input_size);
  }
  ModelOptions o;
  o.front = [] { return make_neurn_layer("k=5,max_scope=channel"); };
  ModulePtr m = build_model("digits_convnet", o);
  Generator gen(2);
  Tensor x = rand({2, 3, 32, 32}, {}, &gen);
  Tensor y = (*m)(x);
  CHECK(y.shape() == Shape{2, 10});
  sum(y).backward();
  for (auto& p : m->parameters()) CHECK(p.grad().defined());
}
