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

TEST_CASE("autoformer: subnets of the supernet equal a PyTorch computation of the reference (float64)" *
          testing::skip_unless(testing::have_torch(), testing::kNoTorch)) {
  fs::path dir = fs::temp_directory_path() / ("neurn_test_af_torch_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  SearchSpace s = search_space("cpu");  // head_dim 64, patch 16, 5 tokens
  Generator gen(31);
  std::shared_ptr<Supernet> net;
  {
    ParamScope scope({DType::Float64}, &gen);
    net = std::make_shared<Supernet>(s);
    for (auto& [name, p] : net->named_parameters())
      if (p.dim() == 1) normal_(p, name.find("weight") != std::string::npos ? 1.0 : 0.0, 0.3);
  }
  save_state(*net, (dir / "w.safetensors").string());
  Tensor x = randn({2, 3, 32, 32}, {DType::Float64}, &gen);
  save_safetensors((dir / "x.safetensors").string(), {{"x", x}});
  std::vector<SubnetConfig> subnets = {largest_subnet(s), smallest_subnet(s), SubnetConfig{96, {1, 2, 2}, {4.0, 2.0, 3.0}}};
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
                      " " + ratios.str() + " " + std::to_string(s.head_dim) + " " + std::to_string(s.patch);
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
