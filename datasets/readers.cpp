#include "datasets/readers.h"

#include <matio.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>

#include "datasets/checksum.h"
#include "datasets/io.h"
#include "framework/error.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb_image.h>
#pragma GCC diagnostic pop

namespace neurn::data {
namespace {

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

uint8_t unit_to_u8(double v) {  // [-1, 1] -> [0, 255]
  double x = std::round((v + 1.0) * 127.5);
  return static_cast<uint8_t>(std::clamp(x, 0.0, 255.0));
}

// Splits text into lines without copying the whole file again.
template <typename F>
void for_each_line(const std::vector<uint8_t>& bytes, F&& f) {
  const char* p = reinterpret_cast<const char*>(bytes.data());
  const char* end = p + bytes.size();
  int64_t line = 0;
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* e = nl ? nl : end;
    const char* ee = e;
    while (ee > p && (ee[-1] == '\r' || ee[-1] == ' ' || ee[-1] == '\t')) --ee;
    if (ee > p) f(std::string_view(p, static_cast<size_t>(ee - p)), line);
    ++line;
    p = nl ? nl + 1 : end;
  }
}

bool parse_double(std::string_view s, double& v) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

// ---- MNIST -----------------------------------------------------------------------

Dataset read_mnist(const std::string& images_path, const std::string& labels_path, const std::string& split) {
  std::vector<uint8_t> im = read_decompressed(images_path);
  NEURN_CHECK(im.size() >= 16, images_path, ": truncated IDX file (", im.size(), " bytes, the header alone is 16)");
  NEURN_CHECK(be32(im.data()) == 2051, images_path, ": wrong magic number ", be32(im.data()),
              " (an IDX image file has 2051 = 0x00000803)");
  int64_t n = be32(im.data() + 4), h = be32(im.data() + 8), w = be32(im.data() + 12);
  NEURN_CHECK(h == 28 && w == 28, images_path, ": wrong image size ", h, "x", w, " (MNIST images are 28x28)");
  size_t want = 16 + static_cast<size_t>(n * h * w);
  NEURN_CHECK(im.size() >= want, images_path, ": truncated: the header says ", n, " images of ", h, "x", w, " (", want,
              " bytes) but the file has ", im.size(), " bytes (", (im.size() - 16) / static_cast<size_t>(h * w),
              " whole images)");
  NEURN_CHECK(im.size() == want, images_path, ": oversized: the header says ", n, " images of ", h, "x", w, " (", want,
              " bytes) but the file has ", im.size() - want, " bytes more (", im.size(),
              "); a concatenated or corrupt file");

  std::vector<uint8_t> lb = read_decompressed(labels_path);
  NEURN_CHECK(lb.size() >= 8, labels_path, ": truncated IDX file (", lb.size(), " bytes, the header alone is 8)");
  NEURN_CHECK(be32(lb.data()) == 2049, labels_path, ": wrong magic number ", be32(lb.data()),
              " (an IDX label file has 2049 = 0x00000801)");
  int64_t nl = be32(lb.data() + 4);
  NEURN_CHECK(nl == n, labels_path, ": ", nl, " labels but ", images_path, " has ", n, " images");
  NEURN_CHECK(lb.size() >= 8 + static_cast<size_t>(nl), labels_path, ": truncated: the header says ", nl,
              " labels but the file has ", lb.size() - 8);
  NEURN_CHECK(lb.size() == 8 + static_cast<size_t>(nl), labels_path, ": oversized: the header says ", nl,
              " labels but the file has ", lb.size() - 8 - static_cast<size_t>(nl), " bytes more (", lb.size(),
              " bytes, expected ", 8 + nl, ")");
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint8_t l = lb[8 + static_cast<size_t>(i)];
    NEURN_CHECK(l <= 9, labels_path, ": label out of range at record ", i, ": ", int(l), " (expected 0..9)");
    labels[static_cast<size_t>(i)] = l;
  }
  std::vector<uint8_t> pixels(im.begin() + 16, im.begin() + static_cast<long>(want));
  return Dataset("mnist", split, 1, h, w, std::move(pixels), std::move(labels));
}

