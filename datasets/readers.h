#pragma once
// Readers of the official dataset files, as their publishers ship them. Every
// failure names the file, and the record (or line) where there is one.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "datasets/datasets.h"

namespace neurn::data {

// MNIST IDX files (gzip or raw): images magic 2051, 28x28; labels magic 2049;
// counts must agree; labels in [0, 9].
Dataset read_mnist(const std::string& images_path, const std::string& labels_path, const std::string& split);

// USPS, Hastie et al.'s text format (zip.train.gz / zip.test.gz): one digit per
// line, the label then 256 values in [-1, 1] (16x16 row-major).
Dataset read_usps_text(const std::string& path, const std::string& split);
// USPS, the libsvm format (usps.bz2 / usps.t.bz2): "label idx:value ...",
// labels 1..10 meaning digits 0..9, indices 1..256, values in [-1, 1].
Dataset read_usps_libsvm(const std::string& path, const std::string& split);

// SVHN cropped digits (train_32x32.mat, ...; MATLAB v5 via libmatio): X is
// 32x32x3xN uint8, y is Nx1 with 1..10 where 10 means digit 0.
Dataset read_svhn_mat(const std::string& path, const std::string& name, const std::string& split);

// MNIST-M, the official layout: `labels_file` lines "00000000.png 5", the
// PNGs (32x32 RGB) in `image_dir`. Decoded on `threads` threads.
std::vector<std::pair<std::string, int64_t>> read_mnistm_labels(const std::string& labels_file);
Dataset read_mnistm_folder(const std::string& image_dir, const std::string& labels_file, const std::string& split,
                           int threads = 2);

// Decodes a PNG/JPEG held in memory to interleaved (H, W, channels) uint8;
// `what` names the source in errors.
std::vector<uint8_t> decode_image(const std::vector<uint8_t>& bytes, const std::string& what, int channels, int* height,
                                  int* width);

// The compact decoded cache of a split (see docs/data.md): "NEURNU8\1", then
// little-endian int64 n, c, h, w, the n labels as bytes, the pixels (N, C, H, W),
// and the SHA-256 of everything before it. Written atomically.
void write_u8_cache(const std::string& path, const Dataset& ds);
// Throws naming the file when the magic, sizes or checksum are wrong.
Dataset read_u8_cache(const std::string& path, const std::string& name, const std::string& split);

}  // namespace neurn::data
