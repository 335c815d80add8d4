// safetensors encoding and decoding (round trips, the dtypes other writers
// use, malformed files) and loading a Module's state strictly and not.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "gradcheck.h"
#include "layers/layers.h"

using namespace neurn;

namespace {
// A safetensors file from a header and raw data, as another writer makes it.
std::string make_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}
template <typename T>
std::string raw(std::vector<T> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}
std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("neurn_test_" + name)).string();
}
}  // namespace

TEST_CASE("safetensors round trip: names, shapes, dtypes, values, metadata") {
  NamedTensors in = {
      {"conv.weight", from_vector<float>({1.5f, -2, 3, 4, 5, 6}, {2, 3})},
      {"bn.num_batches_tracked", from_vector<int64_t>({42}, {})},
      {"double", from_vector<double>({0.1, 0.2}, {2})},
      {"empty", zeros({0, 3})},
  };
  std::string bytes = encode_safetensors(in, {{"format", "pt"}});
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);  // data block aligned
  CHECK(bytes.substr(8, 1) == "{");
  std::map<std::string, std::string> meta;
  NamedTensors out = decode_safetensors(bytes, "mem", &meta);
  REQUIRE(out.size() == 4);
  CHECK(meta["format"] == "pt");
  CHECK(find_tensor(out, "conv.weight", "mem").to_vector<float>() == std::vector<float>{1.5f, -2, 3, 4, 5, 6});
  CHECK(find_tensor(out, "conv.weight", "mem").shape() == Shape{2, 3});
  Tensor nbt = find_tensor(out, "bn.num_batches_tracked", "mem");
  CHECK(nbt.dtype() == DType::Int64);
  CHECK(nbt.shape() == Shape{});
  CHECK(nbt.item() == 42);
  CHECK(find_tensor(out, "double", "mem").to_vector<double>() == std::vector<double>{0.1, 0.2});
  CHECK(find_tensor(out, "empty", "mem").shape() == Shape{0, 3});
  CHECK_THROWS_CONTAINING(find_tensor(out, "fc.weight", "mem"), "mem: no tensor named 'fc.weight'");

  std::string path = temp_path("roundtrip.safetensors");
  save_safetensors(path, in);
  CHECK(load_safetensors(path).size() == 4);
  std::remove(path.c_str());
  CHECK_THROWS_CONTAINING(load_safetensors(path), "cannot open");
  CHECK_THROWS_CONTAINING(encode_safetensors({{"a", zeros({1})}, {"a", zeros({1})}}), "appears twice");
  CHECK_THROWS_CONTAINING(encode_safetensors({{"m", zeros({1}, {.device = Device::meta()})}}), "meta device");
}

TEST_CASE("safetensors written by others: BF16, F16, I32, BOOL, unordered entries, escapes") {
  // bf16 1.0 = 0x3F80, -2.5 = 0xC020; f16 1.0 = 0x3C00, -0.5 = 0xB800, 65504 = 0x7BFF, 2^-24 = 0x0001
  std::string data = raw<uint16_t>({0x3F80, 0xC020}) + raw<uint16_t>({0x3C00, 0xB800, 0x7BFF, 0x0001}) +
                     raw<int32_t>({-7, 9}) + std::string("\x01\x00", 2);
  std::string header = R"({"f16":{"dtype":"F16","shape":[4],"data_offsets":[4,12]},)"
                       R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},)"
                       R"("i\u00e9":{"dtype":"I32","shape":[1,2],"data_offsets":[12,20]},)"
                       R"("mask":{"dtype":"BOOL","shape":[2],"data_offsets":[20,22]}})";
  NamedTensors t = decode_safetensors(make_file(header, data), "other");
  REQUIRE(t.size() == 4);
  CHECK(t[0].first == "b");  // in the order of the data
  CHECK(t[0].second.to_vector<float>() == std::vector<float>{1.0f, -2.5f});
  CHECK(t[1].second.to_vector<float>() == std::vector<float>{1.0f, -0.5f, 65504.0f, std::ldexp(1.0f, -24)});
  CHECK(t[2].first == "i\xc3\xa9");
  CHECK(t[2].second.dtype() == DType::Int64);
  CHECK(t[2].second.to_vector<int64_t>() == std::vector<int64_t>{-7, 9});
  CHECK(t[3].second.dtype() == DType::UInt8);
}

