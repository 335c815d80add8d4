// A run is what its config says: run ids name the variant (weights, width,
// arch), fingerprints hold every setting that changes the result, --resume
// names changed keys and --as-new keeps the old runs, nothing is overwritten
// without --resume, Table 1 groups by variant, and the input normalization of
// the weights is applied (a known pixel through each mode) and recorded.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "experiments/report.h"
#include "experiments/run_identity.h"
#include "experiments/sweep.h"
#include "framework/serialize/safetensors.h"
#include "gradcheck.h"
#include "layers/layers.h"
#include "models/registry.h"
#include "test_files.h"
#include "test_models.h"
#include "tiny_data.h"

using namespace neurn;
using namespace neurn::experiments;
using neurn::testing::fresh_dir;
using neurn::testing::slurp;
namespace fs = std::filesystem;

namespace {

void register_identity_models() {
  neurn::testing::register_linear_model("id_linear", "a linear classifier for the identity tests", /*has_width=*/true);
}

std::string tiny_yaml(const fs::path& dir, const std::string& models, const std::string& extra = "") {
  return "name: ident\noutput_dir: " + (dir / "out").string() + "\ndata_root: " + (dir / "data").string() +
         "\nmodels: " + models +
         "\nsources: [mnist]\ntargets: [usps]\nneurn: [false]\nseeds: [0]\nimage_size: 8\n"
         "protocol: {train_images: 100, val_images: 20, test_images: 30}\n"
         "batch_size: 32\nmax_epochs: 1\noptimizer: {lr: 0.01}\ndevice: cpu\nreport: false\n" +
         extra;
}

std::vector<std::string> ids(const ExperimentConfig& cfg) {
  std::vector<std::string> out;
  for (auto& r : expand_grid(cfg)) out.push_back(r.run_id());
  return out;
}

// Saves id_linear's state (8x8x3 inputs) with every value `v`.
void write_weights(const fs::path& p, float v) {
  fs::create_directories(p.parent_path());
  save_safetensors(p.string(), {{"1.weight", full({10, 3 * 8 * 8}, v)}, {"1.bias", full({10}, v)}});
}

}  // namespace

