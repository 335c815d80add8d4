#pragma once
// `neurn forward --model none --neurn-options k=3[,padding=..,max_scope=..,eps=..]
//  --input X.safetensors --output Y.safetensors [--device cpu|cuda]`:
// NeuRN alone applied to the tensor named "input" ((N, C, H, W), or (C, H, W)
// / (H, W), taken as one image / one channel), written as "output" with the
// input's shape and dtype (float32 or float64; float64 stays float64 on the
// CPU). Lets anyone compare the op with their own implementation.
// Implemented in cmd_neurn_tools.cpp; the `forward` command calls it for
// --model none.
#include <string>

namespace neurn::cli {

int forward_neurn_only(const std::string& neurn_spec, const std::string& input_path, const std::string& output_path,
                       const std::string& device);

}  // namespace neurn::cli
