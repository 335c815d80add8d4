// Keras Applications weights (.h5) into the models defined after Keras: the
// test writes, with libhdf5, a weight file as Keras 2 lays it out (group
// LAYER, dataset LAYER/LAYER/WEIGHT:0) with Keras's layer and weight names,
// Keras's layouts (conv kernels (kh, kw, in, out), depthwise kernels (kh, kw,
// C, 1), dense kernels (in, out)) and random values, then loads it with
// models/keras_weights.h and checks every value at its converted place. The
// names the test writes come from the model's modules; a list of layer names
// and shapes published by Keras Applications (resnet_v2.py, mobilenet.py,
// xception.py) checks that they are Keras's.
#include <doctest/doctest.h>
#include <hdf5.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "experiments/checkpoint.h"
#include "framework/serialize/hdf5.h"
#include "framework/serialize/safetensors.h"
#include "gradcheck.h"
#include "layers/layers.h"
#include "models/keras_weights.h"
#include "models/registry.h"
#include "skip.h"

using namespace neurn;
namespace fs = std::filesystem;

namespace {

struct KerasWeight {
  std::string layer, weight;
  Shape shape;
  std::vector<float> values;  // Keras layout
};

bool is_depthwise(const std::string& module, const std::string& layer) {
  std::string last = module.substr(module.rfind('.') + 1);
  return last == "depthwise" || module.find("conv_dw_") != std::string::npos ||
         (layer.size() >= 6 && layer.compare(layer.size() - 6, 6, "dwconv") == 0);  // EfficientNet's blockNx_dwconv
}

// What Keras would store for each tensor of `model`, with random values;
// `values_out[neurn key]` receives the neurn-layout values to expect.
// `layers`, when given, names the Keras layer of each module with
// parameters, in the order the modules first appear among the parameters,
// instead of the module path.
std::vector<KerasWeight> keras_file_for(Module& model, std::map<std::string, std::vector<float>>& expect,
                                        const std::vector<std::string>& layers = {}) {
  Generator g(5);
  std::vector<KerasWeight> out;
  std::map<std::string, std::string> layer_of;  // module path -> the given Keras layer
  size_t index = 0;
  for (auto& [name, t] : model.named_parameters()) {
    std::string module = name.substr(0, name.rfind('.'));
    if (layers.empty() || layer_of.count(module)) continue;
    REQUIRE(index < layers.size());
    layer_of[module] = layers[index++];
  }
  if (!layers.empty()) CHECK(index == layers.size());
  for (auto& [name, t] : model.state_dict()) {
    size_t dot = name.rfind('.');
    std::string module = name.substr(0, dot), param = name.substr(dot + 1);
    if (param == "num_batches_tracked") continue;
    std::string last = module.substr(module.rfind('.') + 1), layer_path = module;
    bool sep = last == "depthwise" || last == "pointwise";
    if (sep) layer_path = module.substr(0, module.rfind('.'));
    std::string layer = layer_path;
    for (auto& c : layer) c = c == '.' ? '_' : c;
    if (!layers.empty()) {
      REQUIRE_MESSAGE(layer_of.count(module) == 1, name);
      layer = layer_of[module];
    }
    const Shape& s = t.shape();
    KerasWeight k{layer, "", {}, {}};
    int64_t n = t.numel();
    std::vector<float> neurn_vals(static_cast<size_t>(n));
    for (auto& v : neurn_vals) v = static_cast<float>(g.uniform() * 2 - 1);
    if (param == "running_var")
      for (auto& v : neurn_vals) v = std::abs(v) + 0.5f;
    k.values.resize(static_cast<size_t>(n));
    if (s.size() == 4) {  // (O, I, kh, kw)
      int64_t O = s[0], I = s[1], H = s[2], W = s[3];
      bool dw = is_depthwise(module, layer);
      k.weight = sep ? (last + "_kernel") : (dw ? "depthwise_kernel" : "kernel");
      k.shape = dw ? Shape{H, W, O, 1} : Shape{H, W, I, O};
      for (int64_t o = 0; o < O; ++o)
        for (int64_t i = 0; i < I; ++i)
          for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x) {
              float v = neurn_vals[static_cast<size_t>(((o * I + i) * H + y) * W + x)];
              if (dw)
                k.values[static_cast<size_t>((y * W + x) * O + o)] = v;
              else
                k.values[static_cast<size_t>(((y * W + x) * I + i) * O + o)] = v;
            }
    } else if (s.size() == 2) {  // Linear (O, I) -> Dense (I, O)
      int64_t O = s[0], I = s[1];
      k.weight = "kernel";
      k.shape = {I, O};
      for (int64_t o = 0; o < O; ++o)
        for (int64_t i = 0; i < I; ++i) k.values[static_cast<size_t>(i * O + o)] = neurn_vals[static_cast<size_t>(o * I + i)];
    } else {
      // A 1-d weight is a batch norm's gamma unless its module also has a
      // kernel (then it is a bias).
      bool has_kernel = false;
      for (auto& [n2, t2] : model.state_dict())
        if (n2 == module + ".weight" && t2.dim() > 1) has_kernel = true;
      if (param == "weight") k.weight = "gamma";
      if (param == "bias") k.weight = has_kernel ? "bias" : "beta";
      if (param == "running_mean") k.weight = "moving_mean";
      if (param == "running_var") k.weight = "moving_variance";
      k.shape = s;
      k.values = neurn_vals;
    }
    REQUIRE_MESSAGE(!k.weight.empty(), "no Keras weight for " << name);
    expect[name] = neurn_vals;
    out.push_back(std::move(k));
  }
  return out;
}