TEST_CASE("config: arch, label, normalize and weights {path, format}; errors name the key and line") {
  ExperimentConfig c = parse_config(
      "models:\n"
      "  - {name: spos, arch: runs/search/arch.json}\n"
      "  - {name: resnet50, weights: {path: w/resnet50_imagenet.safetensors, format: torchvision}}\n"
      "  - {name: resnet50v2, weights: w/resnet50v2.h5}\n"
      "  - {name: vgg19, weights: {path: w/vgg19.h5, format: keras}, normalize: none, label: vgg19_keras}\n"
      "sources: [mnist]\n",
      "a.yaml");
  REQUIRE(c.models.size() == 4);
  CHECK(c.models[0].arch == "runs/search/arch.json");
  CHECK(c.models[0].variant() == "spos@arch");
  CHECK(c.models[1].weights_format == "torchvision");
  CHECK(c.models[1].variant() == "resnet50@resnet50_imagenet");
  CHECK(c.models[2].weights_format == "keras");  // .h5: Keras Applications' files
  CHECK(c.models[3].variant() == "vgg19_keras");
  // The effective normalization follows from the weights, unless overridden.
  CHECK(effective_normalization(c, c.models[0]) == "none");
  CHECK(effective_normalization(c, c.models[1]) == "imagenet");
  CHECK(effective_normalization(c, c.models[2]) == "tf");
  CHECK(effective_normalization(c, c.models[3]) == "none");
  ModelSpec k{"vgg19", "w/vgg19.h5", "keras"};
  CHECK(effective_normalization(c, k) == "caffe");
  k.name = "densenet121";
  CHECK(effective_normalization(c, k) == "imagenet");  // Keras's torch mode
  k.weights_format = "neurn";
  CHECK(effective_normalization(c, k) == "none");
  c.normalize = "tf";  // the config's normalize: for every entry without its own
  CHECK(effective_normalization(c, c.models[1]) == "tf");
  CHECK(effective_normalization(c, c.models[3]) == "none");
  // The dump parses back to the same entries.
  ExperimentConfig d = parse_config(config_to_yaml(c), "dump.yaml");
  CHECK(config_to_yaml(d) == config_to_yaml(c));
  REQUIRE(d.models.size() == 4);
  CHECK(d.models[1].weights_format == "torchvision");
  CHECK(d.models[0].arch == c.models[0].arch);

  CHECK_THROWS_CONTAINING(parse_config("models:\n  - {name: a, weights: w.safetensors}\nsources: [mnist]\n", "b.yaml"),
                          "b.yaml:2:24: weights: say where w.safetensors comes from: weights: {path: w.safetensors, "
                          "format: torchvision | keras | neurn}");
  CHECK_THROWS_CONTAINING(
      parse_config("models:\n  - {name: a, weights: {path: w.pt, format: timm}}\nsources: [mnist]\n", "b.yaml"),
      "b.yaml:2:45: bad value 'timm' for weights.format");
  CHECK_THROWS_CONTAINING(
      parse_config("models:\n  - {name: a, normalize: bgr}\nsources: [mnist]\n", "b.yaml"),
      "b.yaml:2:26: bad value 'bgr' for normalize");
  CHECK_THROWS_CONTAINING(parse_config("models:\n  - {name: mymodel, weights: m.h5}\nsources: [mnist]\n", "b.yaml"),
                          "b.yaml:2:30: no Keras Applications preprocessing is known for model 'mymodel'");
  CHECK_THROWS_CONTAINING(
      parse_config("models:\n  - {name: a, weights: {path: x/w.safetensors, format: neurn}}\n"
                   "  - {name: a, weights: {path: y/w.safetensors, format: neurn}}\nsources: [mnist]\n",
                   "b.yaml"),
      "b.yaml:3:5: this model entry and the one at b.yaml:2:5 would have the same run id 'a@w'; give one of them a "
      "distinct label:");
  CHECK_THROWS_CONTAINING(parse_config("models: [a, {name: a}]\nsources: [mnist]\n", "b.yaml"),
                          "model 'a' is listed twice (first at b.yaml:1:10)");
  CHECK_THROWS_CONTAINING(parse_config("models: [{name: a, label: a/b}]\nsources: [mnist]\n", "b.yaml"),
                          "label 'a/b' may hold letters, digits and _ - . @ only");
}

TEST_CASE("run ids: two weights files, two widths, two archs of one model are distinct runs") {
  ExperimentConfig c = parse_config(
      "models:\n"
      "  - {name: m, weights: {path: w/imagenet.safetensors, format: torchvision}}\n"
      "  - {name: m, weights: {path: w/other.safetensors, format: torchvision}}\n"
      "  - m\n"
      "  - {name: m, width: 0.5}\n"
      "  - {name: m, width: 2}\n"
      "  - {name: s, arch: a.json}\n"
      "  - {name: s, arch: b.json}\n"
      "sources: [mnist]\nneurn: [false]\n",
      "ids.yaml");
  CHECK(ids(c) == std::vector<std::string>{"m@imagenet/mnist/seed0", "m@other/mnist/seed0", "m/mnist/seed0",
                                           "m@w0.5/mnist/seed0", "m@w2/mnist/seed0", "s@a/mnist/seed0",
                                           "s@b/mnist/seed0"});
}

