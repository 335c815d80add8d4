#include <cstdio>
#include <iostream>

#include "experiments/cli/cli.h"
#include "framework/error.h"

namespace neurn::cli {

std::map<std::string, Command>& registry() {
  static std::map<std::string, Command> r;
  return r;
}

Register::Register(std::string name, std::string summary, CommandFn fn) {
  registry()[name] = {name, std::move(summary), std::move(fn)};
}

Flags::Flags(const Args& args, const std::vector<std::string>& boolean_flags) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) == 0 && a.size() > 2) {
      std::string key = a.substr(2), value = "true";
      auto eq = key.find('=');
      bool is_bool = false;
      for (auto& b : boolean_flags) is_bool |= (b == key);
      if (eq != std::string::npos) {
        value = key.substr(eq + 1);
        key = key.substr(0, eq);
      } else if (!is_bool && i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) {
        value = args[++i];
      }
      values_[key] = value;
    } else {
      positional_.push_back(a);
    }
  }
}

bool Flags::has(const std::string& key) const { return values_.count(key) > 0; }
std::string Flags::get(const std::string& key, const std::string& def) const {
  auto it = values_.find(key);
  return it == values_.end() ? def : it->second;
}
int64_t Flags::get_int(const std::string& key, int64_t def) const {
  if (!has(key)) return def;
  try {
    return std::stoll(get(key));
  } catch (const std::exception&) {
    NEURN_FAIL("--", key, " expects an integer, got '", get(key), "'");
  }
}
double Flags::get_double(const std::string& key, double def) const {
  if (!has(key)) return def;
  try {
    return std::stod(get(key));
  } catch (const std::exception&) {
    NEURN_FAIL("--", key, " expects a number, got '", get(key), "'");
  }
}
void Flags::allow_only(const std::vector<std::string>& keys) const {
  for (auto& [k, v] : values_) {
    bool ok = false;
    for (auto& a : keys) ok |= (a == k);
    if (!ok) {
      std::string list;
      for (auto& a : keys) list += " --" + a;
      NEURN_FAIL("unknown flag --", k, " (allowed:", list, ")");
    }
  }
}

}  // namespace neurn::cli

namespace {

void print_help() {
  std::printf("neurn: domain generalization on digits with NeuRN\n\nusage: neurn COMMAND [ARGS...]\n\ncommands:\n");
  for (auto& [name, cmd] : neurn::cli::registry()) std::printf("  %-22s %s\n", name.c_str(), cmd.summary.c_str());
  std::printf("\n`neurn COMMAND --help` describes a command.\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace neurn::cli;
  Args args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_help();
    return args.empty() ? 1 : 0;
  }
  // Longest match: "bench train-step" before "bench".
  auto& reg = registry();
  const Command* cmd = nullptr;
  size_t used = 0;
  if (args.size() >= 2 && reg.count(args[0] + " " + args[1])) {
    cmd = &reg[args[0] + " " + args[1]];
    used = 2;
  } else if (reg.count(args[0])) {
    cmd = &reg[args[0]];
    used = 1;
  }
  if (!cmd) {
    std::string subs;
    for (auto& [name, c] : reg)
      if (name.rfind(args[0] + " ", 0) == 0) subs += "  " + name + "  " + c.summary + "\n";
    if (!subs.empty()) {
      std::fprintf(stderr, "neurn %s: choose one of\n%s", args[0].c_str(), subs.c_str());
    } else {
      std::fprintf(stderr, "neurn: unknown command '%s'\n\n", args[0].c_str());
      print_help();
    }
    return 2;
  }
  try {
    return cmd->fn(Args(args.begin() + static_cast<long>(used), args.end()));
  } catch (const neurn::Error& e) {
    std::fprintf(stderr, "neurn %s: error: %s\n", cmd->name.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "neurn %s: error: %s\n", cmd->name.c_str(), e.what());
    return 1;
  }
}
