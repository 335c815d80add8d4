// Input fronts (experiments/front.h): the `fronts:` list of a config, its
// errors, run ids and fingerprints (the older `neurn: [false, true]` keeps
// its own), the layers each front builds, the records, a tiny sweep with
// every kind of front, and a dry run of experiments/configs/ablation_neurn.yaml.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "experiments/config.h"
#include "experiments/run_identity.h"
#include "experiments/sweep.h"
#include "gradcheck.h"
#include "layers/layers.h"
#include "models/registry.h"
#include "test_files.h"
#include "test_models.h"
#include "tiny_data.h"

using namespace neurn;
using namespace neurn::experiments;
using neurn::testing::fresh_dir;
namespace fs = std::filesystem;

namespace {

const char* kFronts = R"(name: f
models: [digits_convnet]
sources: [mnist]
fronts:
  - none
  - neurn
  - {kind: neurn, k: 5}
  - {kind: neurn, padding: reflect, max_scope: channel}
  - {kind: neurn, padding: zero, label: neurn_zero}
  - lrn
  - {kind: lcn, kernel_size: 5, sigma: 1.5}
seeds: [0]
)";

std::vector<std::string> ids(const ExperimentConfig& c) {
  std::vector<std::string> out;
  for (auto& r : expand_grid(c)) out.push_back(r.run_id());
  return out;
}

void register_front_models() {
  neurn::testing::register_linear_model("fronts_linear", "a linear classifier for the front tests");
}

}  // namespace

TEST_CASE("fronts: kinds, options with their defaults, labels and run ids") {
  ExperimentConfig c = parse_config(kFronts, "f.yaml");
  REQUIRE(c.fronts.size() == 7);
  CHECK(c.fronts[0].none());
  CHECK(c.fronts[1].label == "neurn");
  CHECK(c.fronts[2].label == "neurn_k5");
  CHECK(c.fronts[3].label == "neurn_max_scope-channel_padding-reflect");
  CHECK(c.fronts[4].label == "neurn_zero");
  CHECK(c.fronts[5].label == "lrn");
  CHECK(c.fronts[6].label == "lcn_kernel_size-5_sigma-1.5");
  CHECK(ids(c) == std::vector<std::string>{"digits_convnet/mnist/seed0", "digits_convnet+neurn/mnist/seed0",
                                           "digits_convnet+neurn_k5/mnist/seed0",
                                           "digits_convnet+neurn_max_scope-channel_padding-reflect/mnist/seed0",
                                           "digits_convnet+neurn_zero/mnist/seed0", "digits_convnet+lrn/mnist/seed0",
                                           "digits_convnet+lcn_kernel_size-5_sigma-1.5/mnist/seed0"});
  auto grid = expand_grid(c);
  CHECK_FALSE(grid[0].neurn);
  CHECK(grid[2].neurn);
  CHECK_FALSE(grid[5].neurn);

  nlohmann::json o = resolved_front_options(c.fronts[2]);
  CHECK(o.at("k") == 5);
  CHECK(o.at("padding") == "valid");
  CHECK(resolved_front_options(c.fronts[5]).at("size") == 5);
  CHECK(resolved_front_options(c.fronts[6]).at("sigma") == doctest::Approx(1.5));
  CHECK(front_display_name(c.fronts[1]) == "NeuRN");
  CHECK(front_display_name(c.fronts[5]) == "LRN");
  CHECK(front_display_name(c.fronts[2]) == "neurn_k5");

  // The config written back (stored with every record) reads back the same.
  ExperimentConfig again = parse_config(config_to_yaml(c), "again.yaml");
  CHECK(ids(again) == ids(c));
  for (size_t i = 0; i < c.fronts.size(); ++i) CHECK(same_front(again.fronts[i], c.fronts[i]));
}