TEST_CASE("fingerprint: the weights' content, not their path; defaults filled in; each result-changing key") {
  register_identity_models();
  fs::path dir = fresh_dir("fingerprint");
  write_weights(dir / "a" / "w.safetensors", 0.25f);
  write_weights(dir / "b" / "w.safetensors", 0.25f);  // the same content elsewhere
  ExperimentConfig cfg = parse_config(tiny_yaml(dir, "[id_linear]"), "f.yaml");
  RunSpec spec{cfg.models[0], true, "mnist", 0};
  RunIdentity base = run_identity(cfg, spec);
  CHECK(base.fingerprint.size() == 64);
  CHECK(base.folder == "id_linear+neurn_mnist_seed0-" + base.fingerprint.substr(0, 8));
  CHECK(base.settings.at("model").at("normalize") == "none");
  CHECK(base.settings.at("neurn_options").at("k") == 3);  // the layer's default, written out
  CHECK(base.fingerprint == settings_fingerprint(base.settings));

  // Written-out defaults are the same run.
  ExperimentConfig same = cfg;
  same.neurn_options = {{"k", "3"}};
  CHECK(run_identity(same, spec).fingerprint == base.fingerprint);

  // Weights: same content at another path -> same fingerprint; other content
  // at the same path -> another.
  RunSpec wa = spec, wb = spec;
  wa.model.weights = (dir / "a" / "w.safetensors").string();
  wb.model.weights = (dir / "b" / "w.safetensors").string();
  wa.model.weights_format = wb.model.weights_format = "neurn";
  RunIdentity ia = run_identity(cfg, wa);
  CHECK(ia.fingerprint == run_identity(cfg, wb).fingerprint);
  CHECK(ia.fingerprint != base.fingerprint);
  write_weights(dir / "a" / "w.safetensors", 0.5f);
  fs::last_write_time(dir / "a" / "w.safetensors",
                      fs::last_write_time(dir / "a" / "w.safetensors") + std::chrono::seconds(2));
  RunIdentity ia2 = run_identity(cfg, wa);
  CHECK(ia2.run_id == ia.run_id);
  CHECK(ia2.fingerprint != ia.fingerprint);
  CHECK(ia2.folder != ia.folder);
  auto changed = changed_settings(ia.settings, ia2.settings);
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].rfind("model.weights.sha256: \"", 0) == 0);

  // Each of these changes the result, and the fingerprint names the key.
  auto changed_key = [&](ExperimentConfig c2, RunSpec s2) {
    auto d = changed_settings(base.settings, run_identity(c2, s2).settings);
    return d.size() == 1 ? d[0].substr(0, d[0].find(':')) : std::string("(" + std::to_string(d.size()) + " keys)");
  };
  ExperimentConfig c2 = cfg;
  c2.optimizer.lr = 0.02;
  CHECK(changed_key(c2, spec) == "optimizer.lr");
  c2 = cfg;
  c2.max_epochs = 7;
  CHECK(changed_key(c2, spec) == "max_epochs");
  c2 = cfg;
  c2.image_size = 16;
  CHECK(changed_key(c2, spec) == "image_size");
  c2 = cfg;
  c2.protocol.train_images = 50;
  CHECK(changed_key(c2, spec) == "protocol.train_images");
  c2 = cfg;
  c2.neurn_options = {{"k", "5"}};
  CHECK(changed_key(c2, spec) == "neurn_options.k");
  c2 = cfg;
  c2.normalize = "tf";
  CHECK(changed_key(c2, spec) == "model.normalize");
  RunSpec s2 = spec;
  s2.seed = 1;
  CHECK(changed_key(cfg, s2) == "seed");
  s2 = spec;
  s2.model.width = 0.5;
  CHECK(changed_key(cfg, s2) == "model.width");
  s2 = spec;
  s2.model.arch = "x";
  CHECK(changed_key(cfg, s2) == "model.arch");
  // The variant fingerprint leaves out source, seed and NeuRN: one Table 1 row pair.
  s2 = spec;
  s2.seed = 4;
  s2.neurn = false;
  CHECK(run_identity(cfg, s2).variant_fingerprint == base.variant_fingerprint);
  fs::remove_all(dir);
}