TEST_CASE("malformed safetensors files are errors naming the problem") {
  std::string ok_header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string data = raw<float>({1, 2});
  CHECK(decode_safetensors(make_file(ok_header, data), "f").size() == 1);
  CHECK_THROWS_CONTAINING(decode_safetensors("abc", "f.safetensors"), "f.safetensors: not a safetensors file");
  CHECK_THROWS_CONTAINING(decode_safetensors(make_file(ok_header, data).substr(0, 20), "f"), "exceeds the file");
  CHECK_THROWS_CONTAINING(decode_safetensors(make_file(ok_header, data.substr(0, 4)), "f"), "truncated file");
  CHECK_THROWS_CONTAINING(decode_safetensors(make_file(R"({"w":{"dtype":"F32","shape":[2],)", data), "f"),
                          "f: bad JSON header");
  CHECK_THROWS_CONTAINING(
      decode_safetensors(make_file(R"({"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", data), "f"),
      "dtype C64");
  CHECK_THROWS_CONTAINING(
      decode_safetensors(make_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data), "f"),
      "needs 12 bytes, its offsets give 8");
  CHECK_THROWS_CONTAINING(decode_safetensors(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                                       data),
                                             "f"),
                          "overlap");
  CHECK_THROWS_CONTAINING(
      decode_safetensors(make_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data), "f"),
      "non-negative integer");
}