TEST_CASE("fronts: errors name the line, the key and what is allowed") {
  auto with = [](const std::string& fronts) {
    return "models: [digits_convnet]\nsources: [mnist]\nfronts:\n" + fronts;
  };
  CHECK_THROWS_CONTAINING(parse_config(with("  - nuern\n"), "e.yaml"),
                          "e.yaml:4:5: bad value 'nuern' for a front (did you mean neurn?); allowed: none, neurn, lrn, lcn");
  CHECK_THROWS_CONTAINING(parse_config(with("  - {kind: neurn, kk: 5}\n"), "e.yaml"),
                          "e.yaml:4:19: unknown key 'kk' in a neurn front (did you mean k?); allowed keys: kind, label, eps, k");
  CHECK_THROWS_CONTAINING(parse_config(with("  - {kind: neurn, k: 4}\n"), "e.yaml"), "e.yaml:4:5: ");
  CHECK_THROWS_CONTAINING(parse_config(with("  - {kind: neurn, k: 4}\n"), "e.yaml"), "odd");
  CHECK_THROWS_CONTAINING(parse_config(with("  - {kind: lcn, kernel_size: 4}\n"), "e.yaml"),
                          "lcn: kernel_size must be odd and >= 1, got 4");
  CHECK_THROWS_CONTAINING(parse_config(with("  - {kind: lrn, alpha: big}\n"), "e.yaml"),
                          "lrn: alpha expects a finite number, got 'big'");
  CHECK_THROWS_CONTAINING(parse_config(with("  - {k: 5}\n"), "e.yaml"), "e.yaml:4:5: a front entry needs 'kind'");
  CHECK_THROWS_CONTAINING(parse_config(with("  - neurn\n  - {kind: neurn, k: 3}\n"), "e.yaml"),
                          "e.yaml:5:5: this front is the same run as the one at e.yaml:4:5");
  CHECK_THROWS_CONTAINING(parse_config(with("  - {kind: neurn, k: 5, label: x}\n  - {kind: lrn, label: x}\n"), "e.yaml"),
                          "have the same label 'x'");
  CHECK_THROWS_CONTAINING(parse_config(with("  - {kind: none, label: plain}\n"), "e.yaml"),
                          "a run without a front has no label");
  CHECK_THROWS_CONTAINING(parse_config(with("  - {kind: lrn, label: a/b}\n"), "e.yaml"),
                          "label 'a/b' may only hold letters");
  CHECK_THROWS_CONTAINING(parse_config(with("  - none\nneurn: [true]\n"), "e.yaml"),
                          "e.yaml:5:8: neurn and fronts both say what goes in front of the model");
  CHECK_THROWS_CONTAINING(parse_config(with("  - {kind: neurn, k: [3, 5]}\n"), "e.yaml"), "neurn.k must be a scalar");
}

TEST_CASE("fronts: `neurn: [false, true]` with neurn_options is the same sweep as the fronts it stands for") {
  ExperimentConfig legacy = parse_config(
      "models: [digits_convnet]\nsources: [mnist]\nneurn: [false, true]\nneurn_options: {k: 5}\n", "l.yaml");
  ExperimentConfig fronts = parse_config(
      "models: [digits_convnet]\nsources: [mnist]\nfronts: [none, {kind: neurn, k: 5, label: neurn}]\n", "n.yaml");
  auto a = expand_grid(legacy), b = expand_grid(fronts);
  REQUIRE(a.size() == 2);
  REQUIRE(b.size() == 2);
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].run_id() == b[i].run_id());
    CHECK(run_identity(legacy, a[i]).fingerprint == run_identity(fronts, b[i]).fingerprint);
  }
  // A RunSpec built by hand with neurn = true (as before fronts) is the same run too.
  RunSpec hand{legacy.models[0], true, "mnist", 0};
  CHECK(hand.run_id() == "digits_convnet+neurn/mnist/seed0");
  CHECK(run_identity(legacy, hand).fingerprint == run_identity(legacy, a[1]).fingerprint);

  // Other fronts are other runs of the same variant.
  ExperimentConfig c = parse_config(kFronts, "f.yaml");
  std::set<std::string> fps, variants;
  for (auto& r : expand_grid(c)) {
    RunIdentity id = run_identity(c, r);
    fps.insert(id.fingerprint);
    variants.insert(id.variant_fingerprint);
  }
  CHECK(fps.size() == 7);
  CHECK(variants.size() == 1);
  // The front's settings say what it is; the label only names it.
  RunIdentity lrn = run_identity(c, expand_grid(c)[5]);
  CHECK(lrn.settings.at("front").at("kind") == "lrn");
  CHECK(lrn.settings.at("front").at("options").at("beta") == doctest::Approx(0.75));
  CHECK(lrn.settings.at("neurn") == false);
}

TEST_CASE("fronts: each kind builds its layer in front of the model; the shape is kept") {
  ExperimentConfig c = parse_config(kFronts, "f.yaml");
  Generator gen(3);
  Tensor x = rand({2, 3, 32, 32}, {}, &gen);
  for (const FrontSpec& f : c.fronts) {
    ModulePtr layer = make_front_layer(f, 3);
    if (f.none()) {
      CHECK(layer == nullptr);
      continue;
    }
    REQUIRE(layer != nullptr);
    Tensor y = layer->forward(x);
    CHECK(y.shape() == x.shape());
    double mx = 0;
    for (float v : y.to_vector<float>()) {
      REQUIRE(std::isfinite(v));
      mx = std::max(mx, std::abs(static_cast<double>(v)));
    }
    CHECK_MESSAGE(mx > 0, f.label);
  }
  // The registry model with a front: its trace starts with the front's token.
  RunSpec lcn = expand_grid(c)[6];
  ModulePtr m = build_run_model(c, lcn, Device::cpu());
  REQUIRE(m != nullptr);
}

