// smtpguardctl's command line and exit codes (src/ctl/ctl_command.hpp), and the whole client
// path against a control server with fake handlers.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "control/control_server.hpp"
#include "ctl/ctl_command.hpp"
#include "support/temp_dir.hpp"

using namespace sg;
using namespace sg::ctl;
namespace fs = std::filesystem;

namespace {

CtlCommandLine parse(std::vector<std::string> args) {
  args.insert(args.begin(), "smtpguardctl");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_ctl_command_line(static_cast<int>(argv.size()), argv.data());
}

std::string request_of(std::vector<std::string> args) {
  CtlCommandLine cl = parse(std::move(args));
  INFO(cl.text);
  REQUIRE(cl.request);
  return cl.request->request;
}

}  // namespace

TEST_CASE("smtpguardctl: commands become protocol requests") {
  CHECK(request_of({"status"}) == "status");
  CHECK(request_of({"stats"}) == "stats");
  CHECK(request_of({"stats", "--json"}) == "stats json");
  CHECK(request_of({"--json", "stats"}) == "stats json");
  CHECK(request_of({"stats", "json"}) == "stats json");
  CHECK(request_of({"prometheus"}) == "prometheus");
  CHECK(request_of({"reload"}) == "reload");
  CHECK(request_of({"flows"}) == "flows");
  CHECK(request_of({"rules", "show"}) == "rules show");
  CHECK(request_of({"rules", "install"}) == "rules install");
  CHECK(request_of({"rules", "remove"}) == "rules remove");
  CHECK(request_of({"help"}) == "help");

  CtlCommandLine cl = parse({"status"});
  CHECK(cl.request->socket == control::kDefaultSocket);
  CHECK(cl.request->timeout == seconds(10));
  cl = parse({"--socket", "/tmp/x.sock", "--timeout", "3", "status"});
  REQUIRE(cl.request);
  CHECK(cl.request->socket == "/tmp/x.sock");
  CHECK(cl.request->timeout == seconds(3));
  cl = parse({"-s", "/tmp/y.sock", "flows"});
  REQUIRE(cl.request);
  CHECK(cl.request->socket == "/tmp/y.sock");
}

TEST_CASE("smtpguardctl: usage errors exit 64 and say why") {
  struct Case {
    std::vector<std::string> args;
    const char* why;
  };
  auto c = GENERATE(Case{{}, "no command given"}, Case{{"frob"}, "unknown command 'frob'"},
                    Case{{"status", "now"}, "status takes no argument"},
                    Case{{"status", "--json"}, "--json goes with stats only"},
                    Case{{"stats", "xml"}, "stats takes no argument but --json"},
                    Case{{"rules"}, "rules takes one of show, install, remove"},
                    Case{{"rules", "flush"}, "rules takes one of show, install, remove"},
                    Case{{"rules", "show", "all"}, "rules takes one of"},
                    Case{{"--timeout", "0", "status"}, "--timeout: expected seconds"},
                    Case{{"--timeout", "x", "status"}, "--timeout: expected seconds"},
                    Case{{"--socket", "", "status"}, "--socket: empty path"},
                    Case{{"--bogus", "status"}, "unrecognised option"});
  CtlCommandLine cl = parse(c.args);
  INFO(cl.text);
  CHECK_FALSE(cl.request);
  CHECK(cl.exit_code == kExitUsage);
  CHECK_THAT(cl.text, Catch::StartsWith("smtpguardctl: "));
  CHECK_THAT(cl.text, Catch::Contains(c.why));
  CHECK_THAT(cl.text, Catch::EndsWith("Try 'smtpguardctl --help'.\n"));
}

TEST_CASE("smtpguardctl: --help and --version") {
  CtlCommandLine help = parse({"--help"});
  CHECK_FALSE(help.request);
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.text, Catch::StartsWith("Usage: smtpguardctl [options] COMMAND [ARGUMENT]\n"));
  for (const char* word : {"status", "stats [--json]", "prometheus", "reload", "flows",
                           "rules show|install|remove", "--socket", "--timeout", "Exit codes"})
    CHECK_THAT(help.text, Catch::Contains(word));
  CtlCommandLine version = parse({"--version"});
  CHECK(version.exit_code == 0);
  CHECK_THAT(version.text, Catch::StartsWith("smtpguardctl "));
}

