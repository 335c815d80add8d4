// Config loading: every error names the file, line and column and says what
// is allowed.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "experiments/config.h"
#include "gradcheck.h"

using namespace neurn::experiments;

namespace {

const char* kGood = R"(name: tiny
output_dir: /tmp/neurn-test-out
models:
  - digits_convnet
  - {name: resnet18, width: 0.5}
sources: [mnist, usps]
targets: [usps, mnistm, syn]
neurn: [false, true]
neurn_options: {kernel_size: 5}
seeds: [0, 1]
optimizer: {name: sgd, lr: 0.01, momentum: 0.8}
batch_size: 32
max_epochs: 3
early_stopping: {patience: 2}
protocol: {train_images: 1000, val_images: 100}
)";

}  // namespace

TEST_CASE("config: a valid file with defaults filled in") {
  ExperimentConfig c = parse_config(kGood, "good.yaml");
  CHECK(c.name == "tiny");
  REQUIRE(c.models.size() == 2);
  CHECK(c.models[1].name == "resnet18");
  CHECK(c.models[1].width == doctest::Approx(0.5));
  CHECK(c.sources == std::vector<std::string>{"mnist", "usps"});
  CHECK(targets_for(c, "usps") == std::vector<std::string>{"mnistm", "syn"});
  CHECK(c.neurn_options.at("kernel_size") == "5");
  CHECK(c.seeds == std::vector<uint64_t>{0, 1});
  CHECK(c.optimizer.name == "sgd");
  CHECK(c.optimizer.momentum == doctest::Approx(0.8));
  CHECK(c.early_stopping.patience == 2);
  CHECK(c.early_stopping.metric == "val_acc");
  CHECK(c.protocol.train_images == 1000);

  // Paper defaults: Adam, lr 0.001, batch 256, patience 5.
  ExperimentConfig d = parse_config("models: [digits_convnet]\nsources: [mnist]\n", "configs/minimal.yaml");
  CHECK(d.optimizer.name == "adam");
  CHECK(d.optimizer.lr == doctest::Approx(1e-3));
  CHECK(d.batch_size == 256);
  CHECK(d.early_stopping.patience == 5);
  CHECK(d.name == "minimal");
  CHECK(d.output_dir == "runs/minimal");
  CHECK(d.neurn == std::vector<bool>{false, true});
  CHECK(targets_for(d, "mnist") == std::vector<std::string>{"usps", "svhn", "mnistm", "syn"});

  // The YAML dump parses back to the same config.
  ExperimentConfig e = parse_config(config_to_yaml(c), "dump.yaml");
  CHECK(config_to_yaml(e) == config_to_yaml(c));
}

TEST_CASE("config: malformed YAML names line and column") {
  CHECK_THROWS_CONTAINING(parse_config("models: [digits_convnet\nsources: [mnist]\n", "bad.yaml"),
                          "bad.yaml:");
  CHECK_THROWS_CONTAINING(parse_config("models: [a\n", "bad.yaml"), "malformed YAML");
  CHECK_THROWS_CONTAINING(parse_config("models: x\n  sources: - y\n: :\n", "bad2.yaml"), "bad2.yaml:");
  CHECK_THROWS_CONTAINING(parse_config("", "empty.yaml"), "the config is empty");
}

TEST_CASE("config: unknown key with the close name and the allowed keys") {
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\nbatchsize: 3\n", "k.yaml"),
                          "k.yaml:3:1: unknown key 'batchsize' in the config (did you mean batch_size?)");
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\noptimizer: {name: adam, lrate: 1}\n", "k.yaml"),
                          "k.yaml:3:25: unknown key 'lrate' in optimizer");
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\noptimizer: {nme: adam}\n", "k.yaml"),
                          "allowed keys: name, lr, weight_decay");
}

TEST_CASE("config: wrong types") {
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\nbatch_size: big\n", "t.yaml"),
                          "t.yaml:3:13: batch_size must be an integer, got 'big'");
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\nbatch_size: \"64\"\n", "t.yaml"),
                          "batch_size must be an integer");
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\nbatch_size: 2.5\n", "t.yaml"),
                          "must be an integer, got '2.5'");
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\noptimizer: {lr: fast}\n", "t.yaml"),
                          "t.yaml:3:17: optimizer.lr must be a number, got 'fast'");
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\nneurn: [maybe]\n", "t.yaml"),
                          "t.yaml:3:9: each entry of neurn must be true or false, got 'maybe'");
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\nneurn: {k: 3}\n", "t.yaml"),
                          "t.yaml:3:8: neurn is the list of variants to run ([false, true], [true], ...); put the "
                          "layer's options (k, padding, max_scope, eps) under neurn_options");
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: {a: 1}\n", "t.yaml"),
                          "t.yaml:2:10: sources must be a list, got a mapping");
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\nearly_stopping: 5\n", "t.yaml"),
                          "early_stopping must be a mapping with keys metric, patience, min_delta, got '5'");
}

