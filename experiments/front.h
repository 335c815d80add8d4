#pragma once
// The input front of a run: what sits between the image and the model.
// Nothing, NeuRN with some options, or one of the normalizations the paper
// compares NeuRN with (LRN, LCN). A sweep runs every front of its config
// (`fronts:`, or the older `neurn: [false, true]` with `neurn_options`) on
// every model, source and seed.
//
//   fronts:
//     - none
//     - neurn                                     # k 3, valid padding, image maximum
//     - {kind: neurn, k: 5, label: neurn_k5}
//     - {kind: lrn, size: 5}
//     - lcn
//
// The label names the front in run ids ("digits_convnet+neurn_k5/mnist/seed0")
// and table rows; the kind and the options with the layer's defaults filled in
// are part of the run's fingerprint (run_identity.h).
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/module.h"

namespace neurn::experiments {

struct FrontSpec {
  std::string kind = "none";                   // none | neurn | lrn | lcn
  std::map<std::string, std::string> options;  // as written; the defaults fill the rest
  std::string label;                           // "" for none; "neurn" for the default NeuRN
  std::string mark;                            // where the config wrote it ("ablation.yaml:12:5"), for messages

  bool none() const { return kind == "none"; }
  // The run-id tag: "" without a front, else "+" + label.
  std::string tag() const { return none() ? "" : "+" + label; }
};

// The kinds, in the order messages list them.
const std::vector<std::string>& front_kinds();
// The options a kind accepts, with their defaults (as text).
const std::map<std::string, std::string>& front_defaults(const std::string& kind);

// The options with the layer's defaults filled in and every value checked
// and normalised ({"k": 3, "padding": "valid", ...}); throws neurn::Error
// naming the kind, the option and what is allowed.
nlohmann::json resolved_front_options(const FrontSpec& f);
// The label a front gets when the config gives none: "neurn" for NeuRN at
// its defaults, "lrn", "lcn"; else the kind and the changed options,
// "neurn_k5", "neurn_padding-reflect", "lrn_size-3".
std::string default_front_label(const FrontSpec& f);
// Two fronts are the same run when their kind and resolved options are.
bool same_front(const FrontSpec& a, const FrontSpec& b);

// The front as a layer for an input of `channels` channels (nullptr for
// none). Throws like resolved_front_options.
ModulePtr make_front_layer(const FrontSpec& f, int64_t channels);

// What the report prints for a front: "NeuRN", "NeuRN (k 5)", "LRN", "LCN",
// or the label.
std::string front_display_name(const FrontSpec& f);

}  // namespace neurn::experiments