TEST_CASE("smtpguardctl: outcomes and exit codes") {
  const std::string sock = "/run/smtpguard/smtpguardd.sock";
  CtlOutcome ok = interpret(control::Reply::success("packets = 1"), sock);
  CHECK(ok.exit_code == kExitOk);
  CHECK(ok.out == "packets = 1\n");  // a newline is added when missing
  CHECK(ok.err.empty());
  CHECK(interpret(control::Reply::success(""), sock).out.empty());

  CtlOutcome refused = interpret(control::Reply::error("reload is not supported"), sock);
  CHECK(refused.exit_code == kExitFailed);
  CHECK(refused.out.empty());
  CHECK(refused.err == "smtpguardctl: the daemon refused: reload is not supported\n");

  using control::ClientError;
  using control::ClientFailure;
  using Result = Expected<control::Reply, ClientFailure>;
  CtlOutcome missing =
      interpret(Result(unexpected(ClientFailure{ClientError::kNoSocket, "x"})), sock);
  CHECK(missing.exit_code == kExitUnreachable);
  CHECK_THAT(missing.err,
             Catch::Contains("no control socket at " + sock + ": smtpguardd is not running"));
  CHECK_THAT(missing.err, Catch::Contains("systemctl start smtpguardd"));
  CHECK_THAT(missing.err, Catch::Contains("smtpguardd --control-socket " + sock));
  CtlOutcome stale = interpret(Result(unexpected(ClientFailure{ClientError::kRefused, "x"})), sock);
  CHECK(stale.exit_code == kExitUnreachable);
  CHECK_THAT(stale.err, Catch::Contains("nothing answers on " + sock));
  CtlOutcome denied = interpret(Result(unexpected(ClientFailure{
                                    ClientError::kPermission, "connect to s: Permission denied"})),
                                sock);
  CHECK(denied.exit_code == kExitUnreachable);
  CHECK_THAT(denied.err, Catch::Contains("Permission denied"));
  CHECK_THAT(denied.err, Catch::Contains("member of the socket's group"));
  CtlOutcome slow = interpret(
      Result(unexpected(ClientFailure{ClientError::kTimeout, "no answer from the daemon in time"})),
      sock);
  CHECK(slow.exit_code == kExitFailed);
  CHECK(slow.err == "smtpguardctl: no answer from the daemon in time\n");
}

TEST_CASE("smtpguardctl: end to end against a control server with fake handlers") {
  const test::TempDir tmp("sg_ctl");
  const fs::path dir = tmp.path;
  const std::string sock = (dir / "ctl.sock").string();

  // No daemon yet: exit 2 and how to start it.
  CtlCommandLine cl = parse({"--socket", sock, "status"});
  REQUIRE(cl.request);
  CtlOutcome none =
      interpret(control::request(sock, cl.request->request, cl.request->timeout), sock);
  CHECK(none.exit_code == kExitUnreachable);
  CHECK_THAT(none.err, Catch::Contains("smtpguardd is not running"));

  std::vector<control::ControlCommand> commands;
  commands.push_back({"stats", "stats [json]", [](std::string_view arg) {
                        return arg == "json" ? control::Reply::success("{\"packets\": 3}")
                                             : control::Reply::success("packets = 3\n");
                      }});
  commands.push_back({"rules", "rules show|install|remove", [](std::string_view arg) {
                        return arg == "remove" ? control::Reply::error("no rules installed")
                                               : control::Reply::success("table inet smtpguard\n");
                      }});
  control::ControlServerOptions o;
  o.path = sock;
  auto server = control::ControlServer::start(o, std::move(commands));
  REQUIRE(server);

  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--socket", sock});
    CtlCommandLine c = parse(args);
    REQUIRE(c.request);
    return interpret(control::request(sock, c.request->request, c.request->timeout), sock);
  };
  CtlOutcome stats = run({"stats", "--json"});
  CHECK(stats.exit_code == kExitOk);
  CHECK(stats.out == "{\"packets\": 3}\n");
  CtlOutcome text = run({"stats"});
  CHECK(text.out == "packets = 3\n");
  CtlOutcome show = run({"rules", "show"});
  CHECK(show.out == "table inet smtpguard\n");
  CtlOutcome remove = run({"rules", "remove"});
  CHECK(remove.exit_code == kExitFailed);
  CHECK(remove.err == "smtpguardctl: the daemon refused: no rules installed\n");
  CtlOutcome unknown = run({"status"});  // not registered by this fake daemon
  CHECK(unknown.exit_code == kExitFailed);
  CHECK(unknown.err ==
        "smtpguardctl: the daemon refused: unknown command \"status\" (try: help)\n");
  (*server)->stop();
}
