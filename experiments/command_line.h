#pragma once
// The `neurn` command line. Each file of experiments/cli (and bench/)
// registers its own commands with the flags they take; main.cpp turns the
// registry into one CLI11 application, so parsing, --help/-h on every command
// and subcommand, and the errors (unknown flag, a value flag without its
// value, "12abc" for an integer, "--resume=maybe") come from one place.
// Static registration works because these files are compiled straight into
// the executable.
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace neurn::cli {

using Args = std::vector<std::string>;

// What one flag takes.
enum class Kind {
  Text,      // --name VALUE
  Int,       // --name N (the whole value an integer: "12abc" is refused)
  Real,      // --name X
  Switch,    // --name, or --name=true|false (--resume=false does not resume)
  Optional,  // --name, or --name VALUE (NeuRN: `--neurn` or `--neurn both`)
};

struct Flag {
  std::string name{};        // without dashes: "batch-size"
  Kind kind = Kind::Text;
  std::string value_name{};  // "N", "DIR" (Text, Int, Real, Optional)
  std::string help{};        // one line (or a few), defaults in parentheses
};

// Flag builders, so a command's list reads like its help.
inline Flag text(std::string name, std::string value_name, std::string help) {
  return {std::move(name), Kind::Text, std::move(value_name), std::move(help)};
}
inline Flag integer(std::string name, std::string value_name, std::string help) {
  return {std::move(name), Kind::Int, std::move(value_name), std::move(help)};
}
inline Flag real(std::string name, std::string value_name, std::string help) {
  return {std::move(name), Kind::Real, std::move(value_name), std::move(help)};
}
inline Flag on_off(std::string name, std::string help) { return {std::move(name), Kind::Switch, "", std::move(help)}; }
inline Flag optional(std::string name, std::string value_name, std::string help) {
  return {std::move(name), Kind::Optional, std::move(value_name), std::move(help)};
}

// The parsed command line of one command.
class Flags {
 public:
  Flags() = default;
  // For a Switch: given and true. For the others: given.
  bool has(const std::string& key) const;
  std::string get(const std::string& key, const std::string& def = "") const;
  // Already checked by the parser; these convert.
  int64_t get_int(const std::string& key, int64_t def) const;
  double get_double(const std::string& key, double def) const;
  const std::vector<std::string>& positional() const { return positional_; }

  // Filled by the parser (main.cpp) and by tests.
  void set(const std::string& key, const std::string& value) { values_[key] = value; }
  std::vector<std::string>& positional() { return positional_; }
  const std::map<std::string, std::string>& values() const { return values_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

using CommandFn = std::function<int(const Flags&)>;

struct Command {
  std::string name{};         // "run", "data prepare" (a space makes a subcommand)
  std::string summary{};      // one line for `neurn --help`
  std::string positionals{};  // their name in the usage line: "CONFIG.yaml", "[ITEM...]"; empty: none
  int min_positionals = 0;
  int max_positionals = 0;    // -1: any number
  std::vector<Flag> flags{};  // --help/-h comes from the parser
  std::string details{};      // after the flags in --help
  CommandFn fn{};
};

std::map<std::string, Command>& registry();

struct Register {
  explicit Register(Command c);
};

// The flag names every command spells the same way (docs/cli.md lists them),
// and the old spellings still accepted (hidden from --help, with a warning).
const std::vector<std::string>& shared_flag_names();
const std::map<std::string, std::string>& deprecated_flag_spellings();  // old -> new

// Parses argv[1..] and runs the command; returns the exit status (0 ok,
// 1 the command failed, 2 a usage error). Help goes to `out`; usage errors,
// deprecation notes and the command's error to `err` (what the command
// itself prints goes where it prints).
int run_command_line(int argc, const char* const* argv, std::ostream& out = std::cout, std::ostream& err = std::cerr);

// A bash completion script for every command and flag (`neurn completion`).
std::string bash_completion();
// One Markdown table of every flag: value, the commands taking it, meaning
// (`neurn flags`; docs/cli.md holds its output and a test compares them).
std::string flags_markdown();

}  // namespace neurn::cli
