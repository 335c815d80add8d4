#pragma once
// A small JSON reader for the safetensors header: objects, arrays, strings
// (with escapes), numbers, true/false/null. Values keep their source order.
#include <cstdint>
#include <memory>
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

// Throws neurn::Error naming `source` and the offset of the problem.
Value parse(const std::string& text, const std::string& source);

// A JSON string literal (quoted, escaped).
std::string quote(const std::string& s);

}  // namespace neurn::json
