#pragma once
// A read-only JSON tree with values in source order, for the callers that
// walk one (nas/autoformer/search_space.cpp, the AutoFormer CLI). Parsing and
// quoting are nlohmann-json's; new code should use nlohmann::ordered_json
// directly (framework/serialize/safetensors.cpp does).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace neurn::json {

struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object } kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  std::string text;                                    // the string, or a number's literal (exact integers)
  std::vector<Value> items;                            // Array
  std::vector<std::pair<std::string, Value>> members;  // Object, in order

  const Value* find(const std::string& key) const;
};

// Throws neurn::Error naming `source` and nlohmann-json's message.
Value parse(const std::string& text, const std::string& source);

// A JSON string literal (quoted, escaped).
std::string quote(const std::string& s);

}  // namespace neurn::json