// Keras 2.0-2.2 counted auto-names from 1 (conv2d_1 for a fresh session's
// conv2d): the same file as Keras Applications' older downloads name it.
void count_auto_names_from_one(std::vector<KerasWeight>& ws, const std::string& base) {
  for (auto& w : ws) {
    if (w.layer == base) {
      w.layer = base + "_1";
    } else if (w.layer.rfind(base + "_", 0) == 0) {
      std::string suffix = w.layer.substr(base.size() + 1);
      if (!suffix.empty() && suffix.find_first_not_of("0123456789") == std::string::npos)
        w.layer = base + "_" + std::to_string(std::stoi(suffix) + 1);
    }
  }
}

void write_h5(const std::string& path, const std::vector<KerasWeight>& ws) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(f >= 0);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  for (const auto& w : ws) {
    std::vector<hsize_t> dims(w.shape.begin(), w.shape.end());
    hid_t space = dims.empty() ? H5Screate(H5S_SCALAR)  // Keras's Normalization count
                               : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    std::string p = w.layer + "/" + w.layer + "/" + w.weight + ":0";
    hid_t ds = H5Dcreate2(f, p.c_str(), H5T_IEEE_F32LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE_MESSAGE(ds >= 0, p);
    REQUIRE(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w.values.data()) >= 0);
    H5Dclose(ds);
    H5Sclose(space);
  }
  // A string dataset, as Keras files carry metadata: not a weight, ignored.
  hsize_t one = 1;
  hid_t sp = H5Screate_simple(1, &one, nullptr);
  hid_t st = H5Tcopy(H5T_C_S1);
  H5Tset_size(st, 8);
  hid_t ds = H5Dcreate2(f, "meta/backend", st, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, "tensorfl");
  H5Dclose(ds);
  H5Tclose(st);
  H5Sclose(sp);
  H5Pclose(lcpl);
  H5Fclose(f);
}

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

// (layer/weight, shape) pairs from Keras Applications, at 1000 classes.
using Published = std::vector<std::pair<std::string, Shape>>;

// Extra datasets a Keras file holds besides the network's weights.
struct Extra {
  std::string layer, weight;
  Shape shape;
};

// How the test writes the file: Keras layer names from the modules (the
// default) or given (`layers`), auto-names counted from 1, extra datasets.
struct FileStyle {
  std::vector<std::string> layers;
  bool auto_names_from_one = false;
  std::vector<Extra> extra;
};