// ---- USPS ------------------------------------------------------------------------

Dataset read_usps_text(const std::string& path, const std::string& split) {
  std::vector<uint8_t> bytes = read_decompressed(path);
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  for_each_line(bytes, [&](std::string_view s, int64_t line) {
    auto tok = split_ws(s);
    int64_t rec = static_cast<int64_t>(labels.size());
    NEURN_CHECK(tok.size() == 257, path, ": line ", line + 1, " (record ", rec, ") has ", tok.size(),
                " values (expected a label and 256 pixels, 16x16)");
    double lab;
    NEURN_CHECK(parse_double(tok[0], lab), path, ": line ", line + 1, ": bad label '", tok[0], "'");
    NEURN_CHECK(lab == std::floor(lab) && lab >= 0 && lab <= 9, path, ": label out of range at record ", rec, ": ",
                tok[0], " (expected 0..9)");
    labels.push_back(static_cast<int64_t>(lab));
    for (size_t k = 1; k < 257; ++k) {
      double v;
      NEURN_CHECK(parse_double(tok[k], v), path, ": line ", line + 1, ": bad pixel value '", tok[k], "'");
      NEURN_CHECK(v >= -1.0001 && v <= 1.0001, path, ": record ", rec, ": pixel value ", v, " outside [-1, 1]");
      pixels.push_back(unit_to_u8(v));
    }
  });
  NEURN_CHECK(!labels.empty(), path, ": no records");
  return Dataset("usps", split, 1, 16, 16, std::move(pixels), std::move(labels));
}

Dataset read_usps_libsvm(const std::string& path, const std::string& split) {
  std::vector<uint8_t> bytes = read_decompressed(path);
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  for_each_line(bytes, [&](std::string_view s, int64_t line) {
    auto tok = split_ws(s);
    int64_t rec = static_cast<int64_t>(labels.size());
    NEURN_CHECK(!tok.empty(), path, ": line ", line + 1, " is empty");
    double lab;
    NEURN_CHECK(parse_double(tok[0], lab), path, ": line ", line + 1, ": bad label '", tok[0], "'");
    NEURN_CHECK(lab == std::floor(lab) && lab >= 1 && lab <= 10, path, ": label out of range at record ", rec, ": ",
                tok[0], " (the libsvm USPS labels are 1..10)");
    labels.push_back(static_cast<int64_t>(lab) - 1);
    // Absent features are 0 in libsvm's sparse convention.
    std::vector<double> img(256, 0.0);
    for (size_t k = 1; k < tok.size(); ++k) {
      auto colon = tok[k].find(':');
      double idx, v;
      NEURN_CHECK(colon != std::string_view::npos && parse_double(tok[k].substr(0, colon), idx) &&
                      parse_double(tok[k].substr(colon + 1), v),
                  path, ": line ", line + 1, ": bad feature '", tok[k], "' (expected index:value)");
      NEURN_CHECK(idx >= 1 && idx <= 256 && idx == std::floor(idx), path, ": record ", rec, ": feature index ", idx,
                  " outside 1..256 (USPS images are 16x16)");
      NEURN_CHECK(v >= -1.0001 && v <= 1.0001, path, ": record ", rec, ": pixel value ", v, " outside [-1, 1]");
      img[static_cast<size_t>(idx) - 1] = v;
    }
    for (double v : img) pixels.push_back(unit_to_u8(v));
  });
  NEURN_CHECK(!labels.empty(), path, ": no records");
  return Dataset("usps", split, 1, 16, 16, std::move(pixels), std::move(labels));
}

// ---- SVHN ------------------------------------------------------------------------

