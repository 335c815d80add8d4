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

bool is_depthwise(const std::string& module) {
  std::string last = module.substr(module.rfind('.') + 1);
  return last == "depthwise" || module.find("conv_dw_") != std::string::npos;
}

// What Keras would store for each tensor of `model`, with random values;
// `values_out[neurn key]` receives the neurn-layout values to expect.
std::vector<KerasWeight> keras_file_for(Module& model, std::map<std::string, std::vector<float>>& expect) {
  Generator g(5);
  std::vector<KerasWeight> out;
  for (auto& [name, t] : model.state_dict()) {
    size_t dot = name.rfind('.');
    std::string module = name.substr(0, dot), param = name.substr(dot + 1);
    if (param == "num_batches_tracked") continue;
    std::string last = module.substr(module.rfind('.') + 1), layer_path = module;
    bool sep = last == "depthwise" || last == "pointwise";
    if (sep) layer_path = module.substr(0, module.rfind('.'));
    std::string layer = layer_path;
    for (auto& c : layer) c = c == '.' ? '_' : c;
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
      bool dw = is_depthwise(module);
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

void write_h5(const std::string& path, const std::vector<KerasWeight>& ws) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(f >= 0);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  for (const auto& w : ws) {
    std::vector<hsize_t> dims(w.shape.begin(), w.shape.end());
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
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

// (layer/weight, shape) pairs from Keras Applications, at 1000 classes.
using Published = std::vector<std::pair<std::string, Shape>>;

void check_model(const std::string& name, const Published& published) {
  ModelOptions o;
  o.num_classes = 1000;
  o.input_size = std::max<int64_t>(32, model_info(name).min_input_size);
  ModulePtr model = build_model(name, o);
  std::map<std::string, std::vector<float>> expect;
  auto ws = keras_file_for(*model, expect);
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
