// The command registry (experiments/command_line.h) turned into one CLI11
// application. Every flag is declared once, by the command that takes it;
// parsing, --help/-h and usage errors are handled here only.
#include <CLI/CLI.hpp>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include "experiments/command_line.h"
#include "framework/error.h"

namespace neurn::cli {

std::map<std::string, Command>& registry() {
  static std::map<std::string, Command> r;
  return r;
}

Register::Register(Command c) {
  std::string name = c.name;
  NEURN_CHECK(!registry().count(name), "neurn: the command '", name, "' is registered twice");
  registry()[name] = std::move(c);
}

const std::vector<std::string>& shared_flag_names() {
  // One spelling each, whatever the command (docs/cli.md).
  static const std::vector<std::string> names = {
      "data-root", "output", "device",  "batch-size", "image-size", "channels", "classes", "seed",   "config",
      "model",     "neurn",  "neurn-options", "domains", "split", "resume",   "json",    "weights", "arch"};
  return names;
}

const std::map<std::string, std::string>& deprecated_flag_spellings() {
  static const std::map<std::string, std::string> old = {
      {"root", "data-root"},      {"out", "output"},        {"batch", "batch-size"},
      {"size", "image-size"},     {"input-size", "image-size"}, {"neurn", "neurn-options"},
  };
  return old;
}

bool Flags::has(const std::string& key) const { return values_.count(key) > 0; }

std::string Flags::get(const std::string& key, const std::string& def) const {
  auto it = values_.find(key);
  return it == values_.end() ? def : it->second;
}

int64_t Flags::get_int(const std::string& key, int64_t def) const {
  if (!has(key)) return def;
  const std::string& v = values_.at(key);
  size_t used = 0;
  int64_t x = 0;
  try {
    x = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  NEURN_CHECK(used == v.size() && !v.empty(), "--", key, " expects an integer, got '", v, "'");
  return x;
}

double Flags::get_double(const std::string& key, double def) const {
  if (!has(key)) return def;
  const std::string& v = values_.at(key);
  size_t used = 0;
  double x = 0;
  try {
    x = std::stod(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  NEURN_CHECK(used == v.size() && !v.empty(), "--", key, " expects a number, got '", v, "'");
  return x;
}

namespace {

// The whole value must be the number: std::stoll("12abc") would give 12.
CLI::Validator integer_check() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        size_t used = 0;
        try {
          (void)std::stoll(s, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        bool ok = used == s.size() && !s.empty() && !std::isspace(static_cast<unsigned char>(s[0]));
        return ok ? "" : "expects an integer, got '" + s + "'";
      },
      "", "integer");
}

CLI::Validator real_check() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        size_t used = 0;
        try {
          (void)std::stod(s, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        bool ok = used == s.size() && !s.empty() && !std::isspace(static_cast<unsigned char>(s[0]));
        return ok ? "" : "expects a number, got '" + s + "'";
      },
      "", "number");
}

// CLI11 hands a value flag the next argument even when that is another flag
// (`--only --resume` would filter on "--resume"): refuse such values.
CLI::Validator not_a_flag(const std::string& value_name) {
  return CLI::Validator(
      [value_name](std::string& s) -> std::string {
        return s.rfind("--", 0) == 0 && s.size() > 2 ? "expects a value (" + value_name + "), got the flag '" + s + "'"
                                                     : "";
      },
      "", "value");
}

std::vector<std::string> words(const std::string& name) {
  std::vector<std::string> w;
  std::istringstream in(name);
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

// What one registered command's parse leaves behind.
struct Bound {
  const Command* cmd = nullptr;
  CLI::App* app = nullptr;
  struct Slot {
    const Flag* flag = nullptr;
    CLI::Option* opt = nullptr;
    std::string text{};
    bool on = false;
    struct Alias {  // a deprecated spelling, hidden
      std::string name{};
      CLI::Option* opt = nullptr;
      std::string text{};
      bool on = false;
    };
    std::deque<Alias> aliases{};
  };
  std::deque<Slot> slots{};  // stable addresses: CLI11 writes into them
  std::vector<std::string> positional{};
};

std::string usage_of(const Command& c) {
  std::string u = "neurn " + c.name;
  if (!c.positionals.empty()) u += " " + c.positionals;
  if (!c.flags.empty()) u += " [flags]";
  return u;
}

void add_flag(Bound& b, CLI::App* app, const Flag& f, const std::set<std::string>& own) {
  b.slots.push_back({&f, nullptr});
  Bound::Slot& s = b.slots.back();
  const std::string name = "--" + f.name;
  switch (f.kind) {
    case Kind::Switch:
      s.opt = app->add_flag(name, s.on, f.help);
      break;
    case Kind::Optional:
      s.opt = app->add_option(name, s.text, f.help)->expected(0, 1)->type_name(f.value_name);
      s.opt->check(not_a_flag(f.value_name));
      break;
    case Kind::Int:
      s.opt = app->add_option(name, s.text, f.help)->type_name(f.value_name)->check(integer_check());
      break;
    case Kind::Real:
      s.opt = app->add_option(name, s.text, f.help)->type_name(f.value_name)->check(real_check());
      break;
    case Kind::Text:
      s.opt = app->add_option(name, s.text, f.help)->type_name(f.value_name)->check(not_a_flag(f.value_name));
      break;
  }
  // Old spellings of this flag, unless the command uses that name itself.
  for (auto& [old, now] : deprecated_flag_spellings()) {
    if (now != f.name || own.count(old)) continue;
    s.aliases.push_back({old});
    Bound::Slot::Alias& a = s.aliases.back();
    if (f.kind == Kind::Switch)
      a.opt = app->add_flag("--" + old, a.on, "deprecated: --" + f.name);
    else if (f.kind == Kind::Optional)
      a.opt = app->add_option("--" + old, a.text, "deprecated: --" + f.name)->expected(0, 1);
    else
      a.opt = app->add_option("--" + old, a.text, "deprecated: --" + f.name)->check(not_a_flag(f.value_name));
    if (f.kind == Kind::Int) a.opt->check(integer_check());
    if (f.kind == Kind::Real) a.opt->check(real_check());
    a.opt->group("");  // hidden from --help
    a.opt->excludes(s.opt);
  }
}

Flags collect(Bound& b, std::ostream& err) {
  Flags out;
  for (auto& s : b.slots) {
    bool given = s.opt->count() > 0;
    std::string text = s.text;
    bool on = s.on;
    for (auto& a : s.aliases) {
      if (a.opt->count() == 0) continue;
      err << "neurn " << b.cmd->name << ": --" << a.name << " is deprecated; use --" << s.flag->name << "\n";
      given = true;
      text = a.text;
      on = a.on;
    }
    if (!given) continue;
    switch (s.flag->kind) {
      case Kind::Switch:
        if (on) out.set(s.flag->name, "true");  // --resume=false: as if not given
        break;
      case Kind::Optional:
        out.set(s.flag->name, text.empty() ? "true" : text);
        break;
      default:
        out.set(s.flag->name, text);
    }
  }
  out.positional() = b.positional;
  return out;
}

CLI::App* child(CLI::App* parent, const std::string& word, const std::string& description) {
  for (CLI::App* s : parent->get_subcommands([](CLI::App*) { return true; }))
    if (s->get_name() == word) return s;
  CLI::App* s = parent->add_subcommand(word, description);
  return s;
}

// A closest known flag for "did you mean".
std::string closest(const std::string& bad, const Command& c) {
  auto dist = [](const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::string key = bad;
  while (!key.empty() && key[0] == '-') key.erase(0, 1);
  key = key.substr(0, key.find('='));
  std::string best;
  size_t best_d = 4;
  for (auto& f : c.flags) {
    size_t d = dist(key, f.name);
    if (d < best_d) best_d = d, best = f.name;
  }
  return best;
}

}  // namespace

std::string bash_completion() {
  // One case per command path; words are the subcommands and flags there.
  std::map<std::string, std::set<std::string>> words_at;  // "data" -> {prepare, verify, ...}
  for (auto& [name, c] : registry()) {
    auto w = words(name);
    std::string path;
    for (size_t i = 0; i < w.size(); ++i) {
      words_at[path].insert(w[i]);
      path += (path.empty() ? "" : " ") + w[i];
    }
    for (auto& f : c.flags) words_at[path].insert("--" + f.name);
    words_at[path].insert("--help");
  }
  std::ostringstream s;
  s << "# bash completion for neurn (generated by `neurn completion`)\n"
       "_neurn() {\n"
       "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" path=\"\" w i\n"
       "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
       "    w=\"${COMP_WORDS[i]}\"\n"
       "    [[ $w == -* ]] && continue\n"
       "    case \"${path:+$path }$w\" in\n";
  for (auto& [path, ws] : words_at)
    if (!path.empty()) s << "      \"" << path << "\") path=\"" << path << "\" ;;\n";
  s << "    esac\n"
       "  done\n"
       "  local opts=\"\"\n"
       "  case \"$path\" in\n";
  for (auto& [path, ws] : words_at) {
    s << "    \"" << path << "\") opts=\"";
    bool first = true;
    for (auto& w : ws) s << (first ? "" : " ") << w, first = false;
    s << "\" ;;\n";
  }
  s << "  esac\n"
       "  if [[ $cur == -* || -n $opts ]]; then COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\")); fi\n"
       "  [[ ${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- \"$cur\"))\n"
       "}\n"
       "complete -o filenames -F _neurn neurn\n";
  return s.str();
}

std::string flags_markdown() {
  struct Row {
    std::string value;
    std::set<std::string> commands;
    std::string help, help_of;
  };
  std::map<std::string, Row> rows;
  for (auto& [name, c] : registry())
    for (auto& f : c.flags) {
      Row& r = rows[f.name];
      if (r.help.empty()) r.help = f.help, r.help_of = name;
      if (r.value.empty()) r.value = f.kind == Kind::Switch ? "(switch)" : f.value_name;
      r.commands.insert(name);
    }
  auto cell = [](std::string s) {
    for (size_t i = 0; (i = s.find('|', i)) != std::string::npos; i += 2) s.replace(i, 1, "\\|");
    return s;
  };
  std::ostringstream s;
  s << "| flag | value | commands | meaning |\n|---|---|---|---|\n";
  for (auto& [flag, r] : rows) {
    std::string cmds;
    for (auto& c : r.commands) cmds += (cmds.empty() ? "" : ", ") + c;
    s << "| `--" << flag << "` | " << cell(r.value) << " | " << cmds << " | " << cell(r.help)
      << (r.commands.size() > 1 ? " (" + r.help_of + ")" : "") << " |\n";
  }
  return s.str();
}

namespace {
Register reg_flags{{.name = "flags",
                    .summary = "every flag of every command as a Markdown table (docs/cli.md holds it)",
                    .fn = [](const Flags&) {
                      std::fputs(flags_markdown().c_str(), stdout);
                      return 0;
                    }}};
Register reg_completion{{.name = "completion",
                         .summary = "print a bash completion script (source it, or put it in /etc/bash_completion.d/)",
                         .fn = [](const Flags&) {
                           std::fputs(bash_completion().c_str(), stdout);
                           return 0;
                         }}};
}  // namespace

int run_command_line(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"neurn: domain generalization on digits with NeuRN", "neurn"};
  app.set_help_flag("-h,--help", "print this help and exit");
  app.require_subcommand(1);
  app.fallthrough(false);
  app.footer("`neurn COMMAND --help` describes a command; docs/cli.md lists every flag.");

  // Summaries of the groups ("data", "bench", "nas") from their members.
  std::deque<Bound> bound;
  for (auto& [name, c] : registry()) {
    auto w = words(name);
    CLI::App* at = &app;
    std::string path;
    for (size_t i = 0; i < w.size(); ++i) {
      path += (path.empty() ? "" : " ") + w[i];
      at = child(at, w[i], "");
      if (i + 1 < w.size() && !registry().count(path)) {
        at->description("the " + path + " commands");
        at->require_subcommand(1);
      }
    }
    at->description(c.summary);
    at->footer("usage: " + usage_of(c) + "\n" + (c.details.empty() ? "" : "\n" + c.details + "\n"));
    at->fallthrough(false);
    bound.push_back({&c, at});
    Bound& b = bound.back();
    std::set<std::string> own;
    for (auto& f : c.flags) own.insert(f.name);
    for (auto& f : c.flags) add_flag(b, at, f, own);
    if (c.max_positionals != 0) {
      // CLI11 wants a plain name; the usage line above shows the real one.
      std::string pname;
      for (char ch : c.positionals)
        if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.') pname += ch;
        else if (ch == '|' || ch == ' ') pname += '_';
      CLI::Option* p = at->add_option(pname.empty() ? "args" : pname, b.positional, c.positionals)->type_name("");
      if (c.max_positionals > 0) p->expected(0, c.max_positionals);
      else p->expected(0, -1);
    }
  }
  // A group with its own command ("models" and "models trace") runs its
  // command when no subcommand follows.
  for (auto& b : bound)
    if (!b.app->get_subcommands([](CLI::App*) { return true; }).empty()) b.app->require_subcommand(0, 1);

  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i) args.push_back(argv[i]);  // CLI11 wants them reversed
  if (args.empty() || (args.size() == 1 && args[0] == "help")) {
    out << app.help();
    return args.empty() ? 1 : 0;
  }
  auto deepest = [&]() -> CLI::App* {
    CLI::App* at = &app;
    for (;;) {
      auto used = at->get_subcommands();
      if (used.empty()) return at;
      at = used.front();
    }
  };
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    out << deepest()->help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    out << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::ParseError& e) {
    CLI::App* at = deepest();
    if (at == &app && argc > 1 && argv[1][0] != '-') {
      err << "neurn: unknown command '" << argv[1] << "'\n\n" << app.help();
      return 2;
    }
    std::string where = at == &app ? "neurn" : "neurn " + at->get_name();
    for (auto& b : bound)
      if (b.app == at) where = "neurn " + b.cmd->name;
    std::string msg = e.what();
    // CLI11 leaves an option's name out of some messages: the flag given last.
    if (msg.rfind(":", 0) == 0)
      for (int i = argc - 1; i >= 1; --i)
        if (std::string(argv[i]).rfind("--", 0) == 0) {
          msg = std::string(argv[i]).substr(0, std::string(argv[i]).find('=')) + msg;
          break;
        }
    // An unknown flag explains more than what it caused (say, one positional
    // too many): name it first, with the closest known one.
    for (auto& b : bound) {
      if (b.app != at) continue;
      std::set<std::string> known = {"help", "h"};
      for (auto& f : b.cmd->flags) known.insert(f.name);
      for (auto& [old, now] : deprecated_flag_spellings())
        if (known.count(now)) known.insert(old);
      for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--") break;
        if (a.rfind("--", 0) != 0 || a.size() == 2) continue;
        std::string key = a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2);
        if (known.count(key)) continue;
        std::string near = closest(a, *b.cmd);
        msg = "unknown flag --" + key + (near.empty() ? "" : " (did you mean --" + near + "?)");
        break;
      }
    }
    if (at != &app && at->get_subcommands([](CLI::App*) { return true; }).size() > 0 &&
        dynamic_cast<const CLI::RequiredError*>(&e)) {
      err << where << ": choose one of the commands below\n\n" << at->help();
      return 2;
    }
    err << where << ": error: " << msg << "\n(see " << where << " --help)\n";
    return 2;
  }
  CLI::App* at = deepest();
  Bound* b = nullptr;
  for (auto& x : bound)
    if (x.app == at) b = &x;
  if (!b) {  // a group alone: "neurn data"
    err << "neurn " << at->get_name() << ": choose one of the commands below\n\n" << at->help();
    return 2;
  }
  const Command& c = *b->cmd;
  int n = static_cast<int>(b->positional.size());
  if (n < c.min_positionals || (c.max_positionals >= 0 && n > c.max_positionals)) {
    std::string want = c.max_positionals == 0 ? "no arguments"
                       : c.min_positionals == c.max_positionals
                           ? std::to_string(c.min_positionals) + " argument" + (c.min_positionals == 1 ? "" : "s")
                           : "at least " + std::to_string(c.min_positionals) + " arguments";
    err << "neurn " << c.name << ": error: expected " << want << " (" << (c.positionals.empty() ? "none" : c.positionals)
        << "), got " << n << "\nusage: " << usage_of(c) << "\n(see neurn " << c.name << " --help)\n";
    return 2;
  }
  try {
    Flags flags = collect(*b, err);
    std::cout.flush();
    return c.fn(flags);
  } catch (const std::exception& e) {  // neurn::Error and anything else: one line naming the command
    err << "neurn " << c.name << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace neurn::cli
