#pragma once
// The safetensors format (https://github.com/huggingface/safetensors), the
// one PyTorch, timm and Hugging Face use for weights: an 8-byte
// little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [64, 3, 7, 7], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// (offsets relative to the data block), then the raw little-endian data.
//
// Written: F32, F64, I64, U8, BF16, F16 (whatever the tensor holds).
// Read: F32, F64, I64, U8 and BOOL as they are; BF16 and F16 widened to F32;
// I32, I16, I8 widened to I64.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "framework/tensor.h"

namespace neurn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Tensors on any device but meta (they are copied to the host); names must be
// unique and non-empty. save_safetensors replaces `path` atomically and
// durably (framework/io/atomic_file.h); a failure names the path and keeps
// the previous file.
std::string encode_safetensors(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata = {});
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// CPU tensors in the order of their data in the file. `source` names the
// bytes in error messages. A malformed file (short, bad JSON, unknown dtype,
// offsets outside the data or not matching the shape) is an error naming the
// file and what is wrong.
NamedTensors decode_safetensors(const std::string& bytes, const std::string& source = "<memory>",
                                std::map<std::string, std::string>* metadata = nullptr);
NamedTensors load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

// The tensor named `name`, or an error listing (some of) the names there are.
Tensor find_tensor(const NamedTensors& tensors, const std::string& name, const std::string& source = "<memory>");

}  // namespace neurn
