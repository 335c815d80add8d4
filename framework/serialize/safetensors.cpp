#include "framework/serialize/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "framework/serialize/json_lite.h"

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

uint64_t json_uint(const json::Value& v, const std::string& what, const std::string& source) {
  NEURN_CHECK(v.kind == json::Value::Kind::Number && v.number >= 0 && std::floor(v.number) == v.number &&
                  v.text.find_first_of(".eE-") == std::string::npos,
              source, ": ", what, " must be a non-negative integer, got '", v.text, "'");
  return std::stoull(v.text);
}

}  // namespace

std::string encode_safetensors(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  std::set<std::string> seen;
  std::ostringstream header;
  header << "{";
  bool first = true;
  if (!metadata.empty()) {
    header << json::quote("__metadata__") << ":{";
    bool f2 = true;
    for (auto& [k, v] : metadata) {
      header << (f2 ? "" : ",") << json::quote(k) << ":" << json::quote(v);
      f2 = false;
    }
    header << "}";
    first = false;
  }
  std::vector<Tensor> host;
  uint64_t offset = 0;
  for (auto& [name, t] : tensors) {
    NEURN_CHECK(!name.empty() && name != "__metadata__", "save_safetensors: invalid tensor name '", name, "'");
    NEURN_CHECK(seen.insert(name).second, "save_safetensors: the name '", name, "' appears twice");
    NEURN_CHECK(t.defined(), "save_safetensors: tensor '", name, "' is undefined");
    NEURN_CHECK(!t.device().is_meta(), "save_safetensors: tensor '", name, "' is on the meta device and has no data");
    Tensor h = t.detach().cpu();
    header << (first ? "" : ",") << json::quote(name) << ":{\"dtype\":\"" << st_dtype(h.dtype()) << "\",\"shape\":[";
    for (size_t i = 0; i < h.shape().size(); ++i) header << (i ? "," : "") << h.shape()[i];
    header << "],\"data_offsets\":[" << offset << "," << offset + h.nbytes() << "]}";
    offset += h.nbytes();
    host.push_back(h);
    first = false;
  }
  header << "}";
  std::string hs = header.str();
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
  std::string bytes = encode_safetensors(tensors, metadata);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  NEURN_CHECK(f.good(), "save_safetensors: cannot open '", path, "' for writing");
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  NEURN_CHECK(f.good(), "save_safetensors: writing '", path, "' failed (disk full?)");
}

NamedTensors decode_safetensors(const std::string& bytes, const std::string& source,
                                std::map<std::string, std::string>* metadata) {
  NEURN_CHECK(bytes.size() >= 8, source, ": not a safetensors file (", bytes.size(),
              " bytes; expected at least the 8-byte header length)");
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  NEURN_CHECK(n <= bytes.size() - 8, source, ": header length ", n, " exceeds the file (", bytes.size(),
              " bytes): truncated, or not a safetensors file");
  std::string hs = bytes.substr(8, n);
  json::Value root = json::parse(hs, source);
  NEURN_CHECK(root.kind == json::Value::Kind::Object, source, ": the header is not a JSON object");
  uint64_t data_size = bytes.size() - 8 - n;
  const char* data = bytes.data() + 8 + n;

  struct Entry {
    std::string name, st;
    Shape shape;
    uint64_t begin, end;
    FileDType fd;
  };
  std::vector<Entry> entries;
  for (auto& [name, v] : root.members) {
    if (name == "__metadata__") {
      NEURN_CHECK(v.kind == json::Value::Kind::Object, source, ": __metadata__ must be an object");
      for (auto& [k, mv] : v.members) {
        NEURN_CHECK(mv.kind == json::Value::Kind::String, source, ": __metadata__ value of '", k, "' is not a string");
        if (metadata) (*metadata)[k] = mv.text;
      }
      continue;
    }
    NEURN_CHECK(v.kind == json::Value::Kind::Object, source, ": entry '", name, "' is not an object");
    const json::Value* dt = v.find("dtype");
    const json::Value* shape = v.find("shape");
    const json::Value* offs = v.find("data_offsets");
    NEURN_CHECK(dt && shape && offs, source, ": entry '", name, "' needs dtype, shape and data_offsets");
    Entry e;
    e.name = name;
    NEURN_CHECK(dt->kind == json::Value::Kind::String, source, ": dtype of '", name, "' is not a string");
    e.st = dt->text;
    NEURN_CHECK(parse_st_dtype(e.st, e.fd), source, ": tensor '", name, "' has dtype ", e.st,
                ", which neurn does not read (F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
    NEURN_CHECK(shape->kind == json::Value::Kind::Array, source, ": shape of '", name, "' is not an array");
    for (auto& d : shape->items)
      e.shape.push_back(static_cast<int64_t>(json_uint(d, "a dimension of '" + name + "'", source)));
    NEURN_CHECK(offs->kind == json::Value::Kind::Array && offs->items.size() == 2, source, ": data_offsets of '", name,
                "' must be [begin, end]");
    e.begin = json_uint(offs->items[0], "data_offsets of '" + name + "'", source);
    e.end = json_uint(offs->items[1], "data_offsets of '" + name + "'", source);
    NEURN_CHECK(e.begin <= e.end && e.end <= data_size, source, ": tensor '", name, "' spans bytes [", e.begin, ", ",
                e.end, ") but the data block holds ", data_size, " bytes (truncated file?)");
    uint64_t want = static_cast<uint64_t>(shape_numel(e.shape)) * e.fd.size;
    NEURN_CHECK(e.end - e.begin == want, source, ": tensor '", name, "' of shape ", shape_str(e.shape), " and dtype ",
                e.st, " needs ", want, " bytes, its offsets give ", e.end - e.begin);
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < entries.size(); ++i)
    NEURN_CHECK(entries[i].begin >= entries[i - 1].end, source, ": tensors '", entries[i - 1].name, "' and '",
                entries[i].name, "' overlap");
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
