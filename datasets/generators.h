#pragma once
// Generators of digit domains: MNIST-M variants from MNIST and the BSDS500
// photos, and `syn`, synthetic digits rendered from TrueType fonts. Both are
// seeded: image i depends only on (seed, i), so any count is reproducible and
// a larger set extends a smaller one.
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/datasets.h"

namespace neurn::data {

// An RGB photo, interleaved (H, W, 3).
struct Photo {
  int height = 0, width = 0;
  std::vector<uint8_t> rgb;
};

// Decodes every .jpg/.png in `dir` (sorted by name, so the order is stable).
// Throws naming the folder when it holds none, or a file that fails to decode.
std::vector<Photo> load_photos(const std::string& dir);

// MNIST-M after Ganin et al. (JMLR 2016, sec. 5.2.2; "blending digits from the
// original set over patches randomly extracted from color photos from
// BSDS500"): for digit i, a random 32x32 crop of a random photo p, the digit d
// (28x28, binarized at 64, zero-padded to 32x32, replicated to RGB), and the output
// |p - d| per channel. `count` < 0 means one image per MNIST record, in order.
Dataset generate_mnistm(const Dataset& mnist, const std::vector<Photo>& photos, uint64_t seed, int64_t count = -1,
                        const std::string& split = "train", int threads = 2);

struct SynOptions {
  std::vector<std::string> fonts;  // .ttf/.otf paths; empty: find_fonts()
  std::string photo_dir;           // BSDS500 photos for backgrounds; empty or absent: flat/gradient only
  int threads = 2;
};

// The TrueType fonts installed on this machine that can render the ten digits
// (searched under /usr/share/fonts and /usr/local/share/fonts; sorted; math
// and symbol fonts left out).
std::vector<std::string> find_fonts();

// What syn images generated with `opt` are made from, as a short stable
// string: "fonts 23 sha256:<12 hex> + photos 200 sha256:<12 hex>" (or
// "+ photos none" when opt.photo_dir is empty or absent). The digests are of
// the font and photo files' names and bytes in sorted order, so two machines
// with other fonts (or one without the BSDS500 photos) get other keys, and
// the on-disk cache and every run record on syn say which images were used.
std::string syn_source_key(const SynOptions& opt);

// `count` 32x32 RGB digits in the manner of SynDigits: random font, size,
// position, small rotation and colours; background flat, gradient or a photo
// crop; neighbouring distractor digits; blur and noise. The label is the
// centre digit. Labels cycle through a seeded permutation of 0..9 per block of
// ten, so classes are balanced.
Dataset generate_syn(int64_t count, uint64_t seed, const std::string& split = "train", const SynOptions& opt = {});

}  // namespace neurn::data