TEST_CASE("sweep: two weights files and two widths of one model are two runs each, recorded apart") {
  register_identity_models();
  fs::path dir = fresh_dir("two_variants");
  testing::make_tiny_data_root(dir / "data", 100, 30);
  write_weights(dir / "w" / "zeros.safetensors", 0.f);
  write_weights(dir / "w" / "small.safetensors", 0.01f);
  std::string w = (dir / "w").string();
  ExperimentConfig cfg = parse_config(
      tiny_yaml(dir, "[{name: id_linear, weights: {path: " + w + "/zeros.safetensors, format: neurn}}, "
                     "{name: id_linear, weights: {path: " + w + "/small.safetensors, format: neurn}}, "
                     "id_linear, {name: id_linear, width: 2}]"),
      "two.yaml");
  std::ostringstream log;
  SweepOptions opt;
  opt.log = &log;
  SweepSummary s = run_sweep(cfg, opt);
  REQUIRE_MESSAGE(s.finished == 4, log.str());
  LoadedResults res = load_results_dir(cfg.output_dir);
  CHECK(res.warnings.empty());
  REQUIRE(res.records.size() == 4);
  CHECK(res.records[0].run_id == "id_linear@zeros/mnist/seed0");
  CHECK(res.records[1].run_id == "id_linear@small/mnist/seed0");
  CHECK(res.records[2].run_id == "id_linear/mnist/seed0");
  CHECK(res.records[3].run_id == "id_linear@w2/mnist/seed0");
  std::set<std::string> fps, folders;
  for (auto& r : res.records) fps.insert(r.fingerprint);
  for (auto& e : fs::directory_iterator(dir / "out" / "runs")) folders.insert(e.path().filename().string());
  CHECK(fps.size() == 4);
  CHECK(folders.size() == 4);
  // Each folder says what it holds.
  for (auto& f : folders) {
    auto j = nlohmann::json::parse(slurp(dir / "out" / "runs" / f / "run.json"));
    std::string id = j.at("run_id").get<std::string>();
    for (char& ch : id)
      if (ch == '/') ch = '_';
    CHECK(f.rfind(id + "-", 0) == 0);
    CHECK(f.substr(f.size() - 8) == j.at("fingerprint").get<std::string>().substr(0, 8));
  }
  // Table 1: four variants, four rows.
  Table1 t = build_table1(res.records);
  CHECK(t.models == std::vector<std::string>{"id_linear@zeros", "id_linear@small", "id_linear", "id_linear@w2"});
  CHECK(t.rows.size() == 4);
  fs::remove_all(dir);
}

TEST_CASE("sweep: --resume with a changed key names it and runs nothing; --as-new runs it beside the old one") {
  register_identity_models();
  fs::path dir = fresh_dir("changed");
  testing::make_tiny_data_root(dir / "data", 100, 30);
  ExperimentConfig cfg = parse_config(tiny_yaml(dir, "[id_linear]"), "c.yaml");
  std::ostringstream log;
  SweepOptions opt;
  opt.log = &log;
  REQUIRE_MESSAGE(run_sweep(cfg, opt).finished == 1, log.str());
  std::string before = slurp(dir / "out" / "results.jsonl");

  ExperimentConfig changed = cfg;
  changed.optimizer.lr = 0.02;
  opt.resume = true;
  CHECK_THROWS_CONTAINING(run_sweep(changed, opt),
                          "--resume: the settings of 1 runs differ from what " + cfg.output_dir +
                              " holds for them (changed keys: old -> new):\n  id_linear/mnist/seed0:\n      "
                              "optimizer.lr: 0.01 -> 0.02 (recorded)");
  CHECK_THROWS_CONTAINING(run_sweep(changed, opt), "pass --as-new to start the changed runs as new runs");
  CHECK(slurp(dir / "out" / "results.jsonl") == before);  // nothing ran
  // The dry run says the same per run.
  opt.dry_run = true;
  run_sweep(changed, opt);
  CHECK(log.str().find("id_linear/mnist/seed0  -> usps  [settings changed (needs --as-new): optimizer.lr: 0.01 -> "
                       "0.02 (recorded)]") != std::string::npos);
  opt.dry_run = false;

  // The unchanged config resumes as before: nothing to do.
  SweepSummary same = run_sweep(cfg, opt);
  CHECK(same.already_done == 1);
  CHECK(same.finished == 0);

  opt.as_new = true;
  SweepSummary s = run_sweep(changed, opt);
  CHECK(s.finished == 1);
  CHECK(s.started_as_new == 1);
  CHECK(log.str().find("id_linear/mnist/seed0: settings changed, started as a new run in runs/id_linear_mnist_seed0-") !=
        std::string::npos);
  std::string after = slurp(dir / "out" / "results.jsonl");
  CHECK(after.substr(0, before.size()) == before);  // the old record is untouched
  LoadedResults res = load_results_dir(cfg.output_dir);
  CHECK(res.warnings.empty());
  REQUIRE(res.records.size() == 2);
  CHECK(res.records[0].run_id == res.records[1].run_id);
  CHECK(res.records[0].fingerprint != res.records[1].fingerprint);
  int folders = 0;
  for (auto& e : fs::directory_iterator(dir / "out" / "runs")) folders += e.is_directory();
  CHECK(folders == 2);
  // Table 1 keeps the two settings apart, labelled by their fingerprints.
  Table1 t = build_table1(res.records);
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0].variant == "id_linear [" + res.records[0].variant_fingerprint.substr(0, 6) + "]");
  CHECK(t.rows[1].variant == "id_linear [" + res.records[1].variant_fingerprint.substr(0, 6) + "]");
  CHECK(t.rows[0].cells[0]->seeds == 1);
  // Now both settings are recorded: either config resumes with nothing to do.
  opt.as_new = false;
  CHECK(run_sweep(changed, opt).already_done == 1);
  CHECK(run_sweep(cfg, opt).already_done == 1);
  fs::remove_all(dir);
}

