// The command-line parser (experiments/command_line.cpp, on CLI11) run
// in-process on commands registered here: what each flag kind accepts and
// refuses, the errors' wording (they name the flag and what it expected),
// --help/-h on commands and groups, deprecated spellings, positionals.
#include <doctest/doctest.h>

#include <sstream>

#include "experiments/command_line.h"

using namespace neurn::cli;

namespace {

Flags last;  // what the test command saw
int calls = 0;

int echo(const Flags& f) {
  last = f;
  ++calls;
  return 0;
}

Register reg_echo{{.name = "zz-test echo",
                   .summary = "the parser's test command",
                   .positionals = "[FILE...]",
                   .max_positionals = 2,
                   .flags = {text("only", "PATTERN", "a text flag"), integer("batch-size", "N", "an integer flag"),
                             real("lr", "X", "a real flag"), on_off("resume", "a switch"),
                             optional("neurn", "both", "a switch with an optional value"),
                             text("data-root", "DIR", "a shared flag with an old spelling"),
                             text("output", "DIR", "another")},
                   .details = "Details of the test command.",
                   .fn = echo}};
Register reg_one{{.name = "zz-test one",
                  .summary = "takes exactly one argument",
                  .positionals = "CONFIG.yaml",
                  .min_positionals = 1,
                  .max_positionals = 1,
                  .fn = echo}};
Register reg_fail{{.name = "zz-test fail", .summary = "throws", .fn = [](const Flags&) -> int {
                     throw std::runtime_error("something broke");
                   }}};

struct Result {
  int rc;
  std::string out, err;
};

Result run(std::vector<std::string> args) {
  args.insert(args.begin(), "neurn");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  last = Flags();
  calls = 0;
  int rc = run_command_line(static_cast<int>(argv.size()), argv.data(), out, err);
  return {rc, out.str(), err.str()};
}

}  // namespace

TEST_CASE("command line: values, integers, numbers, switches and optional values") {
  Result r = run({"zz-test", "echo", "--only", "mnist*", "--batch-size=64", "--lr", "1e-3", "--resume", "a.yaml"});
  REQUIRE(r.rc == 0);
  CHECK(calls == 1);
  CHECK(last.get("only") == "mnist*");
  CHECK(last.get_int("batch-size", 0) == 64);
  CHECK(last.get_double("lr", 0) == doctest::Approx(1e-3));
  CHECK(last.has("resume"));
  CHECK(!last.has("neurn"));
  CHECK(last.positional() == std::vector<std::string>{"a.yaml"});

  r = run({"zz-test", "echo", "--neurn"});
  REQUIRE(r.rc == 0);
  CHECK(last.get("neurn") == "true");
  r = run({"zz-test", "echo", "--neurn", "both"});
  REQUIRE(r.rc == 0);
  CHECK(last.get("neurn") == "both");
  CHECK(last.positional().empty());
  // Negative numbers are values, not flags.
  r = run({"zz-test", "echo", "--batch-size", "-3", "--lr", "-0.5"});
  REQUIRE(r.rc == 0);
  CHECK(last.get_int("batch-size", 0) == -3);
  CHECK(last.get_double("lr", 0) == -0.5);
}

TEST_CASE("command line: --resume=false does not resume; --resume=maybe is an error") {
  Result r = run({"zz-test", "echo", "--resume=false"});
  REQUIRE(r.rc == 0);
  CHECK(!last.has("resume"));
  r = run({"zz-test", "echo", "--resume=true"});
  REQUIRE(r.rc == 0);
  CHECK(last.has("resume"));
  r = run({"zz-test", "echo", "--resume=maybe"});
  CHECK(r.rc == 2);
  CHECK(calls == 0);
  CHECK(r.err.find("--resume") != std::string::npos);
}

TEST_CASE("command line: a value flag without its value is an error naming it (it was \"true\")") {
  Result r = run({"zz-test", "echo", "--only"});
  CHECK(r.rc == 2);
  CHECK(calls == 0);
  CHECK(r.err.find("neurn zz-test echo: error: --only") != std::string::npos);
  r = run({"zz-test", "echo", "--only", "--resume"});  // the next flag is not its value
  CHECK(r.rc == 2);
  CHECK(r.err.find("--only") != std::string::npos);
  r = run({"zz-test", "echo", "--data-root"});
  CHECK(r.rc == 2);
  CHECK(r.err.find("--data-root") != std::string::npos);
}

