#pragma once
// The SPOS search space (Guo et al. 2019, "Single Path One-Shot Neural
// Architecture Search with Uniform Sampling"; the layout of
// megvii-model/SinglePathOneShot): a stem (conv 3x3, 16 channels, BN, ReLU),
// 20 choice layers in stages of 4, 4, 8, 4 with 64, 160, 320, 640 output
// channels (the first layer of a stage projects and downsamples), a head
// (conv 1x1 to 1024, BN, ReLU, global average pooling, dropout 0.1, linear
// without bias). Each layer chooses
//   op:       0, 1, 2 = ShuffleNetV2 unit with depthwise 3x3, 5x5, 7x7;
//             3 = the Xception-like unit (three depthwise 3x3 + pointwise pairs);
//   channels: the middle width, a scale of the layer's base middle width
//             (out / 2): the reference's 0.2, 0.4, ..., 1.6;
//   bits:     weight and activation bit widths (fake quantization).
// Each dimension can be switched off (one choice: op 0 / scale 1.0 / 32 bits).
//
// Strides for 32x32 digits: the reference's ImageNet layout (stem stride 2,
// every stage stride 2: 224 -> 7) would end on a 1x1 map at 32x32, where the
// 5x5 and 7x7 kernels only see padding and the choice between them means
// nothing. The default here keeps the stem at stride 1 and the first stage at
// stride 1 (32 -> 32 -> 16 -> 8 -> 4): the last stage works on 4x4 maps. Both
// are options (stem_stride, stage_strides) for other input sizes.
#include <cstdint>
#include <string>
#include <vector>

#include "nas/evolution.h"

namespace neurn::spos {

struct SposSpace {
  std::vector<int64_t> stage_repeats = {4, 4, 8, 4};
  std::vector<int64_t> stage_channels = {64, 160, 320, 640};
  std::vector<int64_t> stage_strides = {1, 2, 2, 2};
  int64_t stem_channels = 16;
  int64_t stem_stride = 1;
  int64_t last_channels = 1024;
  double width = 1.0;  // multiplies every channel count above (even counts, at least 8)
  double dropout = 0.1;
  bool search_ops = true;
  bool search_channels = false;
  bool search_bits = false;
  std::vector<double> channel_scales = {0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6};
  std::vector<int> weight_bits = {2, 4, 8, 32};
  std::vector<int> act_bits = {2, 4, 8, 32};

  int64_t layers() const;  // 20
  // Channels after the width multiplier.
  int64_t stem() const;
  int64_t last() const;
  int64_t out_channels(int64_t layer) const;
  int64_t in_channels(int64_t layer) const;
  int64_t stride(int64_t layer) const;
  bool projects(int64_t layer) const;  // first layer of a stage
  // Choice lists in effect (one entry where the dimension is not searched).
  std::vector<double> scales() const;
  std::vector<int> wbits() const;
  std::vector<int> abits() const;
  // The middle widths a layer can take, increasing (scale x out / 2, at least 1).
  std::vector<int64_t> mid_widths(int64_t layer) const;
  // Throws naming the field on an inconsistent space.
  void validate() const;
};

struct LayerChoice {
  int op = 0;     // 0..3
  int scale = 0;  // index into scales()
  int wbits = 0;  // index into wbits()
  int abits = 0;  // index into abits()
  bool operator==(const LayerChoice&) const = default;
};

struct SposArch {
  SposSpace space;
  std::vector<LayerChoice> layers;
  int64_t mid(int64_t layer) const { return space.mid_widths(layer).at(static_cast<size_t>(layers.at(layer).scale)); }
  int weight_bits(int64_t layer) const { return space.wbits().at(static_cast<size_t>(layers.at(layer).wbits)); }
  int act_bits(int64_t layer) const { return space.abits().at(static_cast<size_t>(layers.at(layer).abits)); }
  void validate() const;
};

// The default architecture of the `spos` model (ModelOptions::arch empty):
// the default space, ShuffleNetV2 3x3 units in every layer, middle width at
// scale 1.0, 32 bits. A neutral baseline, not a searched result.
SposArch default_arch();

// Gene encoding for the evolutionary search: four genes per layer
// (op, scale, weight bits, activation bits), each in [0, choices).
std::vector<int> gene_choices(const SposSpace& space);
nas::Genome to_genome(const SposArch& arch);
SposArch from_genome(const SposSpace& space, const nas::Genome& g);
// Uniform over every choice of every searched dimension.
SposArch sample_arch(const SposSpace& space, std::mt19937_64& rng);

// "op names" of a layer: shuffle3, shuffle5, shuffle7, xception.
const char* op_name(int op);
// One line: "shuffle3/1.0/w32a32 xception/0.6/w8a8 ..." (scale and bits only where searched).
std::string describe(const SposArch& arch);

// JSON (the exported architecture): {"format": "neurn-spos-arch-1", "space": {...},
// "layers": [{"op": 1, "op_name": "shuffle5", "scale": 4, "mid": 32, "wbits": 3, "weight_bits": 32, ...}]}
std::string arch_to_json(const SposArch& arch);
SposArch arch_from_json(const std::string& text, const std::string& source);
// ModelOptions::arch: empty (default_arch), a path to an exported JSON, inline
// JSON ("{...}"), or 20 op indices "0,1,2,3,..." (default space otherwise).
SposArch parse_arch(const std::string& arch);
void save_arch(const SposArch& arch, const std::string& path);

}  // namespace neurn::spos