void check_model(const std::string& name, const Published& published, const FileStyle& style = {}) {
  ModelOptions o;
  o.num_classes = 1000;
  o.input_size = std::max<int64_t>(32, model_info(name).min_input_size);
  ModulePtr model = build_model(name, o);
  std::map<std::string, std::vector<float>> expect;
  auto ws = keras_file_for(*model, expect, style.layers);
  if (style.auto_names_from_one) {
    count_auto_names_from_one(ws, "conv2d");
    count_auto_names_from_one(ws, "batch_normalization");
  }
  for (auto& e : style.extra) {
    std::vector<float> v(static_cast<size_t>(numel_of(e.shape)), 1.0f);
    ws.push_back(KerasWeight{e.layer, e.weight, e.shape, v});
  }
  std::map<std::string, Shape> written;
  for (auto& w : ws) written[w.layer + "/" + w.weight] = w.shape;
  for (auto& [k, s] : published) {
    INFO(name << ": Keras weight " << k);
    REQUIRE(written.count(k) == 1);
    CHECK(written[k] == s);
  }
  fs::path file = fs::temp_directory_path() / ("neurn_keras_" + name + "_" + std::to_string(::getpid()) + ".h5");
  write_h5(file.string(), ws);

  ModulePtr fresh = build_model(name, o);
  LoadReport rep = load_keras_weights(*fresh, file.string(), /*strict=*/true);
  CHECK_MESSAGE(rep.ok(), rep.str());
  int64_t checked = 0;
  for (auto& [k, t] : fresh->state_dict()) {
    if (!expect.count(k)) continue;
    INFO(name << ": " << k);
    CHECK(t.to_vector<float>() == expect[k]);
    ++checked;
  }
  CHECK(checked == static_cast<int64_t>(expect.size()));
  MESSAGE(name << ": " << checked << " tensors loaded from a Keras-layout file of " << ws.size() << " weights");

  // A 10-class model takes everything but the head (not strict), which stays.
  ModelOptions o10 = o;
  o10.num_classes = 10;
  ModulePtr ten = build_model(name, o10);
  LoadReport r10 = load_keras_weights(*ten, file.string(), /*strict=*/false);
  CHECK(r10.mismatched.size() >= 1);
  CHECK(r10.loaded.size() + r10.mismatched.size() >= expect.size());
  CHECK_THROWS_CONTAINING(load_keras_weights(*build_model(name, o10), file.string(), true), file.string());
  fs::remove(file);
}

}  // namespace

TEST_CASE("Keras weights: resnet50v2 from a Keras-layout .h5 (names, layouts, values)") {
  check_model("resnet50v2", {{"conv1_conv/kernel", {7, 7, 3, 64}},
                             {"conv1_conv/bias", {64}},
                             {"conv2_block1_preact_bn/gamma", {64}},
                             {"conv2_block1_preact_bn/moving_variance", {64}},
                             {"conv2_block1_0_conv/kernel", {1, 1, 64, 256}},
                             {"conv2_block1_1_conv/kernel", {1, 1, 64, 64}},
                             {"conv2_block1_2_conv/kernel", {3, 3, 64, 64}},
                             {"conv5_block3_3_conv/bias", {2048}},
                             {"post_bn/beta", {2048}},
                             {"predictions/kernel", {2048, 1000}},
                             {"predictions/bias", {1000}}});
}

TEST_CASE("Keras weights: mobilenet from a Keras-layout .h5 (depthwise kernels, conv_preds)") {
  check_model("mobilenet", {{"conv1/kernel", {3, 3, 3, 32}},
                            {"conv1_bn/moving_mean", {32}},
                            {"conv_dw_1/depthwise_kernel", {3, 3, 32, 1}},
                            {"conv_pw_1/kernel", {1, 1, 32, 64}},
                            {"conv_pw_13_bn/moving_variance", {1024}},
                            {"conv_preds/kernel", {1, 1, 1024, 1000}},
                            {"conv_preds/bias", {1000}}});
}

TEST_CASE("Keras weights: xception from a Keras-layout .h5 (separable convolutions)") {
  check_model("xception", {{"block1_conv1/kernel", {3, 3, 3, 32}},
                           {"block1_conv1_bn/gamma", {32}},
                           {"block2_sepconv1/depthwise_kernel", {3, 3, 64, 1}},
                           {"block2_sepconv1/pointwise_kernel", {1, 1, 64, 128}},
                           {"block14_sepconv2_bn/beta", {2048}},
                           {"predictions/kernel", {2048, 1000}}});
}

