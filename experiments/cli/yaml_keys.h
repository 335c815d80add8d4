#pragma once
// Reading the NAS commands' YAML configs (nas spos, nas autoformer): a typed
// value with a default, and a check that a mapping holds only known keys.
// Errors name the file and section (`where`) and the key.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>
#include <vector>

#include "framework/error.h"

namespace neurn::cli {

template <typename T>
T yaml_get(const YAML::Node& n, const char* key, T def, const std::string& where) {
  if (!n || !n[key]) return def;
  try {
    return n[key].as<T>();
  } catch (const YAML::Exception&) {
    NEURN_FAIL(where, ": ", key, " has the wrong type (", YAML::Dump(n[key]), ")");
  }
}

inline void yaml_only_keys(const YAML::Node& n, const std::vector<std::string>& keys, const std::string& where) {
  if (!n) return;
  NEURN_CHECK(n.IsMap(), where, " must be a mapping");
  for (auto it : n) {
    std::string k = it.first.as<std::string>();
    NEURN_CHECK(std::find(keys.begin(), keys.end(), k) != keys.end(), where, ": unknown key '", k, "'");
  }
}

}  // namespace neurn::cli