TEST_CASE("sweep: without --resume an existing run folder is never overwritten") {
  register_identity_models();
  fs::path dir = fresh_dir("no_overwrite");
  testing::make_tiny_data_root(dir / "data", 100, 30);
  ExperimentConfig cfg = parse_config(tiny_yaml(dir, "[id_linear]"), "o.yaml");
  RunIdentity id = run_identity(cfg, expand_grid(cfg)[0]);
  // A run that was started and stopped before it was recorded.
  fs::path folder = dir / "out" / "runs" / id.folder;
  fs::create_directories(folder);
  std::ofstream(folder / "notes.txt") << "keep me";
  std::ostringstream log;
  SweepOptions opt;
  opt.log = &log;
  CHECK_THROWS_CONTAINING(run_sweep(cfg, opt), cfg.output_dir + " already holds 0 finished runs: pass --resume");
  CHECK_THROWS_CONTAINING(run_sweep(cfg, opt), "Nothing was overwritten. There: 0 records and 1 run folders");
  CHECK(slurp(folder / "notes.txt") == "keep me");
  CHECK_FALSE(fs::exists(dir / "out" / "results.jsonl"));
  opt.resume = true;
  REQUIRE(run_sweep(cfg, opt).finished == 1);
  CHECK(fs::exists(folder / "run.json"));
  fs::remove_all(dir);
}