TEST_CASE("read_hdf5_datasets: missing and non-HDF5 files are errors naming them") {
  CHECK_THROWS_CONTAINING(read_hdf5_datasets("/nonexistent/w.h5"), "/nonexistent/w.h5 does not exist");
  fs::path f = fs::temp_directory_path() / ("neurn_not_h5_" + std::to_string(::getpid()) + ".h5");
  { std::ofstream(f) << "not hdf5"; }
  CHECK_THROWS_CONTAINING(read_hdf5_datasets(f.string()), "is not an HDF5 file");
  fs::remove(f);
}

TEST_CASE("Keras weights: nasnetmobile from a Keras-layout .h5") {
  check_model("nasnetmobile", {{"stem_conv1/kernel", {3, 3, 3, 32}},
                               {"stem_bn1/gamma", {32}},
                               {"predictions/kernel", {1056, 1000}}});
}

TEST_CASE("Keras weights through the trainer's initial weights and `neurn forward --weights F.h5`" *
          neurn::testing::skip_unless(neurn::testing::neurn_bin() != nullptr, neurn::testing::kNoNeurnBin)) {
  fs::path dir = fs::temp_directory_path() / ("neurn_keras_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  ModelOptions o;
  o.num_classes = 1000;
  ModulePtr model = build_model("mobilenet", o);
  std::map<std::string, std::vector<float>> expect;
  const std::string h5 = (dir / "mobilenet.h5").string();
  write_h5(h5, keras_file_for(*model, expect));

  // `weights:` of an experiment: a 10-class model takes all but the head.
  ModulePtr ten = build_model("mobilenet", {});
  std::ostringstream log;
  experiments::load_initial_weights(*ten, h5, log);
  INFO(log.str());
  CHECK(log.str().find("initial weights " + h5 + ": ") != std::string::npos);
  CHECK(log.str().find("conv_preds.weight") != std::string::npos);  // left as initialised
  for (auto& [k, t] : ten->state_dict())
    if (k == "conv1.weight") CHECK(t.to_vector<float>() == expect[k]);

  // neurn forward reads the class count (1000) from the file and gives the
  // logits of the in-process model loaded from it.
  Generator g(8);
  Tensor x = rand({2, 3, 32, 32}, {}, &g);
  save_safetensors((dir / "x.safetensors").string(), {{"input", x}});
  std::string cmd = std::string(neurn::testing::neurn_bin()) + " forward --model mobilenet --weights " + h5 +
                    " --input " + (dir / "x.safetensors").string() + " --output " + (dir / "y.safetensors").string() +
                    " 2>&1";
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd);
  Tensor y = load_safetensors((dir / "y.safetensors").string())[0].second;
  ModulePtr ref = build_model("mobilenet", o);
  REQUIRE(load_keras_weights(*ref, h5, true).ok());
  ref->eval();
  Tensor want;
  {
    NoGradGuard ng;
    want = (*ref)(x);
  }
  REQUIRE(y.shape() == Shape{2, 1000});
  CHECK(y.to_vector<float>() == want.to_vector<float>());
  fs::remove_all(dir);
}

namespace {

// Keras's EfficientNetB0 layers with weights (efficientnet.py: stem, blocks
// block<stage><letter>_..., top, predictions) in the order of the network,
// which is the order of torchvision's modules. Made from Keras's block
// arguments (repeats 1, 2, 2, 3, 3, 4, 1; expansion 1 in stage 1, else 6),
// independently of models/keras_weights.cpp.
std::vector<std::string> keras_efficientnet_b0_layers() {
  std::vector<std::string> out;
  auto conv = [&](const std::string& l) { out.push_back(l); };
  auto bn = [&](const std::string& l) { out.push_back(l); };
  conv("stem_conv");
  bn("stem_bn");
  const int repeats[7] = {1, 2, 2, 3, 3, 4, 1};
  for (int s = 0; s < 7; ++s)
    for (int j = 0; j < repeats[s]; ++j) {
      std::string p = "block" + std::to_string(s + 1) + std::string(1, static_cast<char>('a' + j)) + "_";
      if (s > 0) {
        conv(p + "expand_conv");
        bn(p + "expand_bn");
      }
      conv(p + "dwconv");
      bn(p + "bn");
      conv(p + "se_reduce");
      conv(p + "se_expand");
      conv(p + "project_conv");
      bn(p + "project_bn");
    }
  conv("top_conv");
  bn("top_bn");
  conv("predictions");
  return out;
}

}  // namespace

