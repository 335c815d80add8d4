#include "datasets/writers.h"

#include <cstdio>

#include "datasets/io.h"
#include "framework/error.h"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace neurn::data {

void write_png_folder(const Dataset& ds, const std::string& dir, const std::string& prefix) {
  const int64_t c = ds.channels(), h = ds.height(), w = ds.width();
  NEURN_CHECK(c == 1 || c == 3, "write_png_folder: ", c, " channels (expected 1 or 3)");
  std::string folder = path_join(dir, prefix + "_" + ds.split());
  std::string labels;
  std::vector<uint8_t> hwc(static_cast<size_t>(c * h * w));
  for (int64_t i = 0; i < ds.size(); ++i) {
    const uint8_t* p = ds.image(i);
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t ch = 0; ch < c; ++ch) hwc[static_cast<size_t>((y * w + x) * c + ch)] = p[(ch * h + y) * w + x];
    std::vector<uint8_t> png;
    int ok = stbi_write_png_to_func(
        [](void* ctx, void* data, int size) {
          auto* o = static_cast<std::vector<uint8_t>*>(ctx);
          o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
        },
        &png, static_cast<int>(w), static_cast<int>(h), static_cast<int>(c), hwc.data(), static_cast<int>(w * c));
    NEURN_CHECK(ok, "write_png_folder: PNG encoding failed for record ", i);
    char name[32];
    std::snprintf(name, sizeof name, "%08ld.png", static_cast<long>(i));
    write_file_atomic(path_join(folder, name), png.data(), png.size());
    labels += std::string(name) + " " + std::to_string(ds.label(i)) + "\n";
  }
  write_file_atomic(path_join(dir, prefix + "_" + ds.split() + "_labels.txt"), labels.data(), labels.size());
}

}  // namespace neurn::data