// The first n values of a numeric MATLAB variable, whatever its storage type
// (SVHN's y is double in the official files, but other tools save integers).
static std::vector<double> mat_numbers(const matvar_t& var, size_t n, const std::string& path, const char* name) {
  std::vector<double> out(n);
  auto copy = [&](auto zero) {
    using T = decltype(zero);
    NEURN_CHECK(n == 0 || (var.data != nullptr && var.nbytes / sizeof(T) >= n), path, ": ", name, " holds ", var.nbytes,
                " bytes, not the ", n, " values of ", sizeof(T), " bytes it claims");
    const T* src = static_cast<const T*>(var.data);
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<double>(src[i]);
  };
  switch (var.data_type) {
    case MAT_T_DOUBLE: copy(double{}); break;
    case MAT_T_SINGLE: copy(float{}); break;
    case MAT_T_UINT8: copy(uint8_t{}); break;
    case MAT_T_INT8: copy(int8_t{}); break;
    case MAT_T_UINT16: copy(uint16_t{}); break;
    case MAT_T_INT16: copy(int16_t{}); break;
    case MAT_T_UINT32: copy(uint32_t{}); break;
    case MAT_T_INT32: copy(int32_t{}); break;
    case MAT_T_UINT64: copy(uint64_t{}); break;
    case MAT_T_INT64: copy(int64_t{}); break;
    default: NEURN_FAIL(path, ": ", name, " has an unsupported data type ", var.data_type);
  }
  return out;
}