TEST_CASE("report: Table 1 groups by variant; seeds of one variant averaged with their spread") {
  auto rec = [](const std::string& variant, const std::string& vfp, bool neurn, uint64_t seed, double acc) {
    RunRecord r;
    r.model = "m";
    r.variant = variant;
    r.variant_fingerprint = vfp;
    r.fingerprint = vfp + (neurn ? "n" : "") + std::to_string(seed);
    r.neurn = neurn;
    r.source = "mnist";
    r.seed = seed;
    r.run_id = variant + (neurn ? "+neurn" : "") + "/mnist/seed" + std::to_string(seed);
    r.targets["usps"] = {"usps", 10, acc, {}, {}};
    return r;
  };
  // Pretrained and scratch runs of one model: never averaged together.
  std::vector<RunRecord> rs{rec("m@imagenet", "p", false, 0, 0.80), rec("m@imagenet", "p", false, 1, 0.90),
                            rec("m", "s", false, 0, 0.40),          rec("m", "s", false, 1, 0.50),
                            rec("m@imagenet", "p", true, 0, 0.95),  rec("m", "s", true, 0, 0.30)};
  Table1 t = build_table1(rs);
  CHECK(t.models == std::vector<std::string>{"m@imagenet", "m"});
  REQUIRE(t.rows.size() == 4);
  CHECK(t.rows[0].variant == "m@imagenet");
  CHECK_FALSE(t.rows[0].neurn);
  CHECK(t.rows[0].cells[0]->mean == doctest::Approx(85.0));
  CHECK(t.rows[0].cells[0]->std == doctest::Approx(std::sqrt(50.0)));
  CHECK(t.rows[0].cells[0]->seeds == 2);
  CHECK(t.rows[1].variant == "m@imagenet");
  CHECK(t.rows[1].neurn);
  CHECK(t.rows[1].improved_count == 1);  // 95 against the pretrained 85, not against the scratch runs
  CHECK(t.rows[2].variant == "m");
  CHECK(t.rows[2].cells[0]->mean == doctest::Approx(45.0));
  CHECK(t.rows[3].improved_count == 0);  // 30 against 45
  std::string md = table1_markdown(t);
  CHECK(md.find("| m@imagenet | 85.0 ± 7.1 |") != std::string::npos);
  CHECK(md.find("| m | 45.0 ± 7.1 |") != std::string::npos);
  CHECK(md.find("| m@imagenet + NeuRN | **95.0** | 1 of 1 |") != std::string::npos);
  // The functional similarity compares variants too.
  auto sim = functional_similarity(t);
  REQUIRE(sim);
  CHECK(sim->models == std::vector<std::string>{"m@imagenet", "m"});

  // Records from before fingerprints: the variant is the model part of the run id.
  RunRecord old = rec("", "", false, 0, 0.5);
  old.run_id = "m@w0.5+neurn/mnist/seed0";
  CHECK(record_variant(old) == "m@w0.5");
}

TEST_CASE("normalization: a known pixel through each mode, as the trainer hands it to the model") {
  // One 2x2 RGB image, every pixel (255, 128, 0).
  std::vector<uint8_t> px;
  for (uint8_t v : {255, 128, 0})
    for (int i = 0; i < 4; ++i) px.push_back(v);
  data::Dataset ds("probe", "test", 3, 2, 2, px, {0});
  ExperimentConfig cfg = parse_config("models: [m]\nsources: [mnist]\n", "n.yaml");
  auto through = [&](const std::string& mode) {
    data::InputNormalization n = data::input_normalization(mode);
    data::DataLoader loader(ds, run_loader_options(cfg, 1, false, 0, 2, Device::cpu(), n));
    std::vector<float> out;
    for (const data::Batch& b : loader) out = model_input(b.images, n).to_vector<float>();
    REQUIRE(out.size() == 12);
    return std::vector<double>{out[0], out[4], out[8]};  // channel 0, 1, 2 of pixel (0, 0)
  };
  auto check = [](const std::vector<double>& got, const std::vector<double>& want) {
    for (size_t c = 0; c < 3; ++c) CHECK(got[c] == doctest::Approx(want[c]).epsilon(1e-5));
  };
  check(through("none"), {1.0, 128.0 / 255.0, 0.0});
  // (x / 255 - mean) / std: (1 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224, -0.406 / 0.225
  check(through("imagenet"), {2.2489083, 0.2051821, -1.8044444});
  check(through("torch"), {2.2489083, 0.2051821, -1.8044444});
  // x / 127.5 - 1
  check(through("tf"), {1.0, 0.0039216, -1.0});
  // BGR, x - (103.939, 116.779, 123.68): B 0 - 103.939, G 128 - 116.779, R 255 - 123.68
  check(through("caffe"), {-103.939, 11.221, 131.32});
  CHECK_THROWS_CONTAINING(data::input_normalization("bgr"), "unknown input normalization 'bgr'; allowed: none, imagenet");
}

