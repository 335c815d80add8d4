// How alike two architectures are: their layer sequences (traced on the meta
// device, no memory and no arithmetic) aligned with Needleman-Wunsch, the
// paper's measure.
//
//   align_models [MODEL_A] [MODEL_B]      (default resnet50 resnet50v2)
#include <neurn/neurn.h>

#include <cstdio>
#include <string>

#include "models/similarity/needleman_wunsch.h"
#include "models/similarity/vocabulary.h"

using namespace neurn;

int run(int argc, char** argv) {
  std::string a = argc > 1 ? argv[1] : "resnet50", b = argc > 2 ? argv[2] : "resnet50v2";
  // The layer types of one forward pass, in execution order, mapped to the
  // aligner's vocabulary (docs/similarity.md).
  auto tokens = [](const std::string& name) {
    ModelOptions o;
    o.input_size = std::max<int64_t>(32, model_info(name).min_input_size);
    return similarity::to_vocabulary(trace_model(name, o).tokens);
  };
  std::vector<std::string> ta = tokens(a), tb = tokens(b);
  similarity::Encoder enc;
  similarity::Sequence sa = enc.encode(ta), sb = enc.encode(tb);
  similarity::NwParams p;  // match 4, mismatch -1, gap -1: the paper's scores
  similarity::Alignment al = similarity::nw_align(sa, sb, p);
  double index = similarity::similarity_index(al.score, sa.size(), sb.size(), p);
  std::printf("%s: %zu layers   %s: %zu layers\n", a.c_str(), ta.size(), b.c_str(), tb.size());
  std::printf("codes %s\n      %s\n", similarity::to_codes(ta).c_str(), similarity::to_codes(tb).c_str());
  std::printf("N-W score %lld, similarity index %.3f (1 = identical sequences)\n", static_cast<long long>(al.score),
              index);
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // neurn::Error says what is wrong and where
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
}
