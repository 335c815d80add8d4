// Layer traces in the similarity vocabulary: pinned small traces, every
// registry model's trace known to the vocabulary, non-empty and stable, and
// the VGG variants clustering together among other families.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "layers/init.h"
#include "models/backbones.h"
#include "models/registry.h"
#include "models/similarity/analysis.h"
#include "models/similarity/vocabulary.h"

using namespace neurn;
using namespace neurn::similarity;

namespace {
// VGG configurations of Simonyan & Zisserman 2015, Table 1 (0: max pool).
const std::vector<int64_t> kVggA{64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
const std::vector<int64_t> kVggB{64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
const std::vector<int64_t> kVggD{64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};

std::vector<std::string> vgg_trace(const std::vector<int64_t>& cfg) {
  ParamScope scope({.device = Device::meta()});
  ModulePtr m = build_vgg(cfg, {});
  return to_vocabulary(trace_model(*m, {1, 3, 32, 32}).tokens);
}
}  // namespace

TEST_CASE("traces: VGG11 (configuration A) and the heads of VGG19 and ResNet50") {
  auto v11 = vgg_trace(kVggA);
  const std::vector<std::string> head{"Conv", "ReLU", "MaxPool", "Conv", "ReLU", "MaxPool",
                                      "Conv", "ReLU", "Conv",    "ReLU", "MaxPool"};
  REQUIRE(v11.size() > head.size());
  CHECK(std::vector<std::string>(v11.begin(), v11.begin() + static_cast<long>(head.size())) == head);
  // 8 convs with their ReLUs, 5 pools, torchvision's head (adaptive pool,
  // flatten, three linears with two ReLU + dropout pairs).
  CHECK(to_codes(v11) == "CRMCRMCRCRMCRCRMCRCRMAfFRdFRdF");
  CHECK(to_codes(registry_trace("vgg19").tokens).substr(0, 10) == "CRCRMCRCRM");
  // ResNet50: stem, then the first bottleneck with its downsampling shortcut.
  CHECK(to_codes(registry_trace("resnet50").tokens).substr(0, 16) == "CBRMCBRCBRCBCB+R");
}

TEST_CASE("traces: every registry model is non-empty, in the vocabulary, and stable") {
  for (auto& info : list_models()) {
    INFO(info.name);
    NamedTrace t = registry_trace(info.name);
    CHECK(t.name == info.name);
    CHECK(!t.tokens.empty());
    // A '?' is a layer type docs/similarity.md and vocabulary.cpp do not list.
    const std::string codes = to_codes(t.tokens);
    CHECK_MESSAGE(codes.find('?') == std::string::npos, "unknown layer type in ", info.name, ": add it to vocabulary.cpp");
    CHECK(registry_trace(info.name).tokens == t.tokens);  // same on a second build
  }
}

TEST_CASE("clusters: the VGG variants fall in one cluster, apart from other families") {
  std::vector<std::string> names{"vgg11", "vgg13", "vgg16", "vgg19"};
  std::vector<std::vector<std::string>> toks{vgg_trace(kVggA), vgg_trace(kVggB), vgg_trace(kVggD),
                                             registry_trace("vgg19").tokens};
  for (const char* other : {"resnet50", "resnet50v2", "densenet121", "mobilenet", "mobilenet_v2"}) {
    names.push_back(other);
    toks.push_back(registry_trace(other).tokens);
  }
  Encoder enc;
  std::vector<Sequence> seqs;
  for (auto& t : toks) seqs.push_back(enc.encode(t));
  PairMatrices nw = nw_all_pairs(seqs, {}, 2);
  for (size_t i = 0; i < seqs.size(); ++i) {
    CHECK(nw.index[i][i] == 1.0);
    CHECK(nw.score[i][i] == 4 * static_cast<int64_t>(seqs[i].size()));
    for (size_t j = 0; j < seqs.size(); ++j) {
      CHECK(nw.index[i][j] == nw.index[j][i]);
      CHECK(nw.score[i][j] == nw_score(seqs[i], seqs[j]));
    }
  }
  for (int k = 2; k <= 4; ++k) {
    INFO("k = ", k);
    Clusters c = cluster(to_distance(nw.index, false), k);
    for (size_t i = 1; i < 4; ++i) CHECK(c.labels[i] == c.labels[0]);
    for (size_t i = 4; i < names.size(); ++i) CHECK(c.labels[i] != c.labels[0]);
    // The correlation measure and the pattern similarity agree on it.
    Clusters cc = cluster(to_distance(row_correlation(nw.index), true), k);
    for (size_t i = 1; i < 4; ++i) CHECK(cc.labels[i] == cc.labels[0]);
    Clusters pc = cluster(to_distance(pattern_all_pairs(seqs, 2).index, false), k);
    for (size_t i = 1; i < 4; ++i) CHECK(pc.labels[i] == pc.labels[0]);
  }
}

TEST_CASE("docs/similarity.md lists every vocabulary token with its code") {
  std::ifstream in(std::string(NEURN_SOURCE_DIR) + "/docs/similarity.md");
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  for (auto& t : vocabulary()) {
    const std::string row = "| " + t.name + " | `" + std::string(1, t.code) + "` |";
    CHECK_MESSAGE(doc.find(row) != std::string::npos, "docs/similarity.md lacks the row of ", t.name,
                  " (neurn models vocabulary prints the table)");
  }
}