// Issue #16: crafted headers. Each of these was accepted (or crashed, or threw
// something no command caught) before the parser moved to nlohmann-json.
TEST_CASE("crafted safetensors headers: overflowing shapes, offsets past the end, holes, overlaps, duplicates") {
  std::string data = raw<float>({1, 2});
  auto decode = [&](const std::string& header, const std::string& d) { return decode_safetensors(make_file(header, d), "x.st"); };
  // 2^32 * 2^32 elements wrap to 0 in 64 bits, which matched the empty range [0, 0).
  CHECK_THROWS_CONTAINING(decode(R"({"big":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", ""),
                          "x.st: tensor 'big': shape [4294967296, 4294967296] has too many elements");
  // 2^62 elements of 4 bytes: the element count fits, the byte count wraps to 0.
  CHECK_THROWS_CONTAINING(decode(R"({"big":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", ""),
                          "x.st: tensor 'big'");
  // A dimension past int64 (but a valid uint64).
  CHECK_THROWS_CONTAINING(decode(R"({"big":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]}})", ""),
                          "x.st: tensor 'big'");
  // Offsets past uint64 (JSON numbers are unbounded).
  CHECK_THROWS_CONTAINING(decode(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,100000000000000000000000]}})", data),
                          "x.st: tensor 'w': data_offsets");
  CHECK_THROWS_CONTAINING(decode(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}})", data),
                          "x.st: tensor 'w' spans bytes [0, 18446744073709551615)");
  CHECK_THROWS_CONTAINING(decode(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", data), "x.st: tensor 'w'");
  // A hole between two tensors, and bytes after the last one: the data block must be covered exactly.
  std::string three = raw<float>({1, 2, 3});
  CHECK_THROWS_CONTAINING(decode(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                 three),
                          "x.st: a gap of 4 bytes between tensors 'a' and 'b'");
  CHECK_THROWS_CONTAINING(decode(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data),
                          "x.st: 4 bytes after the last tensor 'a'");
  CHECK_THROWS_CONTAINING(decode(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data),
                          "x.st: the first tensor 'a' starts at byte 4");
  // Same start (an overlap the sorted check saw only by its end).
  CHECK_THROWS_CONTAINING(decode(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                 raw<float>({1})),
                          "overlap");
  // A name twice: a JSON reader keeps one silently.
  CHECK_THROWS_CONTAINING(decode(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                 R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                 data),
                          "x.st: the tensor 'a' appears twice");
  // dtype and shape of the wrong JSON type, named with the tensor.
  CHECK_THROWS_CONTAINING(decode(R"({"w":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", data),
                          "x.st: tensor 'w': dtype");
  CHECK_THROWS_CONTAINING(decode(R"({"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", data),
                          "x.st: tensor 'w': shape");
  CHECK_THROWS_CONTAINING(decode(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", data),
                          "x.st: tensor 'w': a dimension");
  CHECK_THROWS_CONTAINING(decode(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", data),
                          "x.st: tensor 'w': data_offsets");
  CHECK_THROWS_CONTAINING(decode(R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", data),
                          "x.st: tensor 'w' of shape (2,) and dtype F64 needs 16 bytes");
  CHECK_THROWS_CONTAINING(decode(R"([1,2])", data), "x.st: the header is not a JSON object");
  CHECK_THROWS_CONTAINING(decode(R"({"__metadata__":{"k":1}})", ""), "x.st: __metadata__ value of 'k'");
}

TEST_CASE("load_state: strict loads everything or nothing; non-strict for a new head") {
  auto make = [](int64_t classes) {
    auto m = std::make_shared<Sequential>();
    m->add("conv", std::make_shared<Conv2d>(3, 4, 3));
    m->add("bn", std::make_shared<BatchNorm2d>(4));
    m->add("fc", std::make_shared<Linear>(4, classes));
    return m;
  };
  Generator g1(1), g2(2);
  std::shared_ptr<Sequential> src, dst, other;
  {
    ParamScope s({}, &g1);
    src = make(1000);
  }
  {
    ParamScope s({}, &g2);
    dst = make(1000);
    other = make(10);
  }
  src->get("bn")->buffer("running_var").fill_(3.0);
  src->get("bn")->buffer("num_batches_tracked").fill_(17);
  std::string path = temp_path("state.safetensors");
  save_state(*src, path);

  LoadReport r = load_state_file(*dst, path);
  CHECK(r.ok());
  CHECK(r.loaded.size() == 9);
  CHECK(r.str() == "all 9 tensors loaded");
  auto a = src->state_dict(), b = dst->state_dict();
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].second.to_vector<double>() == b[i].second.to_vector<double>());
  CHECK(dst->get("bn")->buffer("num_batches_tracked").item() == 17);
  CHECK(dst->get("conv")->param("weight").requires_grad());  // still a trainable leaf

  // a 10-class model: strict refuses and changes nothing
  auto before = other->get("conv")->param("weight").to_vector<float>();
  CHECK_THROWS_CONTAINING(load_state_file(*other, path), "fc.weight: file (1000, 4), model (10, 4)");
  CHECK(other->get("conv")->param("weight").to_vector<float>() == before);
  // non-strict: the backbone loads, the head stays
  LoadReport nr = load_state_file(*other, path, false);
  CHECK_FALSE(nr.ok());
  CHECK(nr.mismatched.size() == 2);
  CHECK(nr.loaded.size() == 7);
  CHECK(other->get("conv")->param("weight").to_vector<float>() == src->get("conv")->param("weight").to_vector<float>());

  // missing and unexpected keys are named
  NamedTensors partial = src->state_dict();
  partial.erase(partial.begin());  // conv.weight
  partial.push_back({"head.weight", zeros({2})});
  try {
    load_state(*dst, partial, true, "partial");
    FAIL("expected an error");
  } catch (const Error& e) {
    std::string m = e.what();
    CHECK(m.find("missing (in the model, not in the file):\n  conv.weight") != std::string::npos);
    CHECK(m.find("unexpected (in the file, not in the model):\n  head.weight") != std::string::npos);
  }
  std::remove(path.c_str());
}
