// The control commands' pieces that need neither root nor a queue
// (src/control/control_commands.hpp): the reload hand-over, the flows listing, the rules' state
// text, running a program, and the command table with a fake snapshot.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "control/control_commands.hpp"
#include "policy/policy_set.hpp"

using namespace sg;
using namespace sg::control;

namespace {

core::FlowSummary flow_summary(const char* client, uint16_t cport, const char* server,
                               uint16_t sport) {
  core::FlowSummary f;
  f.client = policy::parse_subnet(client)->address;
  f.server = policy::parse_subnet(server)->address;
  f.client_port = cport;
  f.server_port = sport;
  f.state = "established";
  f.profile = "modern";
  return f;
}

const ControlCommand& command(const std::vector<ControlCommand>& table, std::string_view name) {
  for (const ControlCommand& c : table)
    if (c.name == name) return c;
  FAIL("no command " << name);
  throw;
}

}  // namespace

TEST_CASE("reload requests: answered by the reload that takes them, failed after close") {
  ReloadRequests r;
  auto first = r.add();
  auto second = r.add();
  auto waiting = r.take();
  REQUIRE(waiting.size() == 2);
  auto later = r.add();  // after the reload started: not answered by it
  ReloadRequests::answer(waiting, control::Reply::success("reload: 1 policy\n"));
  CHECK(first.get() == control::Reply::success("reload: 1 policy\n"));
  CHECK(second.get() == control::Reply::success("reload: 1 policy\n"));
  CHECK(later.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  r.close("the daemon is stopping");
  CHECK(later.get() == control::Reply::error("the daemon is stopping"));
  auto after = r.add();
  REQUIRE(after.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
  CHECK(after.get() == control::Reply::error("the daemon is stopping"));
  CHECK(r.take().empty());
}

TEST_CASE("render_flows: one key=value line per flow, totals, caps and silent workers") {
  const Timestamp now{};
  WorkerFlows q0;
  q0.queue = 0;
  q0.total = 3;
  core::FlowSummary a = flow_summary("198.18.1.2", 40000, "198.18.2.2", 25);
  a.bytes_c2s = 23;
  a.bytes_s2c = 312;
  a.mapped = true;
  a.delta_c2s = -8;
  a.delta_s2c = 37;
  a.owed_replies = 1;
  a.expires = now + std::chrono::milliseconds(897'200);
  core::FlowSummary b = flow_summary("2001:db8:1::2", 40001, "2001:db8:2::2", 25);
  b.state = "passthrough";
  b.profile.clear();
  b.roles_known = false;
  b.held_packets = 2;
  b.done = true;
  q0.flows = {a, b};
  const std::string out = render_flows({q0}, {1}, now);
  CHECK(out ==
        "3 flows tracked (queue 0: 3), the 2 least recently active shown\n"
        "queue=0 client=198.18.1.2:40000 server=198.18.2.2:25 state=established profile=modern "
        "c2s_bytes=23 s2c_bytes=312 mapped=yes c2s_delta=-8 s2c_delta=+37 held=0 owed=1 flags=- "
        "expires_in=898s\n"
        "queue=0 client=[2001:db8:1::2]:40001 server=[2001:db8:2::2]:25 state=passthrough "
        "profile=- c2s_bytes=0 s2c_bytes=0 mapped=no c2s_delta=+0 s2c_delta=+0 held=2 owed=0 "
        "flags=midstream,done expires_in=0s\n"
        "queue 1: no answer from its worker (stopping or stuck)\n"
        "midstream: picked up without its handshake; client and server are the two ends in "
        "address order, and the flow is passed uninspected\n");
  CHECK(render_flows({}, {}, now) == "0 flows tracked\n");
}

TEST_CASE("rule control: state and options without installing anything") {
  nft::RuleOptions o;
  o.queue_first = 0;
  o.queue_last = 1;
  o.hooks = {nft::Hook::kForward, nft::Hook::kOutput};
  RuleControl rules(o);
  CHECK_FALSE(rules.installed());
  CHECK(rules.state() == "not installed");
  CHECK(rules.tables().empty());
  CHECK(rules.describe_options() ==
        "hooks forward,output, queues 0-1, port 25, fail-closed, done mark 0x00100000, inject "
        "mark 0x00200000, mapped mark 0x00400000");
  o.mapped_mark = 0;
  CHECK(RuleControl(o).describe_options().ends_with("mapped mark off"));
  // Nothing installed: nothing to disarm or remove, and no netlink call is made.
  CHECK(rules.disarm());
  CHECK(rules.remove());
}

TEST_CASE("run_program: output, exit status, missing programs, timeouts, no signal mask") {
  auto r = run_program({"sh", "-c", "echo out; echo err >&2; exit 3"}, std::chrono::seconds(5));
  REQUIRE(r);
  CHECK(r->status == 3);
  CHECK(r->output == "out\n");
  CHECK(r->errors == "err\n");
  auto missing = run_program({"sg-no-such-program-here"}, std::chrono::seconds(5));
  REQUIRE(missing);
  CHECK(missing->status == 127);
  auto slow = run_program({"sleep", "10"}, std::chrono::milliseconds(200));
  CHECK_FALSE(slow);
  auto capped =
      run_program({"sh", "-c", "head -c 100000 /dev/zero"}, std::chrono::seconds(5), 1000);
  REQUIRE(capped);
  CHECK(capped->output.size() == 1000);
  // The daemon blocks its signals; the child must not inherit that (nft, a SIGTERM-able child).
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  auto mask = run_program({"sh", "-c", "grep ^SigBlk /proc/self/status"}, std::chrono::seconds(5));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  REQUIRE(mask);
  CHECK(mask->output == "SigBlk:\t0000000000000000\n");
}

TEST_CASE("control commands: statistics from the snapshot, reload through main, argument checks") {
  ReloadRequests reloads;
  nft::RuleOptions ro;
  RuleControl rules(ro);
  ControlContext c;
  c.snapshot = [] {
    StatsSnapshot s;
    s.version = "0.1.0";
    s.pid = 42;
    s.profile = "modern";
    s.events[static_cast<size_t>(policy::Event::kCommandMasked)] = 2;
    return s;
  };
  c.rules = &rules;
  c.reloads = &reloads;
  std::thread main_thread;
  c.request_reload = [&] {
    // Stands in for main's SIGHUP branch.
    main_thread = std::thread([&] {
      auto waiting = reloads.take();
      ReloadRequests::answer(waiting, control::Reply::success("reload: 1 policy\n"));
    });
  };
  c.log = [](const std::string&) {};
  c.reload_timeout = std::chrono::seconds(5);
  const std::vector<ControlCommand> table = control_commands(c);

  auto status = command(table, "status").handler("");
  CHECK(status.ok);
  CHECK(status.body.find("profile: modern\n") != std::string::npos);
  CHECK(status.body.find("rules: not installed\n") != std::string::npos);
  CHECK_FALSE(command(table, "status").handler("x").ok);

  auto text = command(table, "stats").handler("");
  CHECK(text.body.find("event_command_masked = 2\n") != std::string::npos);
  auto json = command(table, "stats").handler("json");
  CHECK(json.body.find("\"command_masked\"") != std::string::npos);
  CHECK_FALSE(command(table, "stats").handler("yaml").ok);
  auto prom = command(table, "prometheus").handler("");
  CHECK(prom.body.find("smtpguard_events_total{event=\"command_masked\",id=\"1102\"} 2") !=
        std::string::npos);

  CHECK(command(table, "reload").handler("") == control::Reply::success("reload: 1 policy\n"));
  main_thread.join();
  reloads.close("the daemon is stopping");
  CHECK(command(table, "reload").handler("") == control::Reply::error("the daemon is stopping"));

  CHECK(command(table, "flows").handler("").body == "0 flows tracked\n");
  CHECK_FALSE(command(table, "rules").handler("").ok);
  auto remove = command(table, "rules").handler("remove");
  CHECK_FALSE(remove.ok);
  CHECK(remove.body.find("no rules installed") != std::string::npos);
  auto show = command(table, "rules").handler("show");
  CHECK(show.ok);
  CHECK(show.body.rfind("rules: not installed\noptions: hooks forward, queues 0, port 25", 0) == 0);
}
