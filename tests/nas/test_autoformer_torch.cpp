// The supernet's subnets against an independent PyTorch computation of the
// reference's semantics (tests/nas/autoformer_torch_reference.py), float64.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "gradcheck.h"
#include "layers/layers.h"
#include "nas/autoformer/supernet.h"
#include "skip.h"

namespace fs = std::filesystem;
using namespace neurn;
using namespace neurn::autoformer;

namespace {

// Writes the supernet's weights and x, runs the script for each subnet and
// compares in float64.
void check_against_torch(const SearchSpace& s, uint64_t seed, const std::vector<SubnetConfig>& subnets,
                         int64_t input_size) {
  fs::path dir = fs::temp_directory_path() / ("neurn_test_af_torch_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  Generator gen(seed);
  std::shared_ptr<Supernet> net;
  {
    ParamScope scope({DType::Float64}, &gen);
    net = std::make_shared<Supernet>(s);
    for (auto& [name, p] : net->named_parameters())
      if (p.dim() == 1) normal_(p, name.find("weight") != std::string::npos ? 1.0 : 0.0, 0.3);
      else if (name.find("embeddings_table") != std::string::npos) normal_(p, 0.0, 0.5);  // visible terms
  }
  save_state(*net, (dir / "w.safetensors").string());
  Tensor x = randn({2, 3, input_size, input_size}, {DType::Float64}, &gen);
  save_safetensors((dir / "x.safetensors").string(), {{"x", x}});
  for (const auto& c : subnets) {
    INFO(encode_subnet(c));
    std::ostringstream heads, ratios;
    for (size_t i = 0; i < c.heads.size(); ++i) {
      heads << (i ? "," : "") << c.heads[i];
      ratios << (i ? "," : "") << c.mlp_ratios[i];
    }
    std::string cmd = "/usr/bin/python3 '" + std::string(NEURN_SOURCE_DIR) + "/tests/nas/autoformer_torch_reference.py' '" +
                      (dir / "w.safetensors").string() + "' '" + (dir / "x.safetensors").string() + "' '" +
                      (dir / "y.safetensors").string() + "' " + std::to_string(c.embed_dim) + " " + heads.str() +
                      " " + ratios.str() + " " + std::to_string(s.head_dim) + " " + std::to_string(s.patch) + " " +
                      std::to_string(s.relative_position ? s.max_relative_position : 0);
    REQUIRE(std::system(cmd.c_str()) == 0);
    Tensor want = find_tensor(load_safetensors((dir / "y.safetensors").string()), "y");
    net->set_subnet(c);
    Tensor got = (*net)(x);
    REQUIRE(got.shape() == want.shape());
    double diff = max(abs(sub(got, want))).item();
    MESSAGE(encode_subnet(c), ": max |neurn - torch| = ", diff);
    CHECK(diff < 1e-10);
    CHECK(max(abs(want)).item() > 1e-2);
  }
  fs::remove_all(dir);
}

}  // namespace

TEST_CASE("autoformer: subnets of the supernet equal a PyTorch computation of the reference (float64)" *
          testing::skip_unless(testing::have_torch(), testing::kNoTorch)) {
  SearchSpace s = search_space("cpu");  // head_dim 64, patch 16, 5 tokens
  check_against_torch(s, 31, {largest_subnet(s), smallest_subnet(s), SubnetConfig{96, {1, 2, 2}, {4.0, 2.0, 3.0}}},
                      32);
}

TEST_CASE("autoformer: with relative positions, subnets equal the PyTorch computation of the reference (float64)" *
          testing::skip_unless(testing::have_torch(), testing::kNoTorch)) {
  // a 4x4 grid (patch 4 at 16), max distance 2 so that clipping happens,
  // tables of 16 columns sliced to head_dim 8
  SearchSpace s = search_space("micro");
  s.relative_position = true, s.max_relative_position = 2, s.head_dim = 8, s.patch = 4;
  check_against_torch(s, 32, {largest_subnet(s), smallest_subnet(s), SubnetConfig{24, {2, 1}, {1.5, 2.0}}}, 16);
  // the reference's default distance 14 on the cpu space (2x2 grid: no clipping)
  SearchSpace c = search_space("cpu");
  c.relative_position = true;
  check_against_torch(c, 33, {largest_subnet(c), SubnetConfig{96, {1, 2}, {4.0, 2.0}}}, 32);
}
