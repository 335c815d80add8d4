// scripts/export_torchvision_weights.py on a local .pth (torchvision's
// mobilenet_v2 with random weights, saved by torch.save as torchvision ships
// its files): the safetensors it writes loads strictly into neurn's
// mobilenet_v2 at 1000 classes, tensor for tensor equal to the .pth, and says
// in its metadata where it came from and the ImageNet normalization; a .pth of
// another architecture is refused with the keys named. Skipped, visibly,
// without torch (tests/skip.h).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "framework/serialize/safetensors.h"
#include "layers/layers.h"
#include "models/registry.h"
#include "skip.h"

using namespace neurn;
namespace fs = std::filesystem;

namespace {
int sh(const std::string& cmd, std::string* out) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  char buf[4096];
  out->clear();
  while (size_t n = fread(buf, 1, sizeof buf, p)) out->append(buf, n);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
}  // namespace

TEST_CASE("export_torchvision_weights.py: a local .pth -> safetensors that neurn loads strictly" *
          neurn::testing::skip_unless(neurn::testing::have_torch(), neurn::testing::kNoTorch)) {
  fs::path dir = fs::temp_directory_path() / ("neurn_export_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string pth = (dir / "mnv2.pth").string(), ref = (dir / "ref.safetensors").string(),
                    out = (dir / "mnv2.safetensors").string(), script =
                        std::string(NEURN_SOURCE_DIR) + "/scripts/export_torchvision_weights.py";
  // The .pth, and the same tensors as plain safetensors (written by numpy
  // bytes, independent of the script) to compare with.
  std::string py =
      "import torch, torchvision, json, struct\n"
      "torch.manual_seed(3)\n"
      "m = torchvision.models.mobilenet_v2()\n"
      "sd = m.state_dict()\n"
      "torch.save(sd, '" + pth + "')\n"
      "h, blobs, off = {}, [], 0\n"
      "for k, t in sd.items():\n"
      "    if t.dtype != torch.float32: continue\n"
      "    b = t.contiguous().numpy().tobytes(); h[k] = {'dtype': 'F32', 'shape': list(t.shape), "
      "'data_offsets': [off, off + len(b)]}; off += len(b); blobs.append(b)\n"
      "j = json.dumps(h).encode(); j += b' ' * ((8 - len(j) % 8) % 8)\n"
      "f = open('" + ref + "', 'wb'); f.write(struct.pack('<Q', len(j))); f.write(j); [f.write(b) for b in blobs]\n";
  std::ofstream(dir / "make.py") << py;
  std::string log;
  REQUIRE_MESSAGE(sh("/usr/bin/python3 " + (dir / "make.py").string(), &log) == 0, log);
  REQUIRE_MESSAGE(sh("/usr/bin/python3 " + script + " --model mobilenet_v2 --pth " + pth + " --out " + out, &log) == 0,
                  log);
  CHECK(log.find("-> " + out) != std::string::npos);

  ModelOptions o;
  o.num_classes = 1000;
  ModulePtr model = build_model("mobilenet_v2", o);
  LoadReport rep = load_state_file(*model, out, /*strict=*/true);
  CHECK(rep.ok());
  std::map<std::string, Tensor> mine;
  for (auto& [k, v] : model->state_dict()) mine[k] = v;
  int compared = 0;
  for (auto& [k, v] : load_safetensors(ref)) {
    INFO(k);
    REQUIRE(mine.count(k) == 1);
    CHECK(mine[k].to_vector<float>() == v.to_vector<float>());
    ++compared;
  }
  CHECK(compared > 150);
  std::map<std::string, std::string> md;
  load_safetensors(out, &md);
  CHECK(md["source"] == "torchvision");
  CHECK(md["weights"] == "MobileNet_V2_Weights.IMAGENET1K_V2");
  CHECK(md["normalize"].find("0.485") != std::string::npos);  // ImageNet mean (torchvision's transforms)

  // A .pth of another architecture is refused, naming what does not fit.
  CHECK(sh("/usr/bin/python3 " + script + " --model resnet18 --pth " + pth + " --out " + (dir / "x.safetensors").string(),
           &log) == 2);
  CHECK(log.find("does not fit torchvision's resnet18") != std::string::npos);
  CHECK(!fs::exists(dir / "x.safetensors"));
  fs::remove_all(dir);
}
