#pragma once
// The `neurn` command line: each file of experiments/cli registers its own
// subcommands (static registration works because these files are compiled
// straight into the executable).
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace neurn::cli {

using Args = std::vector<std::string>;
using CommandFn = std::function<int(const Args&)>;

struct Command {
  std::string name;     // "run", "bench train-step" (a space makes a sub-subcommand)
  std::string summary;  // one line for `neurn --help`
  CommandFn fn;
};

std::map<std::string, Command>& registry();

struct Register {
  Register(std::string name, std::string summary, CommandFn fn);
};

// Small flag parser: --key value, --key=value, --flag; the rest positional.
class Flags {
 public:
  Flags(const Args& args, const std::vector<std::string>& boolean_flags = {});
  bool has(const std::string& key) const;
  std::string get(const std::string& key, const std::string& def = "") const;
  int64_t get_int(const std::string& key, int64_t def) const;
  double get_double(const std::string& key, double def) const;
  const std::vector<std::string>& positional() const { return positional_; }
  // Throws naming the unknown flags (and the closest known one).
  void allow_only(const std::vector<std::string>& keys) const;

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace neurn::cli