// libmatio trusts the sizes in a file's element tags: a crafted tag made it
// allocate and clear ~1 GB for a 4 KB file (found by fuzz/fuzz_svhn_mat). A
// MATLAB v5 file is therefore walked here first: every element, and every
// sub-element of a matrix, must fit in what holds it, and a compressed
// matrix may not claim more than zlib's largest ratio (1032:1) allows.
namespace {
struct Mat5Walker {
  const std::string& path;
  bool swap = false;
  uint32_t u32(const uint8_t* p) const {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
  }
  // The dimensions of a matrix (its second sub-element, after the array
  // flags) against the bytes it holds. libmatio allocates from the
  // dimensions alone: the data of a numeric class may be stored narrower
  // (a double as uint8), a cell, struct or function handle gets one pointer
  // per element before any element is read (32x32x3x2147483650 made it ask
  // for 0x30000000c000 bytes, found by fuzz_svhn_mat). Every element but a
  // sparse matrix's takes at least one byte of the file, so more elements
  // than `declared` bytes is a lie.
  void dimensions(const uint8_t* p, size_t have, size_t declared, size_t at) const {
    if (have < 24 || u32(p) != 6 || u32(p + 4) != 8) return;  // no array flags: libmatio refuses it
    uint32_t mclass = u32(p + 8) & 0xff;
    uint32_t type = u32(p + 16), n = u32(p + 20);
    const uint8_t* dims = p + 24;
    if (type >> 16) {  // small data element
      n = type >> 16;
      type &= 0xffff;
      dims = p + 20;
    }
    NEURN_CHECK(type == 5 && n % 4 == 0 && n <= 4 * 32, path, ": corrupt MAT file: the variable at byte ", at,
                " has no valid dimensions (element type ", type, ", ", n, " bytes)");
    NEURN_CHECK(static_cast<size_t>(dims - p) + n <= have, path, ": corrupt MAT file: the dimensions of the variable at byte ",
                at, " run past its end");
    std::string shape;
    uint64_t elements = 1;  // saturates above `declared`
    bool empty = false;
    for (uint32_t i = 0; i < n / 4; ++i) {
      auto d = static_cast<int32_t>(u32(dims + 4 * i));
      shape += (i ? "x" : "") + std::to_string(d);
      NEURN_CHECK(d >= 0, path, ": corrupt MAT file: the variable at byte ", at, " has a negative dimension (",
                  shape, ")");
      empty = empty || d == 0;
      elements = std::min<uint64_t>(elements * static_cast<uint64_t>(d), uint64_t(declared) + 1);
    }
    NEURN_CHECK(mclass == 5 /* sparse */ || empty || elements <= declared, path, ": corrupt MAT file: the variable at byte ",
                at, " claims dimensions ", shape, " but holds only ", declared,
                " bytes (libmatio would allocate from the dimensions)");
  }
  // The sub-elements of a matrix whose payload is [p, p + have) of `declared`
  // bytes; a matrix inside it (a cell's element, a struct's field) is walked
  // in turn, to a bounded depth.
  void matrix(const uint8_t* p, size_t have, size_t declared, size_t at, int depth = 0) const {
    NEURN_CHECK(depth < 16, path, ": corrupt MAT file: the variable at byte ", at,
                " nests cells or structs deeper than 16 levels");
    size_t pos = 0;
    while (pos + 8 <= std::min(have, declared)) {
      uint32_t type = u32(p + pos), n = u32(p + pos + 4);
      if (type >> 16) {  // small data element: 2 bytes type, 2 bytes size, 4 bytes data
        pos += 8;
        continue;
      }
      NEURN_CHECK(n <= declared - pos - 8, path, ": corrupt MAT file: a field of the variable at byte ", at,
                  " claims ", n, " bytes but the variable has ", declared - pos - 8, " left");
      if (type == 14 && pos + 8 < have) matrix(p + pos + 8, std::min<size_t>(n, have - pos - 8), n, at, depth + 1);
      pos += 8 + ((static_cast<size_t>(n) + 7) / 8 * 8);
    }
    dimensions(p, std::min(have, declared), declared, at);
  }
  void file(const std::vector<uint8_t>& b) const {
    size_t pos = 128;
    while (pos + 8 <= b.size()) {
      uint32_t type = u32(b.data() + pos), n = u32(b.data() + pos + 4);
      size_t left = b.size() - pos - 8;
      if (type >> 16) {
        pos += 8;
        continue;
      }
      NEURN_CHECK(n <= left, path, ": truncated or corrupt MAT file: the variable at byte ", pos, " claims ", n,
                  " bytes but the file has ", left, " after it");
      const uint8_t* payload = b.data() + pos + 8;
      if (type == 14) {  // miMATRIX
        matrix(payload, n, n, pos);
      } else if (type == 15) {  // miCOMPRESSED: inflate the start to check the matrix header
        uint8_t head[4096];
        z_stream z{};
        NEURN_CHECK(inflateInit(&z) == Z_OK, path, ": zlib init failed");
        z.next_in = const_cast<uint8_t*>(payload);
        z.avail_in = n;
        z.next_out = head;
        z.avail_out = sizeof head;
        int rc = inflate(&z, Z_SYNC_FLUSH);
        size_t got = sizeof head - z.avail_out;
        inflateEnd(&z);
        NEURN_CHECK(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR, path,
                    ": corrupt MAT file: the compressed variable at byte ", pos, " does not inflate");
        if (got >= 8) {
          uint32_t inner = u32(head + 4);
          NEURN_CHECK(static_cast<uint64_t>(inner) <= 1032ull * n + 64, path,
                      ": corrupt MAT file: the compressed variable at byte ", pos, " claims ", inner,
                      " bytes from ", n, " compressed ones");
          if (u32(head) == 14) matrix(head + 8, got - 8, inner, pos);
        }
      }
      pos += 8 + (type == 15 ? static_cast<size_t>(n) : (static_cast<size_t>(n) + 7) / 8 * 8);
    }
  }
};

void check_mat5(const std::string& path) {
  std::vector<uint8_t> b = read_file(path);
  NEURN_CHECK(b.size() >= 128, path, ": not a MATLAB file (", b.size(), " bytes; the header alone is 128)");
  Mat5Walker w{path};
  // libmatio falls back to MATLAB v4 for anything else, whose header sizes
  // it also trusts (a 138-byte file made it allocate 2 GB): SVHN ships v5
  // files, and v7.3 (HDF5) is the only other version accepted.
  w.swap = b[126] == 'M' && b[127] == 'I';
  bool marked = w.swap || (b[126] == 'I' && b[127] == 'M');
  uint16_t version = static_cast<uint16_t>(w.swap ? (b[124] << 8 | b[125]) : (b[125] << 8 | b[124]));
  NEURN_CHECK(marked && (version == 0x0100 || version == 0x0200), path,
              ": not a MATLAB v5 or v7.3 file (its 128-byte header does not end in version 0x0100/0x0200 and 'IM' "
              "or 'MI'; SVHN's .mat files are MATLAB v5)");
  if (version == 0x0100) w.file(b);  // v7.3 is HDF5: libhdf5 reads it
}
}  // namespace