TEST_CASE("Keras weights: resnet50_keras (Keras ResNet v1) from a Keras-layout .h5") {
  check_model("resnet50_keras", {{"conv1_conv/kernel", {7, 7, 3, 64}},
                                 {"conv1_conv/bias", {64}},
                                 {"conv1_bn/gamma", {64}},
                                 {"conv2_block1_0_conv/kernel", {1, 1, 64, 256}},
                                 {"conv2_block1_0_bn/moving_mean", {256}},
                                 {"conv3_block1_1_conv/kernel", {1, 1, 256, 128}},
                                 {"conv3_block1_2_conv/kernel", {3, 3, 128, 128}},
                                 {"conv5_block3_3_bn/moving_variance", {2048}},
                                 {"predictions/kernel", {2048, 1000}}});
}

TEST_CASE("Keras weights: inceptionv3 from a Keras-layout .h5 counting auto-names from 1 (scale-free BN)") {
  // Keras Applications' file names the 94 units conv2d_1 ... conv2d_94 and
  // batch_normalization_1 ... _94 (Keras 2.0); the model's keys are a fresh
  // session's conv2d ... conv2d_93. No gamma: BatchNormalization(scale=False).
  FileStyle style;
  style.auto_names_from_one = true;
  check_model("inceptionv3", {{"conv2d_1/kernel", {3, 3, 3, 32}},
                              {"batch_normalization_1/beta", {32}},
                              {"batch_normalization_1/moving_mean", {32}},
                              {"conv2d_5/kernel", {3, 3, 80, 192}},
                              {"conv2d_6/kernel", {1, 1, 192, 64}},   // mixed0 branch1x1
                              {"conv2d_8/kernel", {5, 5, 48, 64}},    // mixed0 branch5x5
                              {"conv2d_33/kernel", {1, 7, 128, 128}}, // mixed4 branch7x7 1x7
                              {"conv2d_34/kernel", {7, 1, 128, 192}},
                              {"conv2d_94/kernel", {1, 1, 2048, 192}},
                              {"batch_normalization_94/moving_variance", {192}},
                              {"predictions/kernel", {2048, 1000}}},
              style);
  // the fresh-session numbering loads too
  check_model("inceptionv3", {{"conv2d/kernel", {3, 3, 3, 32}}, {"conv2d_93/kernel", {1, 1, 2048, 192}}});
}

TEST_CASE("Keras weights: efficientnet_b0 (torchvision's keys) from Keras's EfficientNetB0 layer names") {
  FileStyle style;
  style.layers = keras_efficientnet_b0_layers();
  // the input Normalization layer's statistics: skipped, not an error
  style.extra = {{"normalization", "mean", {3}}, {"normalization", "variance", {3}}, {"normalization", "count", {}}};
  check_model("efficientnet_b0", {{"stem_conv/kernel", {3, 3, 3, 32}},
                                  {"stem_bn/gamma", {32}},
                                  {"block1a_dwconv/depthwise_kernel", {3, 3, 32, 1}},
                                  {"block1a_se_reduce/kernel", {1, 1, 32, 8}},
                                  {"block1a_se_reduce/bias", {8}},
                                  {"block1a_se_expand/kernel", {1, 1, 8, 32}},
                                  {"block1a_project_conv/kernel", {1, 1, 32, 16}},
                                  {"block2a_expand_conv/kernel", {1, 1, 16, 96}},
                                  {"block2a_dwconv/depthwise_kernel", {3, 3, 96, 1}},
                                  {"block2b_se_reduce/kernel", {1, 1, 144, 6}},
                                  {"block6d_project_bn/moving_variance", {192}},
                                  {"block7a_project_conv/kernel", {1, 1, 1152, 320}},
                                  {"top_conv/kernel", {1, 1, 320, 1280}},
                                  {"top_bn/beta", {1280}},
                                  {"predictions/kernel", {1280, 1000}}},
              style);
}

