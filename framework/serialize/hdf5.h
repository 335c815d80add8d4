#pragma once
// Reading HDF5 files through libhdf5 (Debian libhdf5-dev): every numeric
// dataset of a file as a float32 tensor named by its full path, e.g. Keras
// Applications' weight files, "conv1_conv/conv1_conv/kernel:0" (8, 16, 32 or
// 64-bit integers and floats; HDF5 converts them). Errors name the file and
// the dataset; an unreadable or non-HDF5 file is an error, never a partial
// result.
#include <string>
#include <utility>
#include <vector>

#include "framework/tensor.h"

namespace neurn {

// (full path without the leading '/', float32 CPU tensor), in the file's
// traversal order (names in increasing order within each group).
std::vector<std::pair<std::string, Tensor>> read_hdf5_datasets(const std::string& path);

}  // namespace neurn