Dataset read_svhn_mat(const std::string& path, const std::string& name, const std::string& split) {
  NEURN_CHECK(file_exists(path), "SVHN file not found: ", path);
  check_mat5(path);
  std::unique_ptr<mat_t, int (*)(mat_t*)> mat(Mat_Open(path.c_str(), MAT_ACC_RDONLY), &Mat_Close);
  NEURN_CHECK(mat, path, ": not a MATLAB file libmatio can open");
  auto var_deleter = [](matvar_t* v) { Mat_VarFree(v); };
  using Var = std::unique_ptr<matvar_t, decltype(var_deleter)>;
  const char* holds = " (SVHN .mat files hold X, 32x32x3xN uint8, and y, Nx1)";
  // Shapes and classes first, from the variables' headers, so that no data
  // is read (allocated) for a variable that is not what SVHN holds; a v7.3
  // (HDF5) file is not walked by check_mat5, and HDF5 may compress too, so
  // what a variable claims is bounded by zlib's largest ratio on the file.
  const uint64_t most_bytes = 1032ull * std::filesystem::file_size(path) + 4096;
  auto elements_of = [&](const matvar_t& v, const char* name) {
    uint64_t e = 1;  // saturates above most_bytes
    std::string dims;
    for (int i = 0; i < v.rank; ++i) {
      dims += (i ? "x" : "") + std::to_string(v.dims[i]);
      if (__builtin_mul_overflow(e, static_cast<uint64_t>(v.dims[i]), &e) || e > most_bytes) e = most_bytes + 1;
    }
    for (int i = 0; i < v.rank; ++i)
      if (v.dims[i] == 0) e = 0;
    size_t width = std::max<size_t>(1, Mat_SizeOfClass(v.class_type));
    NEURN_CHECK(e <= most_bytes / width, path, ": ", name, " is ", dims, " (", width,
                " bytes an element), more than a file of this size can hold");
    return std::pair<int64_t, std::string>(static_cast<int64_t>(e), dims);
  };
  int64_t n = 0;
  {
    Var X(Mat_VarReadInfo(mat.get(), "X"), var_deleter);
    NEURN_CHECK(X, path, ": no variable 'X'", holds);
    auto [elements, dims] = elements_of(*X, "X");
    // A file of one image may be saved as 32x32x3 (MATLAB drops trailing singleton dimensions).
    bool shape_ok = (X->rank == 4 || X->rank == 3) && X->dims[0] == 32 && X->dims[1] == 32 && X->dims[2] == 3;
    NEURN_CHECK(shape_ok, path, ": X is ", dims, " (expected 32x32x3xN)");
    NEURN_CHECK(X->class_type == MAT_C_UINT8 && !X->isComplex, path, ": X has class ", X->class_type,
                " (expected uint8)");
    n = elements / 3072;
    Var y(Mat_VarReadInfo(mat.get(), "y"), var_deleter);
    NEURN_CHECK(y, path, ": no variable 'y'", holds);
    auto [ny, ydims] = elements_of(*y, "y");
    NEURN_CHECK(y->class_type >= MAT_C_DOUBLE && y->class_type <= MAT_C_UINT64, path, ": y has class ",
                y->class_type, " (expected numbers)");
    NEURN_CHECK(ny == n, path, ": y has ", ny, " labels but X has ", n, " images (y is ", ydims, ")");
  }
  Var X(Mat_VarRead(mat.get(), "X"), var_deleter);
  NEURN_CHECK(X, path, ": cannot read variable 'X'", holds);
  Var y(Mat_VarRead(mat.get(), "y"), var_deleter);
  NEURN_CHECK(y, path, ": cannot read variable 'y'", holds);
  NEURN_CHECK(X->class_type == MAT_C_UINT8 && X->data_type == MAT_T_UINT8 && !X->isComplex, path, ": X has class ",
              X->class_type, " (expected uint8)");
  // The headers read again with the data must say the same (libmatio reads them twice).
  NEURN_CHECK(elements_of(*X, "X").first == 3072 * n && elements_of(*y, "y").first == n, path,
              ": X or y changed between its header and its data");
  NEURN_CHECK(y->data != nullptr || n == 0, path, ": y holds no data");
  NEURN_CHECK(!y->isComplex, path, ": y is complex");

  std::vector<double> values = mat_numbers(*y, static_cast<size_t>(n), path, "y");
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double v = values[static_cast<size_t>(i)];
    NEURN_CHECK(v == std::floor(v) && v >= 1 && v <= 10, path, ": label out of range at record ", i, ": ", v,
                " (SVHN labels are 1..10, 10 meaning digit 0)");
    labels[static_cast<size_t>(i)] = static_cast<int64_t>(v) % 10;
  }
  // MATLAB order is column-major: X(h, w, c, n) sits at h + 32 w + 1024 c + 3072 n.
  const uint8_t* src = static_cast<const uint8_t*>(X->data);
  NEURN_CHECK(src != nullptr || n == 0, path, ": X holds no data");
  NEURN_CHECK(X->nbytes >= static_cast<size_t>(n) * 3072, path, ": X holds ", X->nbytes, " bytes, not the ", n,
              " images of 3072 it claims");
  std::vector<uint8_t> pixels(static_cast<size_t>(n) * 3 * 32 * 32);
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c)
      for (int w = 0; w < 32; ++w)
        for (int h = 0; h < 32; ++h)
          pixels[static_cast<size_t>(((i * 3 + c) * 32 + h) * 32 + w)] =
              src[static_cast<size_t>(h + 32 * w + 1024 * c + 3072 * i)];
  return Dataset(name, split, 3, 32, 32, std::move(pixels), std::move(labels));
}

