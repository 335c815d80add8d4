#include "framework/serialize/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "framework/io/atomic_file.h"

namespace neurn {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

const char* st_dtype(DType t) {
  switch (t) {
    case DType::Float32:
      return "F32";
    case DType::Float64:
      return "F64";
    case DType::Int64:
      return "I64";
    case DType::UInt8:
      return "U8";
    case DType::BFloat16:
      return "BF16";
    case DType::Float16:
      return "F16";
  }
  return "?";
}

struct FileDType {
  size_t size;  // bytes per element in the file
  DType dtype;  // what it becomes in memory
};

bool parse_st_dtype(const std::string& s, FileDType& out) {
  static const std::pair<const char*, FileDType> table[] = {
      {"F32", {4, DType::Float32}}, {"F64", {8, DType::Float64}}, {"I64", {8, DType::Int64}},
      {"U8", {1, DType::UInt8}},    {"BOOL", {1, DType::UInt8}},  {"BF16", {2, DType::Float32}},
      {"F16", {2, DType::Float32}}, {"I32", {4, DType::Int64}},   {"I16", {2, DType::Int64}},
      {"I8", {1, DType::Int64}},
  };
  for (auto& [name, d] : table)
    if (s == name) return out = d, true;
  return false;
}

float bf16_to_float(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float f16_to_float(uint16_t h) {
  uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);  // zero or subnormal
  } else if (exp == 31) {
    v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400), static_cast<int>(exp) - 25);
  }
  return sign ? -v : v;
}

// Widens the file's elements into the tensor's memory.
void convert_in(const std::string& st, const char* src, Tensor& t) {
  int64_t n = t.numel();
  if (st == "BF16" || st == "F16") {
    float* dst = t.data<float>();
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      dst[i] = st == "BF16" ? bf16_to_float(h) : f16_to_float(h);
    }
  } else if (st == "I32" || st == "I16" || st == "I8") {
    int64_t* dst = t.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      if (st == "I32") {
        int32_t v;
        std::memcpy(&v, src + 4 * i, 4);
        dst[i] = v;
      } else if (st == "I16") {
        int16_t v;
        std::memcpy(&v, src + 2 * i, 2);
        dst[i] = v;
      } else {
        dst[i] = static_cast<int8_t>(src[i]);
      }
    }
  } else if (n > 0) {
    std::memcpy(t.raw_data(), src, t.nbytes());
  }
}

using Json = nlohmann::ordered_json;

// A non-negative integer that fits in uint64 (nlohmann keeps larger ones as
// doubles, which are refused here like fractions and negatives).
uint64_t json_uint(const Json& v, const std::string& what, const std::string& source, const std::string& tensor) {
  NEURN_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), source, ": tensor '",
              tensor, "': ", what, " must be a non-negative integer below 2^64, got ", v.dump());
  return v.get<uint64_t>();
}

// The header as JSON; a key twice in one object is an error (a JSON reader
// would keep one of them silently, and which one is not specified).
Json parse_header(const std::string& text, const std::string& source) {
  std::vector<std::set<std::string>> keys;  // per open object
  auto cb = [&](int depth, Json::parse_event_t ev, Json& parsed) {
    if (ev == Json::parse_event_t::object_start) keys.emplace_back();
    if (ev == Json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (ev == Json::parse_event_t::key && !keys.empty()) {
      std::string k = parsed.get<std::string>();
      NEURN_CHECK(keys.back().insert(k).second, source, ": the ", depth == 1 ? "tensor" : "key", " '", k,
                  "' appears twice in the header");
    }
    return true;
  };
  try {
    return Json::parse(text, cb);
  } catch (const Json::exception& e) {
    NEURN_FAIL(source, ": bad JSON header (", e.what(), ")");
  }
}

}  // namespace

