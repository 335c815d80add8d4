#pragma once
// What the model tests against PyTorch share: the reference files a Python
// script writes (made once per version of the script, in the temp
// directory), and the relative error they are compared with.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "framework/tensor.h"

namespace neurn::testing {

// Runs `/usr/bin/python3 tests/models/SCRIPT ARGS DIR` once for this
// script's contents and returns DIR (under the temp directory, named by
// `prefix` and a hash of the script); later calls and later test runs reuse it.
inline std::string python_reference_dir(const std::string& script_name, const std::string& prefix,
                                        const std::string& args = "") {
  std::string script = std::string(NEURN_SOURCE_DIR) + "/tests/models/" + script_name;
  std::ifstream f(script);
  std::stringstream ss;
  ss << f.rdbuf();
  std::ostringstream name;
  name << prefix << std::hex << std::hash<std::string>{}(ss.str());
  std::filesystem::path d = std::filesystem::temp_directory_path() / name.str();
  if (!std::filesystem::exists(d / "complete")) {
    std::filesystem::create_directories(d);
    std::string cmd = "/usr/bin/python3 '" + script + "' " + args + (args.empty() ? "" : " ") + "'" + d.string() + "'";
    MESSAGE("generating the PyTorch reference files: " << cmd);
    REQUIRE(std::system(cmd.c_str()) == 0);
    std::ofstream(d / "complete") << "ok\n";
  }
  return d.string();
}

// max |got - want| / max(max |want|, floor)
inline double rel_error(const Tensor& got, const Tensor& want, double floor = 1e-30) {
  auto g = got.to_vector<double>(), w = want.to_vector<double>();
  REQUIRE(g.size() == w.size());
  double diff = 0, scale = floor;
  for (size_t i = 0; i < g.size(); ++i) {
    diff = std::max(diff, std::abs(g[i] - w[i]));
    scale = std::max(scale, std::abs(w[i]));
  }
  return diff / scale;
}

}  // namespace neurn::testing