TEST_CASE("fronts: records carry the front; records before fronts read as NeuRN or none") {
  RunRecord r;
  r.run_id = "m+neurn_k5/mnist/seed0";
  r.model = "m";
  r.neurn = true;
  r.front = "neurn_k5";
  r.front_kind = "neurn";
  r.source = "mnist";
  RunRecord back = record_from_json(record_to_json(r));
  CHECK(back.front == "neurn_k5");
  CHECK(back.front_kind == "neurn");
  r.neurn = false;
  r.front = "lrn";
  r.front_kind = "lrn";
  back = record_from_json(record_to_json(r));
  CHECK(back.front == "lrn");
  CHECK_FALSE(back.neurn);

  nlohmann::json old = nlohmann::json::parse(record_to_json(r));
  old.erase("front");
  old["neurn"] = true;
  back = record_from_json(old.dump());
  CHECK(back.front == "neurn");
  CHECK(back.front_kind == "neurn");
  old["neurn"] = false;
  back = record_from_json(old.dump());
  CHECK(back.front.empty());
  CHECK(back.front_kind == "none");

  old["front"] = {{"kind", "lrn"}, {"label", "lrn"}};
  old["neurn"] = true;
  CHECK_THROWS_CONTAINING(record_from_json(old.dump()), "front kind 'lrn' disagrees with neurn: true");
}

TEST_CASE("fronts: a tiny sweep trains and records every kind of front") {
  register_front_models();
  fs::path dir = fresh_dir("fronts_sweep");
  testing::make_tiny_data_root(dir / "data", 120, 40, /*with_usps=*/true);
  std::string yaml = "name: fronts\noutput_dir: " + (dir / "out").string() + "\ndata_root: " + (dir / "data").string() +
                     "\nmodels: [fronts_linear]\nsources: [mnist]\ntargets: [usps]\n"
                     "fronts: [none, neurn, {kind: neurn, k: 5}, lrn, {kind: lcn, kernel_size: 3}]\n"
                     "seeds: [0]\nimage_size: 16\nprotocol: {train_images: 120, val_images: 20, test_images: 40}\n"
                     "batch_size: 25\nmax_epochs: 1\noptimizer: {lr: 0.01}\ndevice: cpu\nreport: false\n";
  ExperimentConfig cfg = parse_config(yaml, (dir / "fronts.yaml").string());
  std::ostringstream log;
  SweepOptions opt;
  opt.log = &log;
  SweepSummary s = run_sweep(cfg, opt);
  REQUIRE_MESSAGE(s.finished == 5, log.str());
  LoadedResults res = load_results(s.results_file);
  REQUIRE(res.records.size() == 5);
  std::vector<std::string> labels, kinds;
  std::set<std::string> fingerprints;
  for (auto& r : res.records) {
    labels.push_back(r.front);
    kinds.push_back(r.front_kind);
    fingerprints.insert(r.fingerprint);
    CHECK(r.status == "ok");
    CHECK(r.targets.count("usps") == 1);
  }
  CHECK(labels == std::vector<std::string>{"", "neurn", "neurn_k5", "lrn", "lcn_kernel_size-3"});
  CHECK(kinds == std::vector<std::string>{"none", "neurn", "neurn", "lrn", "lcn"});
  CHECK(fingerprints.size() == 5);
  // Resumed, nothing runs again.
  opt.resume = true;
  SweepSummary again = run_sweep(cfg, opt);
  CHECK(again.already_done == 5);
  CHECK(again.finished == 0);
  fs::remove_all(dir);
}

TEST_CASE("ablation_neurn.yaml: a dry run plans the 30 runs of the ablation") {
  ExperimentConfig cfg = load_config(std::string(NEURN_SOURCE_DIR) + "/experiments/configs/ablation_neurn.yaml");
  CHECK(cfg.protocol.train_images == 10000);
  CHECK(cfg.sources == std::vector<std::string>{"mnist"});
  CHECK(cfg.seeds.size() == 3);
  std::vector<std::string> labels;
  for (auto& f : cfg.fronts) labels.push_back(f.label);
  CHECK(labels == std::vector<std::string>{"", "neurn", "neurn_k5", "neurn_k7", "neurn_k11", "neurn_zero",
                                           "neurn_reflect", "neurn_channel", "lrn", "lcn"});
  // One factor at a time around NeuRN's defaults: each NeuRN front differs
  // from the default in one option.
  nlohmann::json def = resolved_front_options(cfg.fronts[1]);
  for (size_t i = 2; i < 8; ++i) {
    nlohmann::json o = resolved_front_options(cfg.fronts[i]);
    int changed = 0;
    for (auto& [k, v] : o.items()) changed += v != def[k];
    CHECK_MESSAGE(changed == 1, cfg.fronts[i].label);
  }

  fs::path dir = fresh_dir("ablation_dry");
  testing::make_tiny_data_root(dir / "data", 60, 20, /*with_usps=*/true);
  cfg.data_root = (dir / "data").string();
  cfg.output_dir = (dir / "out").string();
  std::ostringstream log;
  SweepOptions opt;
  opt.dry_run = true;
  opt.log = &log;
  run_sweep(cfg, opt);
  const std::string plan = log.str();
  CHECK(plan.find("30 runs in the grid, 30 selected") != std::string::npos);
  for (auto& l : labels)
    for (int seed = 0; seed < 3; ++seed) {
      std::string id = "digits_convnet" + (l.empty() ? "" : "+" + l) + "/mnist/seed" + std::to_string(seed);
      CHECK_MESSAGE(plan.find(id + "  -> ") != std::string::npos, id);
    }
  CHECK_FALSE(fs::exists(dir / "out" / "results.jsonl"));  // a dry run trains nothing
  fs::remove_all(dir);
}