// ---- images ----------------------------------------------------------------------

namespace {
// A PNG's chunks walked before stb_image sees them: each chunk must fit in
// the file and the file must reach IEND, so a truncated or corrupt file is
// named with what is wrong. Empty IDAT chunks (valid PNG) are dropped:
// stb_image copies a chunk's data to its growing buffer with memcpy, and
// before the first non-empty IDAT that buffer is a null pointer, which
// UBSan reports (memcpy(NULL, p, 0) is undefined; found by fuzz_mnistm on
// Debian's stb 0.0~git20220908). Returns the bytes to decode: `bytes`
// itself, or the copy without empty IDATs in `storage`.
const std::vector<uint8_t>& checked_png(const std::vector<uint8_t>& bytes, const std::string& what,
                                        std::vector<uint8_t>& storage) {
  static constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kSignature, 8) != 0) return bytes;  // not a PNG
  bool drop = false;
  size_t pos = 8;
  for (;;) {
    NEURN_CHECK(pos + 12 <= bytes.size(), what, ": cannot decode image (truncated PNG: it ends at byte ",
                bytes.size(), " without an IEND chunk)");
    uint32_t n = be32(bytes.data() + pos);
    NEURN_CHECK(n <= 0x7fffffffu && n <= bytes.size() - pos - 12, what,
                ": cannot decode image (corrupt or truncated PNG: the chunk at byte ", pos, " claims ", n,
                " bytes of data but only ", bytes.size() - pos - 12, " fit before the end of the file)");
    if (std::memcmp(bytes.data() + pos + 4, "IEND", 4) == 0) break;
    drop = drop || (n == 0 && std::memcmp(bytes.data() + pos + 4, "IDAT", 4) == 0);
    pos += 12 + n;
  }
  if (!drop) return bytes;
  storage.assign(bytes.begin(), bytes.begin() + 8);
  for (pos = 8;;) {
    uint32_t n = be32(bytes.data() + pos);
    bool empty_idat = n == 0 && std::memcmp(bytes.data() + pos + 4, "IDAT", 4) == 0;
    if (!empty_idat) storage.insert(storage.end(), bytes.begin() + pos, bytes.begin() + pos + 12 + n);
    if (std::memcmp(bytes.data() + pos + 4, "IEND", 4) == 0) break;
    pos += 12 + n;
  }
  return storage;
}
}  // namespace