TEST_CASE("command line: \"12abc\" is not an integer, \"1e-3x\" not a number; the error names the flag") {
  for (std::string bad : {"12abc", "abc", "1.5", "", " 12"}) {
    INFO("value '" << bad << "'");
    Result r = run({"zz-test", "echo", "--batch-size", bad});
    CHECK(r.rc == 2);
    CHECK(calls == 0);
    CHECK(r.err.find("--batch-size") != std::string::npos);
    CHECK(r.err.find("expects an integer, got '" + bad + "'") != std::string::npos);
  }
  Result r = run({"zz-test", "echo", "--lr=1e-3x"});
  CHECK(r.rc == 2);
  CHECK(r.err.find("--lr: expects a number, got '1e-3x'") != std::string::npos);
  // The converters refuse the same when a command is handed a Flags by hand.
  Flags f;
  f.set("batch-size", "12abc");
  CHECK_THROWS_WITH(f.get_int("batch-size", 0), "--batch-size expects an integer, got '12abc'");
}

TEST_CASE("command line: unknown flags and wrong argument counts are usage errors (exit 2)") {
  Result r = run({"zz-test", "echo", "--batch-sise", "3"});
  CHECK(r.rc == 2);
  CHECK(r.err.find("unknown flag --batch-sise (did you mean --batch-size?)") != std::string::npos);
  r = run({"zz-test", "echo", "a", "b", "c"});
  CHECK(r.rc == 2);
  r = run({"zz-test", "one"});
  CHECK(r.rc == 2);
  CHECK(r.err.find("neurn zz-test one: error: expected 1 argument (CONFIG.yaml), got 0") != std::string::npos);
  r = run({"zz-test", "one", "x.yaml"});
  CHECK(r.rc == 0);
  CHECK(last.positional() == std::vector<std::string>{"x.yaml"});
  r = run({"no-such-command"});
  CHECK(r.rc == 2);
  CHECK(r.err.find("no-such-command") != std::string::npos);
  r = run({"zz-test"});  // a group alone
  CHECK(r.rc == 2);
  CHECK(r.err.find("echo") != std::string::npos);
  CHECK(r.err.find("one") != std::string::npos);
}

TEST_CASE("command line: a command's exception is one line naming the command (exit 1)") {
  Result r = run({"zz-test", "fail"});
  CHECK(r.rc == 1);
  CHECK(r.err == "neurn zz-test fail: error: something broke\n");
}

TEST_CASE("command line: --help and -h on the program, groups and commands, anywhere after the command") {
  Result top = run({"--help"});
  CHECK(top.rc == 0);
  CHECK(top.out.find("zz-test") != std::string::npos);
  CHECK(run({"-h"}).out == top.out);
  CHECK(run({"help"}).out == top.out);
  CHECK(run({}).rc == 1);  // no command: the help, and a failure status

  Result h = run({"zz-test", "echo", "--help"});
  CHECK(h.rc == 0);
  CHECK(calls == 0);
  for (std::string want : {"--only", "--batch-size", "--resume", "--neurn", "a text flag", "Details of the test command"})
    CHECK_MESSAGE(h.out.find(want) != std::string::npos, want);
  CHECK(h.out.find("--root") == std::string::npos);  // deprecated spellings are hidden
  CHECK(run({"zz-test", "echo", "-h"}).out == h.out);
  CHECK(run({"zz-test", "echo", "--only", "x", "-h"}).out == h.out);
  Result g = run({"zz-test", "--help"});
  CHECK(g.rc == 0);
  CHECK(g.out.find("takes exactly one argument") != std::string::npos);
}

TEST_CASE("command line: old spellings still work, with a note; never together with the new one") {
  Result r = run({"zz-test", "echo", "--root", "/data", "--out", "o"});
  REQUIRE(r.rc == 0);
  CHECK(last.get("data-root") == "/data");
  CHECK(last.get("output") == "o");
  CHECK(r.err.find("--root is deprecated; use --data-root") != std::string::npos);
  r = run({"zz-test", "echo", "--root", "/a", "--data-root", "/b"});
  CHECK(r.rc == 2);
  // A command that has a flag under the old name keeps it (--neurn here is
  // its own switch, not the old spelling of --neurn-options).
  r = run({"zz-test", "echo", "--neurn"});
  CHECK(r.err.find("deprecated") == std::string::npos);
}

TEST_CASE("command line: every registered command's flags use the shared spellings") {
  // No command declares a flag under a deprecated name (except --neurn,
  // which is the shared name of the NeuRN switch), and the shared names are
  // spelled once.
  const auto& old = deprecated_flag_spellings();
  for (auto& [name, c] : registry())
    for (auto& f : c.flags) {
      INFO("neurn " << name << " --" << f.name);
      CHECK((old.count(f.name) == 0 || f.name == "neurn"));
      CHECK(f.name.find('_') == std::string::npos);
      CHECK(!f.help.empty());
    }
  std::string script = bash_completion();
  CHECK(script.find("complete -o filenames -F _neurn neurn") != std::string::npos);
  CHECK(script.find("\"zz-test echo\") opts=\"--batch-size --data-root --help --lr --neurn --only --output --resume\"") !=
        std::string::npos);
}