TEST_CASE("normalization: applied by the trainer and recorded in the record, the checkpoint and run.json") {
  register_identity_models();
  fs::path dir = fresh_dir("norm_record");
  testing::make_tiny_data_root(dir / "data", 100, 30);
  ExperimentConfig cfg = parse_config(tiny_yaml(dir, "[{name: id_linear, normalize: caffe}]"), "r.yaml");
  std::ostringstream log;
  TrainOptions o{(dir / "r").string(), false, &log, {}, (dir / "data").string()};
  RunSpec spec = expand_grid(cfg)[0];
  RunRecord r = train_run(cfg, spec, o);
  CHECK(r.normalize == "caffe");
  CHECK(log.str().find("8x8 BGR") != std::string::npos);
  CHECK(log.str().find("input caffe: BGR, x - (103.939, 116.779, 123.68) in 0-255") != std::string::npos);
  RunRecord back = record_from_json(record_to_json(r));
  CHECK(back.normalize == "caffe");
  CHECK(back.fingerprint == r.fingerprint);
  CHECK(nlohmann::json::parse(back.settings_json).at("model").at("normalize") == "caffe");
  CHECK(nlohmann::json::parse(slurp(dir / "r" / "run.json")).at("fingerprint") == r.fingerprint);
  CHECK(nlohmann::json::parse(slurp(dir / "r" / "best.json")).at("normalize") == "caffe");
  // The same run in [0, 1] trains on other inputs: another fingerprint, other numbers.
  ExperimentConfig plain = parse_config(tiny_yaml(dir, "[id_linear]"), "r.yaml");
  TrainOptions o2{(dir / "r2").string(), false, &log, {}, (dir / "data").string()};
  RunRecord p = train_run(plain, expand_grid(plain)[0], o2);
  CHECK(p.normalize == "none");
  CHECK(p.fingerprint != r.fingerprint);
  CHECK(p.history[0].train_loss != r.history[0].train_loss);
  fs::remove_all(dir);
}

TEST_CASE("trainer: a checkpoint written with other settings is not continued") {
  register_identity_models();
  fs::path dir = fresh_dir("ckpt_settings");
  testing::make_tiny_data_root(dir / "data", 100, 30);
  ExperimentConfig cfg = parse_config(tiny_yaml(dir, "[id_linear]"), "k.yaml");
  std::ostringstream log;
  TrainOptions o{(dir / "r").string(), false, &log, {}, (dir / "data").string()};
  RunSpec spec = expand_grid(cfg)[0];
  train_run(cfg, spec, o);
  ExperimentConfig other = cfg;
  other.optimizer.lr = 0.5;
  o.resume = true;
  CHECK_THROWS_CONTAINING(train_run(other, spec, o), "was written with other settings than id_linear/mnist/seed0 has "
                                                      "now:\n    optimizer.lr: 0.01 -> 0.5");
  // A larger max_epochs continues it (the state after an epoch does not depend on it).
  ExperimentConfig longer = cfg;
  longer.max_epochs = 2;
  RunRecord r = train_run(longer, spec, o);
  CHECK(log.str().find("resuming id_linear/mnist/seed0 after epoch 1") != std::string::npos);
  CHECK(r.epochs_run == 2);
  fs::remove_all(dir);
}