TEST_CASE("Keras weights: EfficientNet's layer names for every depth (B1-B7 letters), and what is skipped") {
  CHECK(keras_layer_for_efficientnet("features.0.0", false) == "stem_conv");
  CHECK(keras_layer_for_efficientnet("features.0.1", false) == "stem_bn");
  CHECK(keras_layer_for_efficientnet("features.1.0.block.0.0", false) == "block1a_dwconv");
  CHECK(keras_layer_for_efficientnet("features.1.0.block.1.fc2", false) == "block1a_se_expand");
  CHECK(keras_layer_for_efficientnet("features.1.0.block.2.1", false) == "block1a_project_bn");
  // B7's stage 6 has ceil(4 x 3.1) = 13 blocks: a..m
  CHECK(keras_layer_for_efficientnet("features.6.12.block.0.0", true) == "block6m_expand_conv");
  CHECK(keras_layer_for_efficientnet("features.6.12.block.1.1", true) == "block6m_bn");
  CHECK(keras_layer_for_efficientnet("features.6.12.block.2.fc1", true) == "block6m_se_reduce");
  CHECK(keras_layer_for_efficientnet("features.6.12.block.3.0", true) == "block6m_project_conv");
  CHECK(keras_layer_for_efficientnet("features.8.1", false) == "top_bn");
  CHECK(keras_layer_for_efficientnet("classifier.1", false) == "predictions");
  CHECK(keras_layer_for_efficientnet("features.6.12.block.4.0", true) == "");
  CHECK(keras_layer_for_efficientnet("avgpool", false) == "");

  // keras_to_neurn on B7 (meta tensors: names and shapes only): every tensor
  // finds its Keras weight, the Normalization statistics are skipped
  ModelOptions o;
  o.num_classes = 1000;
  ParamScope meta({.device = Device::meta()});
  ModulePtr b7 = build_model("efficientnet_b7", o);
  std::vector<std::pair<std::string, Tensor>> datasets;
  std::set<std::string> layers;
  TensorOptions on_meta;
  on_meta.device = Device::meta();
  for (auto& [name, t] : b7->state_dict()) {
    size_t dot = name.rfind('.');
    std::string module = name.substr(0, dot), param = name.substr(dot + 1);
    if (param == "num_batches_tracked") continue;
    bool expands = false;
    if (size_t b = module.find(".block."); b != std::string::npos) {
      std::string block = module.substr(0, b);
      for (auto& [n2, t2] : b7->state_dict())
        if (n2.rfind(block + ".block.3.", 0) == 0) expands = true;
    }
    std::string layer = keras_layer_for_efficientnet(module, expands);
    REQUIRE_MESSAGE(!layer.empty(), name);
    layers.insert(layer);
    const Shape& s = t.shape();
    std::string weight;
    Shape ks = s;
    if (s.size() == 4 && s[1] == 1 && s[0] > 1) {
      weight = "depthwise_kernel", ks = {s[2], s[3], s[0], 1};
    } else if (s.size() == 4) {
      weight = "kernel", ks = {s[2], s[3], s[1], s[0]};
    } else if (s.size() == 2) {
      weight = "kernel", ks = {s[1], s[0]};
    } else {
      bool conv_bias = layer.find("se_") != std::string::npos || layer == "predictions";
      weight = param == "weight" ? "gamma" : param == "bias" ? (conv_bias ? "bias" : "beta")
               : param == "running_mean" ? "moving_mean" : "moving_variance";
    }
    datasets.push_back({layer + "/" + layer + "/" + weight + ":0", zeros(ks, on_meta)});
  }
  datasets.push_back({"normalization/mean:0", zeros({3}, on_meta)});
  datasets.push_back({"normalization/variance:0", zeros({3}, on_meta)});
  datasets.push_back({"normalization/count:0", zeros({}, on_meta)});
  KerasConversion c = keras_to_neurn(*b7, datasets, "b7.h5");
  CHECK(c.missing.empty());
  CHECK(c.unused.empty());
  CHECK(c.skipped == std::vector<std::string>{"normalization/count", "normalization/mean", "normalization/variance"});
  std::map<std::string, Shape> want;
  for (auto& [n, t] : b7->state_dict()) want[n] = t.shape();
  for (auto& [n, t] : c.tensors) CHECK_MESSAGE(t.shape() == want[n], n);
  CHECK(layers.count("block6m_dwconv") == 1);
  CHECK(layers.count("block6n_dwconv") == 0);
}
