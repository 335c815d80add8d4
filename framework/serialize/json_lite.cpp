#include "framework/serialize/json_lite.h"

#include <nlohmann/json.hpp>

#include "framework/error.h"

namespace neurn::json {

const Value* Value::find(const std::string& key) const {
  for (auto& [k, v] : members)
    if (k == key) return &v;
  return nullptr;
}

namespace {

Value convert(const nlohmann::ordered_json& j) {
  Value v;
  if (j.is_null()) {
    v.kind = Value::Kind::Null;
  } else if (j.is_boolean()) {
    v.kind = Value::Kind::Bool;
    v.boolean = j.get<bool>();
  } else if (j.is_number()) {
    v.kind = Value::Kind::Number;
    v.number = j.get<double>();
    v.text = j.dump();  // exact for integers
  } else if (j.is_string()) {
    v.kind = Value::Kind::String;
    v.text = j.get<std::string>();
  } else if (j.is_array()) {
    v.kind = Value::Kind::Array;
    for (auto& x : j) v.items.push_back(convert(x));
  } else {
    v.kind = Value::Kind::Object;
    for (auto& [k, x] : j.items()) v.members.emplace_back(k, convert(x));
  }
  return v;
}

}  // namespace

Value parse(const std::string& text, const std::string& source) {
  try {
    return convert(nlohmann::ordered_json::parse(text));
  } catch (const nlohmann::json::exception& e) {
    NEURN_FAIL(source, ": bad JSON (", e.what(), ")");
  }
}

std::string quote(const std::string& s) { return nlohmann::json(s).dump(); }

}  // namespace neurn::json