std::vector<uint8_t> decode_image(const std::vector<uint8_t>& raw, const std::string& what, int channels, int* height,
                                  int* width) {
  NEURN_CHECK(raw.size() <= static_cast<size_t>(std::numeric_limits<int>::max()), what, ": image file of ",
              raw.size(), " bytes is too large to decode");
  std::vector<uint8_t> storage;
  const std::vector<uint8_t>& bytes = checked_png(raw, what, storage);
  int w = 0, h = 0, c = 0;
  uint8_t* p = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &c, channels);
  NEURN_CHECK(p, what, ": cannot decode image (", stbi_failure_reason(), ")");
  std::vector<uint8_t> out(p, p + static_cast<size_t>(w) * h * channels);
  stbi_image_free(p);
  *height = h;
  *width = w;
  return out;
}

// ---- MNIST-M ---------------------------------------------------------------------

std::vector<std::pair<std::string, int64_t>> read_mnistm_labels(const std::string& labels_file) {
  NEURN_CHECK(file_exists(labels_file), "MNIST-M: missing labels file ", labels_file);
  std::vector<uint8_t> bytes = read_file(labels_file);
  std::vector<std::pair<std::string, int64_t>> out;
  for_each_line(bytes, [&](std::string_view s, int64_t line) {
    auto tok = split_ws(s);
    int64_t rec = static_cast<int64_t>(out.size());
    NEURN_CHECK(tok.size() == 2, labels_file, ": line ", line + 1, " (record ", rec, ") is '", s,
                "' (expected '<file>.png <label>')");
    double lab;
    NEURN_CHECK(parse_double(tok[1], lab), labels_file, ": line ", line + 1, ": bad label '", tok[1], "'");
    NEURN_CHECK(lab == std::floor(lab) && lab >= 0 && lab <= 9, labels_file, ": label out of range at record ", rec,
                ": ", tok[1], " (expected 0..9)");
    NEURN_CHECK(tok[0].find('/') == std::string_view::npos && tok[0].find("..") == std::string_view::npos, labels_file,
                ": line ", line + 1, ": unsafe file name '", tok[0], "'");
    out.emplace_back(std::string(tok[0]), static_cast<int64_t>(lab));
  });
  NEURN_CHECK(!out.empty(), labels_file, ": no records");
  return out;
}

Dataset read_mnistm_folder(const std::string& image_dir, const std::string& labels_file, const std::string& split,
                           int threads) {
  auto entries = read_mnistm_labels(labels_file);
  const int64_t n = static_cast<int64_t>(entries.size());
  std::vector<uint8_t> pixels(static_cast<size_t>(n) * 3 * 32 * 32);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  std::atomic<int64_t> next{0};
  std::mutex err_mu;
  std::exception_ptr err;
  auto work = [&] {
    try {
      for (;;) {
        int64_t i = next.fetch_add(1);
        if (i >= n) break;
        std::string file = path_join(image_dir, entries[static_cast<size_t>(i)].first);
        NEURN_CHECK(file_exists(file), "MNIST-M: missing image ", file, " (record ", i, " of ", labels_file, ")");
        int h, w;
        std::vector<uint8_t> hwc =
            decode_image(read_file(file), file + " (record " + std::to_string(i) + ")", 3, &h, &w);
        NEURN_CHECK(h == 32 && w == 32, file, " (record ", i, "): wrong image size ", h, "x", w,
                    " (MNIST-M images are 32x32)");
        uint8_t* dst = pixels.data() + static_cast<size_t>(i) * 3072;
        for (int p = 0; p < 1024; ++p)
          for (int c = 0; c < 3; ++c) dst[c * 1024 + p] = hwc[static_cast<size_t>(p * 3 + c)];
        labels[static_cast<size_t>(i)] = entries[static_cast<size_t>(i)].second;
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(err_mu);
      if (!err) err = std::current_exception();
      next = n;  // stop the others
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (err) std::rethrow_exception(err);
  return Dataset("mnistm", split, 3, 32, 32, std::move(pixels), std::move(labels));
}

// ---- the decoded cache ------------------------------------------------------------

namespace {
constexpr char kCacheMagic[8] = {'N', 'E', 'U', 'R', 'N', 'U', '8', '\1'};
void put64(std::vector<uint8_t>& b, int64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i)));
}
int64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(p[i]) << (8 * i);
  return static_cast<int64_t>(v);
}
}  // namespace

