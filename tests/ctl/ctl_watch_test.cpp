// `smtpguardctl watch` (src/ctl/ctl_command.hpp): its command line, and the stream end to end
// through a control server whose watch command hands the connection to a watch hub.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "control/control_commands.hpp"
#include "control/control_server.hpp"
#include "ctl/ctl_command.hpp"
#include "eventlog/watch_hub.hpp"
#include "policy/policy_set.hpp"
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

core::Decision masked(const char* client, const char* subject) {
  core::Decision d;
  d.event = policy::Event::kCommandMasked;
  d.action = "mask";
  d.client = policy::parse_subnet(client)->address;
  d.server = policy::parse_subnet("198.18.2.2")->address;
  d.client_port = 40000;
  d.server_port = 25;
  d.subject = subject;
  d.edited = true;
  d.before = std::string(subject) + " x\r\n";
  d.after = std::string(std::string(subject).size(), 'X') + " x\r\n";
  return d;
}

}  // namespace

TEST_CASE("smtpguardctl watch: options become the request's filter") {
  CtlCommandLine cl = parse({"watch"});
  REQUIRE(cl.request);
  CHECK(cl.request->request == "watch");
  CHECK(cl.request->stream);
  cl = parse({"watch", "--client", "198.18.1.0/24", "--server", "2001:db8::/32", "--port", "25",
              "--queue", "64"});
  REQUIRE(cl.request);
  CHECK(cl.request->request == "watch client=198.18.1.0/24 server=2001:db8::/32 port=25 queue=64");
  CHECK(cl.request->stream);
  cl = parse({"status"});
  REQUIRE(cl.request);
  CHECK_FALSE(cl.request->stream);
}

TEST_CASE("smtpguardctl watch: usage errors") {
  struct Case {
    std::vector<std::string> args;
    const char* why;
  };
  auto c = GENERATE(Case{{"watch", "all"}, "watch takes no argument but its options"},
                    Case{{"status", "--client", "198.18.1.0/24"}, "--client goes with watch only"},
                    Case{{"stats", "--port", "25"}, "--port goes with watch only"},
                    Case{{"watch", "--port", "2x"}, "--port: expected a number, got '2x'"},
                    Case{{"watch", "--client", "198.18.1.0/24 queue=1"},
                         "--client: expected an address or prefix"},
                    Case{{"watch", "--server", ""}, "--server: expected an address or prefix"});
  CtlCommandLine cl = parse(c.args);
  INFO(cl.text);
  CHECK_FALSE(cl.request);
  CHECK(cl.exit_code == kExitUsage);
  CHECK_THAT(cl.text, Catch::Contains(c.why));
}

TEST_CASE("smtpguardctl watch: help lists it") {
  CHECK_THAT(parse({"--help"}).text, Catch::Contains("watch [--client PREFIX] [--server PREFIX]"));
}

TEST_CASE("smtpguardctl watch: end to end through a control server and a watch hub") {
  const test::TempDir tmp("sg_ctl_watch");
  const std::string sock = (fs::path(tmp.path) / "ctl.sock").string();
  auto started = eventlog::WatchHub::start();
  REQUIRE(started);
  eventlog::WatchHub& hub = **started;

  control::ControlContext context;
  context.snapshot = [] { return control::StatsSnapshot{}; };
  context.watch = &hub;
  control::ControlServerOptions o;
  o.path = sock;
  auto server = control::ControlServer::start(o, control::control_commands(context));
  REQUIRE(server);

  // A malformed filter is the daemon's error, and nothing is streamed.
  std::string bad_out;
  auto bad =
      control::request_stream(sock, "watch client=nonsense", seconds(5), [&](std::string_view b) {
        bad_out += b;
        return true;
      });
  REQUIRE(bad);
  CHECK_FALSE(bad->ok);
  CHECK_THAT(bad->body, Catch::StartsWith("watch: client: 'nonsense'"));
  CHECK(bad_out.empty());

  CtlCommandLine cl = parse({"--socket", sock, "watch", "--client", "198.18.1.0/24"});
  REQUIRE(cl.request);
  std::string out;
  std::thread watcher([&] {
    auto r = control::request_stream(sock, cl.request->request, cl.request->timeout,
                                     [&](std::string_view b) {
                                       out += b;
                                       return out.find("LAST") == std::string::npos;
                                     });
    CHECK(r);
  });
  // Publish until the watcher is attached, then the records it should and should not see.
  const auto deadline = Clock::now() + seconds(5);
  while (hub.watchers() == 0 && Clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(10));
  REQUIRE(hub.watchers() == 1);
  hub.publish(masked("198.18.9.9", "ELSEWHERE"));
  hub.publish(masked("198.18.1.2", "VRFY"));
  hub.publish(masked("198.18.1.2", "LAST"));
  watcher.join();
  CHECK_THAT(out, Catch::StartsWith("watching client=198.18.1.0/24 queue=1024\n"));
  CHECK_THAT(out, Catch::Contains(" 198.18.1.2:40000 -> 198.18.2.2:25 command_masked action=mask "
                                  "dir=c2s subject=\"VRFY\" detail=\"\"\n"
                                  "  - VRFY x\\r\\n\n"
                                  "  + XXXX x\\r\\n\n"));
  CHECK_THAT(out, !Catch::Contains("ELSEWHERE"));
  // The watcher went: the hub forgets it.
  const auto gone = Clock::now() + seconds(5);
  while (hub.watchers() != 0 && Clock::now() < gone) std::this_thread::sleep_for(milliseconds(10));
  CHECK(hub.watchers() == 0);
  (*server)->stop();
  hub.stop();
}
