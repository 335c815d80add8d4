#pragma once
// Writes a dataset in the MNIST-M layout (one PNG per image plus a labels
// file), so generated variants can be inspected with any image viewer and read
// back with read_mnistm_folder.
#include <string>

#include "datasets/datasets.h"

namespace neurn::data {

// <dir>/<prefix>_<split>/00000000.png ... and <dir>/<prefix>_<split>_labels.txt
// ("00000000.png 5" per line). 1- or 3-channel images; files written atomically.
void write_png_folder(const Dataset& ds, const std::string& dir, const std::string& prefix);

}  // namespace neurn::data