TEST_CASE("config: bad values") {
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\nbatch_size: 0\n", "v.yaml"),
                          "v.yaml:3:13: batch_size must be in [1, 1048576], got 0");
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\noptimizer: {name: adamw}\n", "v.yaml"),
                          "bad value 'adamw' for optimizer.name (did you mean adam?); allowed: adam, sgd");
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\ndevice: gpu\n", "v.yaml"),
                          "bad value 'gpu' for device; allowed: auto, cpu, cuda, cuda:N");
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\nseeds: [1, 1]\n", "v.yaml"),
                          "seed 1 is listed twice");
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\nprecision: bf16\ndevice: cpu\n", "v.yaml"),
                          "v.yaml:3:12: precision bf16 is not supported by the trainer yet");
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\noptimizer: {name: adam, momentum: 0.9}\n",
                                       "v.yaml"),
                          "optimizer.momentum applies to sgd only");
  CHECK_THROWS_CONTAINING(parse_config("sources: [mnist]\n", "v.yaml"), "missing key 'models'");
}

TEST_CASE("config: unknown domain lists the close names") {
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnsit]\n", "d.yaml"),
                          "d.yaml:2:11: unknown domain 'mnsit' in sources (did you mean mnist");
  CHECK_THROWS_CONTAINING(parse_config("models: [m]\nsources: [mnist]\ntargets: [mnist_m]\n", "d.yaml"),
                          "unknown domain 'mnist_m' in targets (did you mean mnistm or mnist?)");
}

TEST_CASE("config: availability of models and domains") {
  ExperimentConfig c = parse_config(
      "models: [digits_convnet, resnet_18]\nsources: [mnist]\ntargets: [usps, svhn]\n", "a.yaml");
  Availability av;
  av.registered_models = {"digits_convnet", "resnet18", "resnet34", "vgg16"};
  av.domain_status = {{"mnist", ""}, {"usps", ""}, {"svhn", "SVHN files not found under data/svhn"}};
  CHECK_THROWS_CONTAINING(check_availability(c, av), "a.yaml:1:26: unknown model 'resnet_18' (close names: resnet18");

  // A dry run reports instead of failing.
  AvailabilityReport rep = check_availability(c, av, /*dry_run=*/true);
  CHECK(rep.unavailable_models == std::vector<std::string>{"resnet_18"});
  CHECK(rep.skipped_targets.count("svhn") == 1);

  c.models.pop_back();
  CHECK_THROWS_CONTAINING(check_availability(c, av), "cannot test on target 'svhn': SVHN files not found");
  c.skip_missing_targets = true;
  rep = check_availability(c, av);
  CHECK(rep.skipped_targets.at("svhn").find("not found") != std::string::npos);

  // An unavailable source is an error even when missing targets are skipped.
  c.sources = {"svhn"};
  c.marks["sources"] = {"a.yaml", 2, 10};
  CHECK_THROWS_CONTAINING(check_availability(c, av), "a.yaml:2:10: cannot train on source 'svhn': SVHN files not found");
}

TEST_CASE("config: files that cannot be read") {
  CHECK_THROWS_CONTAINING(load_config("/nonexistent/x.yaml"), "cannot read config '/nonexistent/x.yaml': no such file");
  auto dir = std::filesystem::temp_directory_path() / "neurn_cfg_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "c.yaml") << "models: [m]\nsources: [mnist]\nmax_epochs: -1\n";
  CHECK_THROWS_CONTAINING(load_config((dir / "c.yaml").string()), "c.yaml:3:13: max_epochs must be in [1, 100000]");
  std::filesystem::remove_all(dir);
}

TEST_CASE("edit distance and close names") {
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(close_names("resnt18", {"resnet18", "resnet34", "vgg16"}).front() == "resnet18");
  CHECK(close_names("zzzzzz", {"resnet18", "vgg16"}).empty());
}
