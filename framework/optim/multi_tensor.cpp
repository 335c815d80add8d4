#include "framework/optim/multi_tensor.h"

#include <limits>

#include "framework/error.h"

namespace neurn {

std::vector<TensorChunk> chunk_tensors(const std::vector<int64_t>& numels, int64_t chunk) {
  NEURN_CHECK(chunk >= 1, "chunk_tensors: chunk size ", chunk, " must be positive");
  NEURN_CHECK(numels.size() <= static_cast<size_t>(std::numeric_limits<int32_t>::max()), "chunk_tensors: ",
              numels.size(), " tensors do not fit a 32-bit index");
  std::vector<TensorChunk> out;
  for (size_t t = 0; t < numels.size(); ++t) {
    NEURN_CHECK(numels[t] >= 0, "chunk_tensors: tensor ", t, " has a negative size ", numels[t]);
    for (int64_t b = 0; b < numels[t]; b += chunk)
      out.push_back({static_cast<int32_t>(t), b, b + chunk < numels[t] ? b + chunk : numels[t]});
  }
  return out;
}

}  // namespace neurn
