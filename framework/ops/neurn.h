#pragma once
// NeuRN (Neural Response Normalization): the op.
//
//   neurn_norm: x (N, C, H, W) -> out (N, C, H, W)
//   sigma[n, c, i, j] = population standard deviation of the k x k patch centred
//                       on (i, j) in channel c of image n (stride 1)
//   out               = sigma / (max(sigma over the scope) + eps)
//
// The paper leaves the details open; these are the options and their defaults:
// - k (odd, >= 1; default 3): the smallest patch that has a spread; the digits
//   are 28-32 px, so a 3x3 patch sees a stroke edge. k = 1 gives zeros.
// - padding (default valid): the patch keeps only the pixels inside the image,
//   so a border pixel's spread is that of real pixels. `zero` pads with zeros
//   (an image edge then looks like a strong edge of the image against black);
//   `reflect` mirrors the image without repeating the edge pixel (PyTorch's
//   reflect; needs k / 2 < H and < W).
// - max_scope (default image): one scale c per image over all its channels and
//   pixels, so the relative contrast between colour channels is kept and the
//   output of every image lies in [0, 1). `channel`: one per image and channel;
//   `batch`: one for the whole batch (the output then depends on the batch).
// - eps (default 1e-6): a blank image (sigma = 0 everywhere) gives zeros, not NaN.
//
// Gradient: through sigma and through the max. The gradient of c goes to the
// position where the maximum was found first in row-major (n, c, h, w) order
// within the scope (ties: the first one, as max() does). Where sigma = 0 the
// square root's gradient is taken as 0 (a flat patch has no direction in which
// its spread grows smoothly).
//
// Cost does not depend on k: the patch sums of x and x^2 are running sums
// (separable: along rows, then along columns), in double. To avoid the
// cancellation of E[x^2] - E[x]^2 on images with a large offset (1000 + noise),
// every (n, c) plane is first shifted by its own mean, which leaves the variance
// unchanged. The backward is k-independent too: the transpose of a box sum is a
// box sum.
//
// Devices: CPU (float32, float64), CUDA (float32), meta (shape and FLOPs).
#include <map>
#include <string>

#include "framework/tensor.h"

namespace neurn {

enum class NeuRNPadding { Valid, Zero, Reflect };
enum class NeuRNScope { Image, Channel, Batch };

struct NeuRNOptions {
  int64_t k = 3;
  NeuRNPadding padding = NeuRNPadding::Valid;
  NeuRNScope max_scope = NeuRNScope::Image;
  double eps = 1e-6;
};

// x (N, C, H, W) -> (N, C, H, W)
Tensor neurn_norm(const Tensor& x, const NeuRNOptions& opt = {});

// FLOPs the forward reports per element (shift, two running sums in two
// directions, variance, square root, division).
constexpr int64_t kNeuRNFlopsPerElement = 16;

const char* neurn_padding_name(NeuRNPadding p);  // "valid", "zero", "reflect"
const char* neurn_scope_name(NeuRNScope s);      // "image", "channel", "batch"
NeuRNPadding parse_neurn_padding(const std::string& s);
NeuRNScope parse_neurn_scope(const std::string& s);
// Throws naming the option when k is even or < 1, or eps is negative.
void validate_neurn_options(const NeuRNOptions& opt);
// "k=3,padding=valid,max_scope=image,eps=1e-6": any subset, in any order, the
// rest default; "" gives the defaults. Unknown keys and bad values throw.
NeuRNOptions parse_neurn_options(const std::string& spec);
// The same keys from a map (e.g. a YAML mapping read as strings).
NeuRNOptions neurn_options_from_map(const std::map<std::string, std::string>& kv);
// "k=3,padding=valid,max_scope=image,eps=1e-06": parse_neurn_options reads it back.
std::string neurn_options_str(const NeuRNOptions& opt);

}  // namespace neurn