TEST_CASE("table1.yaml: the paper's twelve backbones, SPOS and AutoFormer; --dry-run lists what is missing") {
  ExperimentConfig cfg = load_config(std::string(NEURN_SOURCE_DIR) + "/experiments/configs/table1.yaml");
  std::vector<std::string> names;
  for (auto& m : cfg.models) names.push_back(m.name);
  CHECK(names == std::vector<std::string>{"vgg19", "resnet50", "resnet50v2", "densenet121", "mobilenet",
                                          "mobilenet_v2", "xception", "inceptionv3", "efficientnet_b0",
                                          "nasnetmobile", "shufflenet", "vit_b_16", "spos", "autoformer"});
  int pretrained = 0;
  for (auto& m : cfg.models) {
    if (m.weights.empty()) continue;
    ++pretrained;
    CHECK_MESSAGE(m.weights.rfind("weights/", 0) == 0, m.weights);
    CHECK(effective_normalization(cfg, m) != "none");
  }
  CHECK(pretrained == 11);  // all but ShuffleNet v1 (no published ImageNet weights) and the NAS models
  CHECK(effective_normalization(cfg, cfg.models[2]) == "tf");        // Keras ResNet50V2
  CHECK(effective_normalization(cfg, cfg.models[0]) == "imagenet");  // torchvision VGG19

  // A dry run from an empty folder: every missing weights file and every
  // model this build lacks is listed, no run is dropped from the plan.
  fs::path dir = fresh_dir("table1_dry");
  cfg.data_root = (dir / "data").string();
  cfg.output_dir = (dir / "out").string();
  struct InDir {  // the weights paths are relative to the working directory
    fs::path back = fs::current_path();
    explicit InDir(const fs::path& d) { fs::current_path(d); }
    ~InDir() { fs::current_path(back); }
  };
  std::ostringstream log;
  SweepOptions opt;
  opt.dry_run = true;
  opt.log = &log;
  SweepSummary s;
  {
    InDir in(dir);
    s = run_sweep(cfg, opt);
  }
  std::string out = log.str();
  CHECK(s.planned == 336);
  for (auto& m : cfg.models) {
    if (!has_model(m.name)) {
      CHECK_MESSAGE(out.find("unavailable model: " + m.name + " (not registered in this build)") != std::string::npos,
                    m.name);
    } else if (!m.weights.empty()) {
      CHECK_MESSAGE(out.find("missing weights: " + m.variant() + ": " + m.weights) != std::string::npos, m.name);
    }
  }
  size_t lines = 0;
  for (size_t p = out.find("/seed"); p != std::string::npos; p = out.find("/seed", p + 1)) ++lines;
  CHECK(lines == 336);
  fs::remove_all(dir);
}

TEST_CASE("sweep: a missing weights file is an error at its line, or a model named as skipped; never dropped silently") {
  register_identity_models();
  fs::path dir = fresh_dir("missing_weights");
  testing::make_tiny_data_root(dir / "data", 100, 30);
  std::string models = "[{name: id_linear, weights: {path: " + (dir / "nowhere.safetensors").string() +
                       ", format: torchvision}}, id_linear, not_a_model]";
  ExperimentConfig cfg = parse_config(tiny_yaml(dir, models, "skip_unavailable_models: false\n"), "m.yaml");
  std::ostringstream log;
  SweepOptions opt;
  opt.log = &log;
  CHECK_THROWS_CONTAINING(run_sweep(cfg, opt), "unknown model 'not_a_model'");
  cfg.skip_unavailable_models = true;
  cfg.models[0].marks["weights"] = {"m.yaml", 4, 30};
  SweepSummary s = run_sweep(cfg, opt);
  CHECK(s.finished == 1);  // id_linear from scratch
  CHECK(s.unavailable_models == std::vector<std::string>{"not_a_model"});
  REQUIRE(s.missing_weights.size() == 1);
  CHECK(s.missing_weights[0].rfind("id_linear@nowhere: " + (dir / "nowhere.safetensors").string() + " (torchvision, m.yaml:4:30)", 0) == 0);
  CHECK(log.str().find("model id_linear@nowhere: ") != std::string::npos);
  CHECK(log.str().find("skipped: weights file missing") != std::string::npos);
  CHECK(log.str().find("model not_a_model skipped: not registered in this build") != std::string::npos);
  // Without skip_unavailable_models the missing file is an error at its line.
  cfg.skip_unavailable_models = false;
  cfg.models.pop_back();
  CHECK_THROWS_CONTAINING(run_sweep(cfg, opt), "m.yaml:4:30: initial weights " + (dir / "nowhere.safetensors").string() +
                                                   " of id_linear@nowhere do not exist");
  fs::remove_all(dir);
}
