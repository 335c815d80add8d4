#pragma once
// A tiny data root for the experiment tests: MNIST-format (IDX) and
// USPS-format (text) files holding a few hundred synthetic, learnable digits
// (class c is a bright block at a class-specific place, plus noise), so the
// tests exercise the real readers and loader in a second.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "framework/random.h"

namespace neurn::testing {

// One gray image of class `label`, size x size, values in [0, 1].
inline std::vector<double> tiny_digit(int label, int size, Generator& gen) {
  std::vector<double> img(static_cast<size_t>(size) * size);
  for (auto& v : img) v = 0.15 * gen.uniform();
  int cell = size / 4;
  int cx = (label % 4) * cell, cy = (label / 4) * cell;  // 10 places on a 4x3 grid
  for (int y = cy; y < cy + cell; ++y)
    for (int x = cx; x < cx + cell; ++x) img[static_cast<size_t>(y) * size + x] = 0.8 + 0.2 * gen.uniform();
  return img;
}

inline void write_be32(std::ofstream& out, uint32_t v) {
  unsigned char b[4] = {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
                        static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  out.write(reinterpret_cast<const char*>(b), 4);
}

inline void write_tiny_mnist(const std::filesystem::path& root, const std::string& prefix, int n, uint64_t seed) {
  std::filesystem::create_directories(root / "mnist");
  std::ofstream img(root / "mnist" / (prefix + "-images-idx3-ubyte"), std::ios::binary);
  std::ofstream lab(root / "mnist" / (prefix + "-labels-idx1-ubyte"), std::ios::binary);
  write_be32(img, 0x803), write_be32(img, n), write_be32(img, 28), write_be32(img, 28);
  write_be32(lab, 0x801), write_be32(lab, n);
  Generator gen(seed);
  for (int i = 0; i < n; ++i) {
    int label = i % 10;
    for (double v : tiny_digit(label, 28, gen)) img.put(static_cast<char>(static_cast<uint8_t>(v * 255)));
    lab.put(static_cast<char>(label));
  }
}

inline void write_tiny_usps(const std::filesystem::path& root, const std::string& file, int n, uint64_t seed) {
  std::filesystem::create_directories(root / "usps");
  std::ofstream out(root / "usps" / file);
  Generator gen(seed);
  for (int i = 0; i < n; ++i) {
    int label = (i * 3) % 10;
    out << label;
    char buf[16];
    for (double v : tiny_digit(label, 16, gen)) {
      std::snprintf(buf, sizeof buf, " %.3f", 2 * v - 1);  // USPS pixels are in [-1, 1]
      out << buf;
    }
    out << "\n";
  }
}

// mnist (train/test) and, when with_usps, usps (train/test) under `root`.
inline void make_tiny_data_root(const std::filesystem::path& root, int train = 300, int test = 100,
                                bool with_usps = true) {
  write_tiny_mnist(root, "train", train, 11);
  write_tiny_mnist(root, "t10k", test, 12);
  if (with_usps) {
    write_tiny_usps(root, "zip.train", train, 13);
    write_tiny_usps(root, "zip.test", test, 14);
  }
}

}  // namespace neurn::testing
