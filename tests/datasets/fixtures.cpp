#include "fixtures.h"

#include <bzlib.h>
#include <zlib.h>

#include <filesystem>

#include "framework/error.h"

namespace neurn::data::testing {

std::vector<uint8_t> gzip_bytes(const std::vector<uint8_t>& raw) {
  z_stream zs{};
  NEURN_CHECK(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK, "deflateInit2");
  std::vector<uint8_t> out(deflateBound(&zs, raw.size()) + 64);
  zs.next_in = const_cast<Bytef*>(raw.data());
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  NEURN_CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END, "deflate");
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::vector<uint8_t> bzip2_bytes(const std::vector<uint8_t>& raw) {
  std::vector<uint8_t> out(raw.size() + raw.size() / 100 + 700);
  unsigned len = static_cast<unsigned>(out.size());
  NEURN_CHECK(BZ2_bzBuffToBuffCompress(reinterpret_cast<char*>(out.data()), &len,
                                       const_cast<char*>(reinterpret_cast<const char*>(raw.data())),
                                       static_cast<unsigned>(raw.size()), 9, 0, 0) == BZ_OK,
              "bzip2 compress");
  out.resize(len);
  return out;
}

std::string shared_data() {
  std::error_code ec;
  if (const char* env = std::getenv("NEURN_SHARED_DATA"); env && *env && std::filesystem::is_directory(env, ec))
    return env;
  std::filesystem::path p = std::filesystem::path(NEURN_SOURCE_DIR).parent_path() / "shared" / "data";
  return std::filesystem::is_directory(p, ec) ? p.string() : "";
}

}  // namespace neurn::data::testing