std::string encode_safetensors(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  std::set<std::string> seen;
  Json header = Json::object();
  if (!metadata.empty()) {
    Json m = Json::object();
    for (auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  std::vector<Tensor> host;
  uint64_t offset = 0;
  for (auto& [name, t] : tensors) {
    NEURN_CHECK(!name.empty() && name != "__metadata__", "save_safetensors: invalid tensor name '", name, "'");
    NEURN_CHECK(seen.insert(name).second, "save_safetensors: the name '", name, "' appears twice");
    NEURN_CHECK(t.defined(), "save_safetensors: tensor '", name, "' is undefined");
    NEURN_CHECK(!t.device().is_meta(), "save_safetensors: tensor '", name, "' is on the meta device and has no data");
    Tensor h = t.detach().cpu().contiguous();  // a view (a slice of a weight) is written packed
    uint64_t bytes = h.nbytes();
    header[name] = {{"dtype", st_dtype(h.dtype())}, {"shape", h.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    host.push_back(h);
  }
  std::string hs;
  try {
    hs = header.dump();
  } catch (const Json::exception& e) {  // a name that is not UTF-8
    NEURN_FAIL("save_safetensors: cannot write the header (", e.what(), ")");
  }
  hs.append((8 - hs.size() % 8) % 8, ' ');  // the data block starts 8-byte aligned
  std::string out;
  out.reserve(8 + hs.size() + offset);
  uint64_t n = hs.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += hs;
  for (auto& h : host)
    if (h.numel()) out.append(static_cast<const char*>(h.raw_data()), h.nbytes());
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Through the durable writer: a crash, a kill or a full disk leaves the
  // previous file (weights, a NAS subnet, a supernet) under `path`, never a
  // torn one, and the new file survives a power cut once this returns.
  io::write_file_atomic(path, encode_safetensors(tensors, metadata));
}

NamedTensors decode_safetensors(const std::string& bytes, const std::string& source,
                                std::map<std::string, std::string>* metadata) {
  NEURN_CHECK(bytes.size() >= 8, source, ": not a safetensors file (", bytes.size(),
              " bytes; expected at least the 8-byte header length)");
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  NEURN_CHECK(n <= bytes.size() - 8, source, ": header length ", n, " exceeds the file (", bytes.size(),
              " bytes): truncated, or not a safetensors file");
  Json root = parse_header(bytes.substr(8, n), source);
  NEURN_CHECK(root.is_object(), source, ": the header is not a JSON object");
  uint64_t data_size = bytes.size() - 8 - n;
  const char* data = bytes.data() + 8 + n;

  struct Entry {
    std::string name, st;
    Shape shape;
    uint64_t begin, end;
    FileDType fd;
  };
  std::vector<Entry> entries;
  for (auto& [name, v] : root.items()) {
    if (name == "__metadata__") {
      NEURN_CHECK(v.is_object(), source, ": __metadata__ must be an object");
      for (auto& [k, mv] : v.items()) {
        NEURN_CHECK(mv.is_string(), source, ": __metadata__ value of '", k, "' is not a string");
        if (metadata) (*metadata)[k] = mv.get<std::string>();
      }
      continue;
    }
    NEURN_CHECK(v.is_object(), source, ": entry '", name, "' is not an object");
    NEURN_CHECK(v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"), source, ": entry '", name,
                "' needs dtype, shape and data_offsets");
    const Json& dt = v["dtype"];
    const Json& shape = v["shape"];
    const Json& offs = v["data_offsets"];
    Entry e;
    e.name = name;
    NEURN_CHECK(dt.is_string(), source, ": tensor '", name, "': dtype must be a string, got ", dt.dump());
    e.st = dt.get<std::string>();
    NEURN_CHECK(parse_st_dtype(e.st, e.fd), source, ": tensor '", name, "' has dtype ", e.st,
                ", which neurn does not read (F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
    NEURN_CHECK(shape.is_array(), source, ": tensor '", name, "': shape must be an array, got ", shape.dump());
    // The element and byte counts in 64 bits without wrapping: a crafted
    // shape whose product wraps to a small number would otherwise match a
    // small range and allocate the real, huge shape.
    uint64_t numel = 1;
    bool fits = true;
    for (auto& d : shape) {
      uint64_t dim = json_uint(d, "a dimension", source, name);
      fits = fits && dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
             !__builtin_mul_overflow(numel, dim, &numel);
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t want = 0;
    fits = fits && numel <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
           !__builtin_mul_overflow(numel, static_cast<uint64_t>(e.fd.size), &want);
    if (!fits) {
      std::string dims;
      for (auto& d : shape) dims += (dims.empty() ? "" : ", ") + d.dump();
      NEURN_FAIL(source, ": tensor '", name, "': shape [", dims, "] has too many elements (or bytes) for 64 bits");
    }
    NEURN_CHECK(offs.is_array() && offs.size() == 2, source, ": tensor '", name,
                "': data_offsets must be [begin, end], got ", offs.dump());
    e.begin = json_uint(offs[0], "data_offsets", source, name);
    e.end = json_uint(offs[1], "data_offsets", source, name);
    NEURN_CHECK(e.begin <= e.end && e.end <= data_size, source, ": tensor '", name, "' spans bytes [", e.begin, ", ",
                e.end, ") but the data block holds ", data_size, " bytes (truncated file?)");
    NEURN_CHECK(e.end - e.begin == want, source, ": tensor '", name, "' of shape ", shape_str(e.shape), " and dtype ",
                e.st, " needs ", want, " bytes, its offsets give ", e.end - e.begin);
    entries.push_back(std::move(e));
  }
  // The format's rule: the data block is covered exactly, no overlap, no
  // hole, nothing after the last tensor (so no bytes go unaccounted for).
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  if (!entries.empty())
    NEURN_CHECK(entries[0].begin == 0, source, ": the first tensor '", entries[0].name, "' starts at byte ",
                entries[0].begin, ", not 0 (the data block may not have holes)");
  for (size_t i = 1; i < entries.size(); ++i) {
    const Entry &a = entries[i - 1], &b = entries[i];
    NEURN_CHECK(b.begin >= a.end && !(b.begin == a.begin && a.begin != a.end), source, ": tensors '", a.name,
                "' [", a.begin, ", ", a.end, ") and '", b.name, "' [", b.begin, ", ", b.end, ") overlap");
    NEURN_CHECK(b.begin == a.end, source, ": a gap of ", b.begin - a.end, " bytes between tensors '", a.name, "' and '",
                b.name, "' (the data block may not have holes)");
  }
  uint64_t covered = entries.empty() ? 0 : entries.back().end;
  if (covered != data_size) {
    if (entries.empty())
      NEURN_FAIL(source, ": ", data_size, " bytes of data but no tensor in the header");
    NEURN_FAIL(source, ": ", data_size - covered, " bytes after the last tensor '", entries.back().name,
               "' (the data block must end where the last tensor does)");
  }
  NamedTensors out;
  for (auto& e : entries) {
    Tensor t = Tensor::empty(e.shape, {e.fd.dtype, Device::cpu(), false});
    convert_in(e.st, data + e.begin, t);
    out.emplace_back(e.name, t);
  }
  return out;
}

NamedTensors load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  NEURN_CHECK(f.good(), "load_safetensors: cannot open '", path, "'");
  std::string bytes(static_cast<size_t>(f.tellg()), '\0');
  f.seekg(0);
  f.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  NEURN_CHECK(f.good(), "load_safetensors: reading '", path, "' failed");
  return decode_safetensors(bytes, path, metadata);
}

Tensor find_tensor(const NamedTensors& tensors, const std::string& name, const std::string& source) {
  for (auto& [n, t] : tensors)
    if (n == name) return t;
  std::string names;
  for (size_t i = 0; i < tensors.size() && i < 10; ++i) names += (i ? ", " : "") + tensors[i].first;
  if (tensors.size() > 10) names += ", ...";
  NEURN_FAIL(source, ": no tensor named '", name, "' (it holds ", tensors.size(), ": ", names, ")");
}

}  // namespace neurn
