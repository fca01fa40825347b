// smtpguardd's command line (src/daemon/options.hpp). Lives here because the unit-test glob
// covers tests/nft and tests/nfq for the kernel shell.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "daemon/options.hpp"

using namespace sg::daemon;
using sg::nft::Hook;

namespace {
CommandLine parse(std::vector<std::string> args) {
  args.insert(args.begin(), "smtpguardd");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_command_line(static_cast<int>(argv.size()), argv.data());
}
}  // namespace

TEST_CASE("queue ranges: N or A-B, A <= B, at most 64 queues") {
  struct Case {
    const char* text;
    bool ok;
    uint16_t first, last;
  };
  auto c = GENERATE(Case{"0", true, 0, 0}, Case{"3", true, 3, 3}, Case{"0-1", true, 0, 1},
                    Case{"10-73", true, 10, 73}, Case{"65535", true, 65535, 65535},
                    Case{"10-74", false, 0, 0}, Case{"2-1", false, 0, 0},
                    Case{"65536", false, 0, 0}, Case{"", false, 0, 0}, Case{"-1", false, 0, 0},
                    Case{"1-", false, 0, 0}, Case{"a", false, 0, 0}, Case{"1-2-3", false, 0, 0},
                    Case{" 1", false, 0, 0}, Case{"1.5", false, 0, 0});
  INFO("--queues " << c.text);
  auto r = parse_queue_range(c.text);
  REQUIRE(r.has_value() == c.ok);
  if (c.ok) {
    CHECK(r->first == c.first);
    CHECK(r->last == c.last);
  } else {
    CHECK_THAT(r.error(), Catch::Contains("A-B"));
  }
}

TEST_CASE("hooks: a comma list of forward, input, output without repeats") {
  CHECK(*parse_hooks("forward") == std::vector<Hook>{Hook::kForward});
  CHECK(*parse_hooks("input,output") == std::vector<Hook>{Hook::kInput, Hook::kOutput});
  CHECK(*parse_hooks("output,forward,input") ==
        std::vector<Hook>{Hook::kOutput, Hook::kForward, Hook::kInput});
  for (const char* bad :
       {"", "prerouting", "forward,", ",forward", "forward,,input", "Forward", "forward,forward"}) {
    INFO("--hooks " << bad);
    CHECK_FALSE(parse_hooks(bad));
  }
  CHECK_THAT(parse_hooks("input,input").error(), Catch::Contains("twice"));
}

TEST_CASE("done mark: one bit, hexadecimal or decimal") {
  CHECK(*parse_done_mark("0x00100000") == 0x00100000u);
  CHECK(*parse_done_mark("0X1") == 1u);
  CHECK(*parse_done_mark("0x80000000") == 0x80000000u);
  CHECK(*parse_done_mark("1048576") == 0x00100000u);
  for (const char* bad : {"0", "0x0", "0x3", "0x", "x10", "0x100000000", "mark", ""}) {
    INFO("--done-mark " << bad);
    CHECK_FALSE(parse_done_mark(bad));
  }
}

TEST_CASE("defaults") {
  auto cl = parse({});
  REQUIRE(cl.options);
  const Options& o = *cl.options;
  CHECK(o.queues.first == 0);
  CHECK(o.queues.count() == 1);
  CHECK(o.profile == "modern");
  CHECK_FALSE(o.install_rules);
  CHECK(o.hooks == std::vector<Hook>{Hook::kForward});
  CHECK(o.port == 25);
  CHECK_FALSE(o.fail_open);
  CHECK(o.queue_maxlen == 4096);
  CHECK(o.max_flows == 65536);
  CHECK(o.hold_timeout_ms == 2000);
  CHECK(o.done_mark == kDefaultDoneMark);
  CHECK(o.stats_interval_s == 0);
}

TEST_CASE("every option is read") {
  auto cl = parse({"--queues",
                   "2-5",
                   "--profile",
                   "pix-mailguard",
                   "--install-rules",
                   "--hooks",
                   "input,output",
                   "--port",
                   "2525",
                   "--fail-open",
                   "--queue-maxlen",
                   "8192",
                   "--max-flows",
                   "1000",
                   "--hold-timeout-ms",
                   "500",
                   "--done-mark",
                   "0x4",
                   "--stats-interval",
                   "10",
                   "--verbose"});
  REQUIRE(cl.options);
  const Options& o = *cl.options;
  CHECK(o.queues.first == 2);
  CHECK(o.queues.last == 5);
  CHECK(o.profile == "pix-mailguard");
  CHECK(o.install_rules);
  CHECK(o.hooks == std::vector<Hook>{Hook::kInput, Hook::kOutput});
  CHECK(o.port == 2525);
  CHECK(o.fail_open);
  CHECK(o.queue_maxlen == 8192);
  CHECK(o.max_flows == 1000);
  CHECK(o.hold_timeout_ms == 500);
  CHECK(o.done_mark == 0x4);
  CHECK(o.stats_interval_s == 10);
  CHECK(o.verbose);
}

TEST_CASE("a bad value exits 2 with a message naming the option and what it accepts") {
  struct Case {
    std::vector<std::string> args;
    const char* names;
    const char* allowed;
  };
  auto c = GENERATE(Case{{"--queues", "9-3"}, "--queues", "A-B"},
                    Case{{"--profile", "cisco"}, "--profile", "asa-default"},
                    Case{{"--hooks", "nat"}, "--hooks", "forward, input, output"},
                    Case{{"--port", "0"}, "--port", "1-65535"},
                    Case{{"--port", "smtp"}, "--port", "1-65535"},
                    Case{{"--queue-maxlen", "0"}, "--queue-maxlen", "1-"},
                    Case{{"--max-flows", "-5"}, "--max-flows", "1-"},
                    Case{{"--hold-timeout-ms", "5"}, "--hold-timeout-ms", "10-60000"},
                    Case{{"--done-mark", "0x6"}, "--done-mark", "one bit"},
                    Case{{"--stats-interval", "1e3"}, "--stats-interval", "0-86400"});
  auto cl = parse(c.args);
  INFO(cl.text);
  CHECK_FALSE(cl.options);
  CHECK(cl.exit_code == 2);
  CHECK_THAT(cl.text, Catch::Contains(c.names) && Catch::Contains(c.allowed));
}

TEST_CASE("unknown options and missing values exit 2") {
  for (auto args : {std::vector<std::string>{"--frobnicate"}, std::vector<std::string>{"--port"},
                    std::vector<std::string>{"stray"}}) {
    auto cl = parse(args);
    CHECK_FALSE(cl.options);
    CHECK(cl.exit_code == 2);
    CHECK_THAT(cl.text, Catch::Contains("smtpguardd: "));
  }
}

TEST_CASE("help and version exit 0 with text") {
  auto help = parse({"--help"});
  CHECK_FALSE(help.options);
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.text, Catch::Contains("--install-rules") && Catch::Contains("modern"));
  auto version = parse({"--version"});
  CHECK_FALSE(version.options);
  CHECK(version.exit_code == 0);
  CHECK_THAT(version.text, Catch::StartsWith("smtpguardd "));
}