void write_u8_cache(const std::string& path, const Dataset& ds) {
  std::vector<uint8_t> b(kCacheMagic, kCacheMagic + 8);
  put64(b, ds.size());
  put64(b, ds.channels());
  put64(b, ds.height());
  put64(b, ds.width());
  for (int64_t i = 0; i < ds.size(); ++i) b.push_back(static_cast<uint8_t>(ds.label(i)));
  size_t per = static_cast<size_t>(ds.image_numel());
  b.reserve(b.size() + per * static_cast<size_t>(ds.size()) + 32);
  for (int64_t i = 0; i < ds.size(); ++i) b.insert(b.end(), ds.image(i), ds.image(i) + per);
  Sha256 sha;
  sha.update(b.data(), b.size());
  std::string hex = sha.hex();
  b.insert(b.end(), hex.begin(), hex.end());
  write_file_atomic(path, b.data(), b.size());
}

Dataset read_u8_cache(const std::string& path, const std::string& name, const std::string& split) {
  std::vector<uint8_t> b = read_file(path);
  NEURN_CHECK(b.size() >= 40 + 64 && std::memcmp(b.data(), kCacheMagic, 8) == 0, path,
              ": not a neurn decoded cache (wrong magic or truncated)");
  int64_t n = get64(b.data() + 8), c = get64(b.data() + 16), h = get64(b.data() + 24), w = get64(b.data() + 32);
  NEURN_CHECK(n >= 0 && c > 0 && h > 0 && w > 0 && c <= 4 && h <= 4096 && w <= 4096, path, ": bad header (n ", n,
              ", c ", c, ", h ", h, ", w ", w, ")");
  // n is bounded by the file before it is multiplied: a crafted count cannot overflow.
  const int64_t per = 1 + c * h * w;
  NEURN_CHECK(n <= static_cast<int64_t>(b.size()) / per, path, ": truncated (the header says ", n, " images of ", c,
              "x", h, "x", w, ", the file has ", b.size(), " bytes)");
  size_t body = 40 + static_cast<size_t>(n) * static_cast<size_t>(per);
  NEURN_CHECK(b.size() >= body + 64, path, ": truncated (", b.size(), " bytes, expected ", body + 64, ")");
  NEURN_CHECK(b.size() == body + 64, path, ": oversized (", b.size(), " bytes, expected ", body + 64,
              " for the ", n, " images its header announces)");
  Sha256 sha;
  sha.update(b.data(), body);
  NEURN_CHECK(sha.hex() == std::string(b.begin() + static_cast<long>(body), b.end()), path,
              ": checksum mismatch (the cache is corrupt; delete it and run `neurn data prepare`)");
  std::vector<int64_t> labels(b.begin() + 40, b.begin() + 40 + n);
  for (int64_t i = 0; i < n; ++i)
    NEURN_CHECK(labels[static_cast<size_t>(i)] <= 9, path, ": label out of range at record ", i);
  std::vector<uint8_t> pixels(b.begin() + 40 + n, b.begin() + static_cast<long>(body));
  return Dataset(name, split, c, h, w, std::move(pixels), std::move(labels));
}

}  // namespace neurn::data
