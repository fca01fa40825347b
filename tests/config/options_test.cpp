// smtpguardd's command line (src/config/options.hpp). The default marks are checked against the
// rules' own defaults (nft/rules.hpp), which the daemon hands the options to.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "config/options.hpp"
#include "nft/rules.hpp"

using namespace sg::config;
using sg::config::Hook;
using sg::policy::CommandAction;
using sg::policy::KeywordAction;
using sg::smtp::EhloKeyword;
using sg::smtp::Verb;

namespace {
// The command line alone (no configuration file), as main would see it.
struct Parsed {
  std::optional<Options> options;
  int exit_code = 0;
  std::string text;
};

Parsed parse(std::vector<std::string> args) {
  args.insert(args.begin(), "smtpguardd");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  CommandLine cl = parse_command_line(static_cast<int>(argv.size()), argv.data());
  if (!cl.arguments) return {std::nullopt, cl.exit_code, cl.text};
  auto o = resolve_options(*cl.arguments, nullptr);
  if (!o) return {std::nullopt, exit_code(o.error(), false), error_message(o.error())};
  return {*o, 0, ""};
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
    CHECK_THAT(r.error().text(), Catch::Contains("A-B"));
  }
}

TEST_CASE("queues: auto, N or A-B") {
  CHECK(parse_queues("auto")->automatic);
  CHECK(*parse_queues("0") == QueueSpec{false, QueueRange{0, 0}});
  CHECK(*parse_queues("2-5") == QueueSpec{false, QueueRange{2, 5}});
  for (const char* bad : {"", "Auto", "auto ", "automatic", "0-64", "3-2", "-", "x"}) {
    INFO("--queues " << bad);
    auto r = parse_queues(bad);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().text(), Catch::Contains("allowed: auto, or a queue number N"));
  }
}

TEST_CASE("worker CPUs: numbers and ranges, in the order given, each CPU once") {
  struct Case {
    const char* text;
    std::vector<uint16_t> cpus;
  };
  auto c = GENERATE(Case{"0", {0}}, Case{"0-3,6", {0, 1, 2, 3, 6}}, Case{"6,0-1", {6, 0, 1}},
                    Case{" 2 , 4-5 ", {2, 4, 5}}, Case{"1023", {1023}}, Case{"7-7", {7}});
  INFO("--worker-cpus " << c.text);
  auto r = parse_cpu_list(c.text);
  REQUIRE(r);
  CHECK(*r == c.cpus);
}

TEST_CASE("worker CPUs: what is refused, and why") {
  struct Case {
    const char* text;
    const char* says;
  };
  auto c = GENERATE(Case{"", "CPU numbers and ranges"}, Case{"0,", "CPU numbers and ranges"},
                    Case{"3-1", "got '3-1'"}, Case{"1024", "got '1024'"}, Case{"a", "got 'a'"},
                    Case{"-1", "got '-1'"}, Case{"0-", "got '0-'"}, Case{"1-2-3", "got '1-2-3'"},
                    Case{"0-2,1", "CPU 1 is listed twice"}, Case{"4,4", "CPU 4 is listed twice"});
  INFO("--worker-cpus " << c.text);
  auto r = parse_cpu_list(c.text);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().text(), Catch::Contains(c.says));
}

TEST_CASE("worker CPUs as text: ranges joined") {
  CHECK(cpu_list_text({0, 1, 2, 3, 6}) == "0-3,6");
  CHECK(cpu_list_text({6, 0, 1}) == "6,0-1");
  CHECK(cpu_list_text({5}) == "5");
  CHECK(cpu_list_text({}).empty());
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
  CHECK_THAT(parse_hooks("input,input").error().text(), Catch::Contains("twice"));
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
  CHECK(o.queues.automatic);
  CHECK(o.worker_cpus.empty());
  CHECK(o.profile == "modern");
  CHECK_FALSE(o.install_rules);
  CHECK(o.hooks == std::vector<Hook>{Hook::kForward});
  CHECK(o.port == 25);
  CHECK_FALSE(o.fail_open);
  CHECK(o.queue_maxlen == 4096);
  CHECK(o.max_flows == 65536);
  CHECK(o.hold_timeout_ms == 2000);
  CHECK(o.done_mark == kDefaultDoneMark);
  CHECK(o.inject_mark == kDefaultInjectMark);
  CHECK(o.inject_mark == sg::nft::RuleOptions{}.inject_mark);
  CHECK(o.done_mark == sg::nft::RuleOptions{}.done_mark);
  CHECK((o.inject_mark & o.done_mark) == 0);
  CHECK(o.mapped_mark == kDefaultMappedMark);
  CHECK(o.mapped_mark == sg::nft::RuleOptions{}.mapped_mark);
  CHECK((o.mapped_mark & (o.inject_mark | o.done_mark)) == 0);
  CHECK(o.overrides.empty());
  CHECK(describe_overrides(o.overrides).empty());
  CHECK(o.stats_interval_s == 0);
  CHECK(o.conntrack_tuning);
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
                   "--inject-mark",
                   "0x18",
                   "--strip-keyword",
                   "AUTH",
                   "--answer-verb",
                   "VRFY",
                   "--reset-verb",
                   "TURN",
                   "--answer-reply",
                   "550 no",
                   "--stats-interval",
                   "10",
                   "--no-conntrack-tuning",
                   "--verbose"});
  REQUIRE(cl.options);
  const Options& o = *cl.options;
  CHECK(o.queues == QueueSpec{false, QueueRange{2, 5}});
  CHECK(o.profile == "pix-mailguard");
  CHECK(o.install_rules);
  CHECK(o.hooks == std::vector<Hook>{Hook::kInput, Hook::kOutput});
  CHECK(o.port == 2525);
  CHECK(o.fail_open);
  CHECK(o.queue_maxlen == 8192);
  CHECK(o.max_flows == 1000);
  CHECK(o.hold_timeout_ms == 500);
  CHECK(o.done_mark == 0x4);
  CHECK(o.inject_mark == 0x18);
  CHECK(o.overrides.strip_keywords == std::vector<EhloKeyword>{EhloKeyword::kAuth});
  CHECK(o.overrides.answer_verbs == std::vector<Verb>{Verb::kVrfy});
  CHECK(o.overrides.reset_verbs == std::vector<Verb>{Verb::kTurn});
  CHECK(o.overrides.answer_reply == "550 no");
  CHECK(o.stats_interval_s == 10);
  CHECK_FALSE(o.conntrack_tuning);
  CHECK(o.verbose);
}

TEST_CASE("conntrack tuning is on unless turned off, and takes no value") {
  auto on = parse({"--fail-open"});
  REQUIRE(on.options);
  CHECK(on.options->conntrack_tuning);
  auto off = parse({"--no-conntrack-tuning"});
  REQUIRE(off.options);
  CHECK_FALSE(off.options->conntrack_tuning);
  auto valued = parse({"--no-conntrack-tuning=yes"});
  CHECK_FALSE(valued.options);
  CHECK(valued.exit_code == 2);
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
                    Case{{"--inject-mark", "0"}, "--inject-mark", "non-zero"},
                    Case{{"--inject-mark", "0x200000", "--done-mark", "0x200000"},
                         "--inject-mark",
                         "no bit in common"},
                    Case{{"--strip-keyword", "AUTH,"}, "--strip-keyword", "comma-separated"},
                    Case{{"--strip-keyword", "NOPE"}, "--strip-keyword", "'NOPE'"},
                    Case{{"--answer-verb", ""}, "--answer-verb", "comma-separated"},
                    Case{{"--answer-verb", "VRFY,NOPE"}, "--answer-verb", "'NOPE'"},
                    Case{{"--reset-verb", "VRFY,,EXPN"}, "--reset-verb", "comma-separated"},
                    Case{{"--answer-reply", "250 ok"}, "--answer-reply", "4xy or 5xy"},
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
  for (const char* option : {"--inject-mark", "--strip-keyword", "--answer-verb", "--reset-verb",
                             "--answer-reply", "--no-conntrack-tuning"}) {
    INFO(option);
    CHECK_THAT(help.text, Catch::Contains(option));
  }
  auto version = parse({"--version"});
  CHECK_FALSE(version.options);
  CHECK(version.exit_code == 0);
  CHECK_THAT(version.text, Catch::StartsWith("smtpguardd "));
}

TEST_CASE("inject mark: any non-zero 32-bit value, hexadecimal or decimal") {
  CHECK(*parse_inject_mark("0x200000") == 0x200000u);
  CHECK(*parse_inject_mark("0x300000") == 0x300000u);  // several bits are fine
  CHECK(*parse_inject_mark("0XFFFFFFFF") == 0xffffffffu);
  CHECK(*parse_inject_mark("2097152") == 0x200000u);
  for (const char* bad : {"0", "0x0", "0x", "x1", "0x100000000", "-1", "mark", ""}) {
    INFO("--inject-mark " << bad);
    auto r = parse_inject_mark(bad);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().text(), Catch::Contains("non-zero"));
  }
}

TEST_CASE("mapped mark: one bit or 0 (off), none shared with the other marks") {
  CHECK(*parse_mapped_mark("0x400000") == 0x400000u);
  CHECK(*parse_mapped_mark("0") == 0u);
  for (const char* bad : {"0x3", "x1", "0x100000000", "-1", "mark", ""}) {
    INFO("--mapped-mark " << bad);
    CHECK_FALSE(parse_mapped_mark(bad));
  }
  struct Case {
    std::vector<std::string> args;
    bool ok;
    const char* names;  // the option the error is about
  };
  auto c = GENERATE(Case{{"--mapped-mark", "0x800000"}, true, ""},
                    Case{{"--mapped-mark", "0"}, true, ""},
                    Case{{"--mapped-mark", "0x100000"}, false, "--mapped-mark"},
                    Case{{"--mapped-mark", "0x200000"}, false, "--mapped-mark"},
                    Case{{"--done-mark", "0x400000"}, false, "--done-mark"},
                    Case{{"--inject-mark", "0x600000"}, false, "--inject-mark"});
  auto cl = parse(c.args);
  INFO(cl.text);
  REQUIRE(cl.options.has_value() == c.ok);
  if (!c.ok) {
    CHECK(cl.exit_code == 2);
    CHECK_THAT(cl.text, Catch::Contains(c.names) && Catch::Contains("mapped mark"));
  }
}

TEST_CASE("the inject mark and the done mark share no bit") {
  struct Case {
    std::vector<std::string> args;
    bool ok;
  };
  auto c = GENERATE(Case{{"--inject-mark", "0x1", "--done-mark", "0x2"}, true},
                    Case{{"--inject-mark", "0x300000", "--done-mark", "0x800000"}, true},
                    Case{{"--done-mark", "0x200000"}, false},    // the default inject mark
                    Case{{"--inject-mark", "0x100000"}, false},  // the default done mark
                    Case{{"--inject-mark", "0x300000"}, false},
                    Case{{"--inject-mark", "0xffffffff", "--done-mark", "0x1"}, false});
  auto cl = parse(c.args);
  INFO(cl.text);
  REQUIRE(cl.options.has_value() == c.ok);
  if (!c.ok) {
    CHECK(cl.exit_code == 2);
    CHECK_THAT(cl.text, Catch::Contains("--inject-mark") && Catch::Contains("--done-mark"));
  }
}

TEST_CASE("keyword and verb lists: comma-separated vocabulary names, any case") {
  CHECK(*parse_keyword_list("AUTH") == std::vector<EhloKeyword>{EhloKeyword::kAuth});
  CHECK(*parse_keyword_list("auth,Chunking,X-LINK2STATE,8bitmime") ==
        std::vector<EhloKeyword>{EhloKeyword::kAuth, EhloKeyword::kChunking,
                                 EhloKeyword::kXlink2state, EhloKeyword::k8bitmime});
  CHECK(*parse_verb_list("vrfy,EXPN,X-Link2State") ==
        std::vector<Verb>{Verb::kVrfy, Verb::kExpn, Verb::kXlink2state});
  for (const char* bad : {"", ",", "AUTH,", ",AUTH", "AUTH,,DSN", "AUTH, ,DSN", "AUTH DSN"}) {
    INFO("list " << bad);
    CHECK_FALSE(parse_keyword_list(bad));
    CHECK_FALSE(parse_verb_list(bad));
  }
  // Blanks around an item do not count (the configuration file writes "AUTH, CHUNKING").
  CHECK(*parse_keyword_list(" AUTH , dsn") ==
        std::vector<EhloKeyword>{EhloKeyword::kAuth, EhloKeyword::kDsn});
}

TEST_CASE("an unknown name is reported alone") {
  auto k = parse_keyword_list("AUTH,STARTTLSX,CHUNKING");
  REQUIRE_FALSE(k);
  CHECK(k.error().problem == "unknown EHLO keyword 'STARTTLSX', did you mean 'STARTTLS'?");
  CHECK(k.error().allowed == keyword_names());
  auto v = parse_verb_list("VRFY,EXPN,FROB");
  REQUIRE_FALSE(v);
  CHECK(v.error().problem == "unknown SMTP verb 'FROB'");
  CHECK(v.error().allowed == verb_names());
  // A keyword is not a verb and the other way round.
  CHECK_FALSE(parse_verb_list("PIPELINING"));
  CHECK_FALSE(parse_keyword_list("MAIL"));
  auto cl = parse({"--strip-keyword", "AUTH,NOPE"});
  CHECK(cl.text == "smtpguardd: --strip-keyword: unknown EHLO keyword 'NOPE' (allowed: " +
                       keyword_names() + ")\nTry 'smtpguardd --help'.\n");
  CHECK(keyword_names().substr(0, 25) == "STARTTLS, AUTH, PIPELININ");
}

TEST_CASE("repeated override options accumulate") {
  auto cl = parse({"--strip-keyword", "AUTH,CHUNKING", "--answer-verb", "VRFY", "--strip-keyword",
                   "xexch50", "--reset-verb", "TURN,ATRN", "--answer-verb", "EXPN,HELP",
                   "--answer-reply", "421 4.7.0 Try again later"});
  INFO(cl.text);
  REQUIRE(cl.options);
  const PolicyOverrides& o = cl.options->overrides;
  CHECK(o.strip_keywords == std::vector<EhloKeyword>{EhloKeyword::kAuth, EhloKeyword::kChunking,
                                                     EhloKeyword::kXexch50});
  CHECK(o.answer_verbs == std::vector<Verb>{Verb::kVrfy, Verb::kExpn, Verb::kHelp});
  CHECK(o.reset_verbs == std::vector<Verb>{Verb::kTurn, Verb::kAtrn});
  CHECK(o.answer_reply == "421 4.7.0 Try again later");
  CHECK(describe_overrides(o) ==
        "--strip-keyword AUTH,CHUNKING,XEXCH50 --answer-verb VRFY,EXPN,HELP "
        "--reset-verb TURN,ATRN --answer-reply '421 4.7.0 Try again later'");
}

TEST_CASE("a verb or keyword named twice is an error naming it") {
  struct Case {
    std::vector<std::string> args;
    const char* option;  // the option the error is reported on
    const char* name;
  };
  auto c = GENERATE(
      Case{{"--strip-keyword", "AUTH,auth"}, "--strip-keyword", "AUTH"},
      Case{{"--strip-keyword", "DSN", "--strip-keyword", "SIZE,DSN"}, "--strip-keyword", "DSN"},
      Case{{"--answer-verb", "VRFY,VRFY"}, "--answer-verb", "VRFY"},
      Case{{"--reset-verb", "TURN", "--reset-verb", "turn"}, "--reset-verb", "TURN"},
      Case{{"--answer-verb", "EXPN", "--reset-verb", "EXPN"},
           "--reset-verb",
           "EXPN is named in both --answer-verb and --reset-verb"},
      Case{{"--reset-verb", "ETRN", "--answer-verb", "VRFY,ETRN"},
           "--reset-verb",
           "ETRN is named in both --answer-verb and --reset-verb"});
  auto cl = parse(c.args);
  INFO(cl.text);
  CHECK_FALSE(cl.options);
  CHECK(cl.exit_code == 2);
  CHECK_THAT(cl.text, Catch::Contains(c.option) && Catch::Contains(c.name));
}

TEST_CASE("answer reply: 4xy or 5xy, a space, printable ASCII, at most 510 characters") {
  const std::string longest = "550 " + std::string(506, 'x');
  struct Case {
    std::string text;
    bool ok;
  };
  auto c = GENERATE_COPY(
      Case{"550 5.7.1 Command blocked by policy", true}, Case{"421 4.7.0 Try again later", true},
      Case{"599 ~!@#$%^&*()_+{}|:<>?`-=[]\\;',./\"", true}, Case{"550 ", true}, Case{longest, true},
      Case{longest + "x", false}, Case{"250 ok", false}, Case{"350 ok", false},
      Case{"650 ok", false}, Case{"55 no", false}, Case{"5500 no", false}, Case{"550-no", false},
      Case{"550no", false}, Case{"550", false}, Case{"5x0 no", false}, Case{"", false},
      Case{" 550 no", false}, Case{"550 no\r\n", false}, Case{"550 no\n", false},
      Case{"550 tab\there", false}, Case{"550 del\x7f", false}, Case{"550 caf\xc3\xa9", false},
      Case{std::string("550 nul\0x", 9), false});
  INFO("--answer-reply " << c.text);
  auto r = parse_answer_reply(c.text);
  REQUIRE(r.has_value() == c.ok);
  if (c.ok) {
    CHECK(*r == c.text);
  } else {
    CHECK_THAT(r.error().text(), Catch::Contains("4xy or 5xy") && Catch::Contains("510"));
  }
}

TEST_CASE("overrides change a copy of the profile and nothing else") {
  auto builtin = sg::policy::builtin_profile("modern");
  REQUIRE(builtin);
  PolicyOverrides o;
  o.strip_keywords = {EhloKeyword::kAuth, EhloKeyword::kChunking};
  o.answer_verbs = {Verb::kVrfy};
  o.reset_verbs = {Verb::kTurn};
  o.answer_reply = "554 5.7.1 Not here";
  const sg::policy::Profile p = apply_overrides(*builtin, o);
  for (size_t i = 0; i < sg::smtp::kEhloKeywordCount; ++i) {
    const auto k = static_cast<EhloKeyword>(i);
    INFO(sg::smtp::to_string(k));
    const bool stripped = k == EhloKeyword::kAuth || k == EhloKeyword::kChunking;
    CHECK(p.keyword_action(k) == (stripped ? KeywordAction::kStrip : builtin->keyword_action(k)));
  }
  for (size_t i = 0; i < sg::smtp::kVerbCount; ++i) {
    const auto v = static_cast<Verb>(i);
    INFO(sg::smtp::to_string(v));
    const CommandAction expected = v == Verb::kVrfy   ? CommandAction::kAnswer
                                   : v == Verb::kTurn ? CommandAction::kReset
                                                      : builtin->verb_action(v);
    CHECK(p.verb_action(v) == expected);
  }
  CHECK(p.unknown_verb == builtin->unknown_verb);
  CHECK(p.unknown_keyword == builtin->unknown_keyword);
  CHECK(p.banner == builtin->banner);
  CHECK(p.answer_reply == "554 5.7.1 Not here");
  CHECK(builtin->answer_reply == "550 5.7.1 Command blocked by policy");  // the original stays
  CHECK(apply_overrides(*builtin, {}).answer_reply == builtin->answer_reply);
}

// --- the configuration file's top level, and the options added with it -----------------------

namespace {

Arguments arguments(std::vector<std::string> args) {
  args.insert(args.begin(), "smtpguardd");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  CommandLine cl = parse_command_line(static_cast<int>(argv.size()), argv.data());
  INFO(cl.text);
  REQUIRE(cl.arguments);
  return *cl.arguments;
}

// The options from a file's text (and a command line on top).
sg::Expected<Options, ConfigError> from_file(const std::string& text,
                                             std::vector<std::string> args = {}) {
  auto file = parse_config_text("/etc/smtpguard/test.conf", text);
  REQUIRE(file);
  return resolve_options(arguments(std::move(args)), &*file);
}

}  // namespace

TEST_CASE("file: every top-level option is read") {
  auto o = from_file(
      "queues = 2-5\n"
      "profile = pix-mailguard\n"
      "install-rules = true\n"
      "hooks = input,output\n"
      "port = 2525\n"
      "fail-open = yes\n"
      "queue-maxlen = 8192\n"
      "max-flows = 1000\n"
      "hold-timeout-ms = 500\n"
      "done-mark = 0x4\n"
      "inject-mark = 0x18\n"
      "strip-keyword = AUTH, CHUNKING\n"
      "answer-verb = VRFY\n"
      "reset-verb = TURN\n"
      "answer-reply = 550 no\n"
      "stats-interval = 10\n"
      "no-conntrack-tuning = on\n"
      "control-socket = /run/sg/ctl.sock\n"
      "prometheus-file = /var/lib/prom/sg.prom\n"
      "prometheus-listen = [::1]:9125\n"
      "log-rate = 0\n"
      "syslog = false\n"
      "verbose = 1\n");
  INFO((o ? "" : o.error().text()));
  REQUIRE(o);
  CHECK(o->queues == QueueSpec{false, QueueRange{2, 5}});
  CHECK(o->profile == "pix-mailguard");
  CHECK(o->install_rules);
  CHECK(o->hooks == std::vector<Hook>{Hook::kInput, Hook::kOutput});
  CHECK(o->port == 2525);
  CHECK(o->fail_open);
  CHECK(o->queue_maxlen == 8192);
  CHECK(o->max_flows == 1000);
  CHECK(o->hold_timeout_ms == 500);
  CHECK(o->done_mark == 0x4);
  CHECK(o->inject_mark == 0x18);
  CHECK(o->overrides.strip_keywords ==
        std::vector<EhloKeyword>{EhloKeyword::kAuth, EhloKeyword::kChunking});
  CHECK(o->overrides.answer_verbs == std::vector<Verb>{Verb::kVrfy});
  CHECK(o->overrides.reset_verbs == std::vector<Verb>{Verb::kTurn});
  CHECK(o->overrides.answer_reply == "550 no");
  CHECK(o->stats_interval_s == 10);
  CHECK_FALSE(o->conntrack_tuning);
  CHECK(o->control_socket == "/run/sg/ctl.sock");
  CHECK(o->prometheus_file == "/var/lib/prom/sg.prom");
  CHECK(o->prometheus_listen == "[::1]:9125");
  CHECK(o->log_rate == 0);
  CHECK_FALSE(o->syslog);
  CHECK(o->verbose);
  CHECK(o->config_file == "/etc/smtpguard/test.conf");
}

TEST_CASE("the options added for logging, statistics and control: defaults and values") {
  auto d = parse({});
  REQUIRE(d.options);
  CHECK(d.options->control_socket == "/run/smtpguard/smtpguardd.sock");
  CHECK(d.options->prometheus_file.empty());
  CHECK(d.options->prometheus_listen.empty());
  CHECK(d.options->log_rate == 20);
  CHECK(d.options->syslog);
  CHECK(d.options->config_file.empty());

  auto o = parse({"--control-socket", "none", "--prometheus-file", "/tmp/x.prom",
                  "--prometheus-listen", "127.0.0.1:9100", "--log-rate", "1000000", "--no-syslog"});
  INFO(o.text);
  REQUIRE(o.options);
  CHECK(o.options->control_socket.empty());
  CHECK(o.options->prometheus_file == "/tmp/x.prom");
  CHECK(o.options->prometheus_listen == "127.0.0.1:9100");
  CHECK(o.options->log_rate == 1000000);
  CHECK_FALSE(o.options->syslog);
  auto on = parse({"--syslog"});
  REQUIRE(on.options);
  CHECK(on.options->syslog);
}

TEST_CASE("bad values: the exact message, on the command line and in the file") {
  struct Case {
    const char* option;
    std::string value;
    std::string message;  // after "--option: " or "FILE:LINE: option 'option': "
  };
  const std::string path_allowed = "an absolute path to a file, at most ";
  const std::string listen_allowed =
      "ADDRESS:PORT with a numeric IPv4 address or an IPv6 address in brackets, not the "
      "wildcard, and a port 1-65535, e.g. 127.0.0.1:9125 or [::1]:9125";
  auto c = GENERATE_COPY(
      Case{"queues", "9-3",
           "got '9-3' (allowed: auto, or a queue number N or a range A-B with A <= B, 0-65535, at "
           "most 64 "
           "queues)"},
      Case{"profile", "cisco",
           "unknown profile 'cisco' (allowed: modern, pix-mailguard, pix-legacy, asa-default)"},
      Case{"profile", "asa-defualt",
           "unknown profile 'asa-defualt', did you mean 'asa-default'? (allowed: modern, "
           "pix-mailguard, pix-legacy, asa-default)"},
      Case{"hooks", "nat", "got 'nat' (allowed: a comma-separated list of forward, input, output)"},
      Case{"hooks", "input,input",
           "input is listed twice (allowed: a comma-separated list of forward, input, output)"},
      Case{"port", "0", "got '0' (allowed: a number 1-65535)"},
      Case{"port", "smtp", "got 'smtp' (allowed: a number 1-65535)"},
      Case{"queue-maxlen", "0", "got '0' (allowed: a number 1-1048576)"},
      Case{"max-flows", "-5", "got '-5' (allowed: a number 1-16777216)"},
      Case{"hold-timeout-ms", "5", "got '5' (allowed: a number 10-60000)"},
      Case{"done-mark", "0x6",
           "got '0x6' (allowed: a mark with exactly one bit set, e.g. 0x100000)"},
      Case{"inject-mark", "0", "got '0' (allowed: a non-zero 32-bit mark, e.g. 0x200000)"},
      Case{"strip-keyword", "AUTH,",
           "got 'AUTH,' (allowed: a comma-separated list of EHLO keywords, e.g. AUTH,CHUNKING)"},
      Case{"strip-keyword", "AUTH,AUTH", "AUTH is named twice"},
      Case{"answer-verb", "VRFY,FROB", "unknown SMTP verb 'FROB' (allowed: " + verb_names() + ")"},
      Case{"reset-verb", "VRFY,,EXPN",
           "got 'VRFY,,EXPN' (allowed: a comma-separated list of SMTP verbs, e.g. VRFY,EXPN)"},
      Case{"answer-reply", "250 ok",
           "got '250 ok' (allowed: a reply code 4xy or 5xy, a space and printable ASCII text, at "
           "most 510 characters, e.g. '550 5.7.1 Command blocked by policy')"},
      Case{"stats-interval", "1e3", "got '1e3' (allowed: a number 0-86400)"},
      Case{"control-socket", "ctl.sock",
           "got 'ctl.sock' (allowed: " + path_allowed + "107 bytes, or none)"},
      Case{
          "control-socket", "/" + std::string(107, 'x'),
          "got '/" + std::string(107, 'x') + "' (allowed: " + path_allowed + "107 bytes, or none)"},
      Case{"prometheus-file", "/var/lib/prom/",
           "got '/var/lib/prom/' (allowed: " + path_allowed + "4095 bytes)"},
      Case{"prometheus-listen", "localhost:9125",
           "got 'localhost:9125' (allowed: " + listen_allowed + ")"},
      Case{"prometheus-listen", "0.0.0.0:9125",
           "got '0.0.0.0:9125' (allowed: " + listen_allowed + ")"},
      Case{"prometheus-listen", "[::]:9125", "got '[::]:9125' (allowed: " + listen_allowed + ")"},
      Case{"prometheus-listen", "::1:9125", "got '::1:9125' (allowed: " + listen_allowed + ")"},
      Case{"prometheus-listen", "127.0.0.1:0",
           "got '127.0.0.1:0' (allowed: " + listen_allowed + ")"},
      Case{"prometheus-listen", "127.0.0.1", "got '127.0.0.1' (allowed: " + listen_allowed + ")"},
      Case{"log-rate", "1000001", "got '1000001' (allowed: a number 0-1000000)"});
  INFO(c.option << " " << c.value);
  auto cl = parse({std::string("--") + c.option, c.value});
  CHECK_FALSE(cl.options);
  CHECK(cl.exit_code == 2);
  CHECK(cl.text == std::string("smtpguardd: --") + c.option + ": " + c.message +
                       "\nTry 'smtpguardd --help'.\n");

  auto o = from_file(std::string("# comment\n\n") + c.option + " = " + c.value + "\n");
  REQUIRE_FALSE(o);
  CHECK(o.error().text() ==
        std::string("/etc/smtpguard/test.conf:3: option '") + c.option + "': " + c.message);
  CHECK(exit_code(o.error(), false) == 1);
  CHECK(error_message(o.error()) == o.error().text() + "\n");
}

TEST_CASE("file: switches take true or false") {
  struct Case {
    const char* text;
    bool ok;
    bool install, fail_open, tuning, verbose, syslog;
  };
  auto c =
      GENERATE(Case{"install-rules = true\n", true, true, false, true, false, true},
               Case{"install-rules = false\nfail-open = 1\n", true, false, true, true, false, true},
               Case{"no-conntrack-tuning = true\n", true, false, false, false, false, true},
               Case{"no-conntrack-tuning = no\n", true, false, false, true, false, true},
               Case{"verbose = on\nsyslog = off\n", true, false, false, true, true, false},
               Case{"no-syslog = true\n", true, false, false, true, false, false},
               Case{"no-syslog = false\n", true, false, false, true, false, true},
               Case{"install-rules = maybe\n", false, false, false, false, false, false},
               Case{"verbose =\n", false, false, false, false, false, false},
               Case{"fail-open = TRUE\n", false, false, false, false, false, false});
  INFO(c.text);
  auto o = from_file(c.text);
  REQUIRE(o.has_value() == c.ok);
  if (!c.ok) {
    CHECK_THAT(o.error().text(),
               Catch::EndsWith("(allowed: true or false, also yes/no, on/off, 1/0)"));
    return;
  }
  CHECK(o->install_rules == c.install);
  CHECK(o->fail_open == c.fail_open);
  CHECK(o->conntrack_tuning == c.tuning);
  CHECK(o->verbose == c.verbose);
  CHECK(o->syslog == c.syslog);
}

TEST_CASE("the command line wins over the file, option by option") {
  const std::string text =
      "queues = 0-3\nport = 2525\nprofile = asa-default\nstrip-keyword = AUTH\n"
      "install-rules = false\nsyslog = false\nlog-rate = 5\n";
  auto o = from_file(text, {"--port", "25", "--install-rules", "--strip-keyword", "DSN",
                            "--strip-keyword", "SIZE", "--syslog"});
  INFO((o ? "" : o.error().text()));
  REQUIRE(o);
  CHECK(o->port == 25);
  CHECK(o->queues == QueueSpec{false, QueueRange{0, 3}});  // from the file
  CHECK(o->profile == "asa-default");
  CHECK(o->install_rules);
  CHECK(o->overrides.strip_keywords ==
        std::vector<EhloKeyword>{EhloKeyword::kDsn, EhloKeyword::kSize});
  CHECK(o->syslog);
  CHECK(o->log_rate == 5);
  // --no-syslog against "syslog = true": one setting, the command line's.
  auto off = from_file("syslog = true\n", {"--no-syslog"});
  REQUIRE(off);
  CHECK_FALSE(off->syslog);
  // A bad value the command line replaces is never looked at.
  auto replaced = from_file("port = nonsense\n", {"--port", "26"});
  REQUIRE(replaced);
  CHECK(replaced->port == 26);
}

TEST_CASE("file: unknown and misplaced keys") {
  struct Case {
    const char* text;
    const char* message;
  };
  auto c = GENERATE(
      Case{"queus = 1\n",
           "/etc/smtpguard/test.conf:1: option 'queus': unknown option, did you "
           "mean 'queues'?"},
      Case{"frobnicate = 1\n", "/etc/smtpguard/test.conf:1: option 'frobnicate': unknown option"},
      Case{"banner = mask\n",
           "/etc/smtpguard/test.conf:1: option 'banner': unknown option (policy settings go in "
           "a [policy] or [policy.NAME] section)"},
      Case{"\ncommand.VRFY = mask\n",
           "/etc/smtpguard/test.conf:2: option 'command.VRFY': unknown option (policy settings "
           "go in a [policy] or [policy.NAME] section)"},
      Case{"config = /etc/other.conf\n",
           "/etc/smtpguard/test.conf:1: option 'config': only on the command line"},
      Case{"check-config = true\n",
           "/etc/smtpguard/test.conf:1: option 'check-config': only on the command line"},
      Case{"help = true\n", "/etc/smtpguard/test.conf:1: option 'help': only on the command line"},
      Case{"syslog = true\nno-syslog = true\n",
           "/etc/smtpguard/test.conf:2: option 'no-syslog': contradicts 'syslog' (line 1) "
           "(allowed: one of the two)"},
      Case{"inject-mark = 0x100000\n",
           "/etc/smtpguard/test.conf:1: option 'inject-mark': the inject mark 0x100000 and the "
           "done mark 0x100000 (--done-mark) share bits 0x100000 (allowed: marks with no bit in "
           "common)"},
      Case{"inject-mark = 0x3\ndone-mark = 0x1\n",
           "/etc/smtpguard/test.conf:1: option 'inject-mark': the inject mark 0x3 and the done "
           "mark 0x1 ('done-mark' (line 2)) share bits 0x1 (allowed: marks with no bit in "
           "common)"},
      Case{"done-mark = 0x200000\n",
           "/etc/smtpguard/test.conf:1: option 'done-mark': the done mark 0x200000 and the "
           "inject mark 0x200000 (--inject-mark) share bits 0x200000 (allowed: marks with no "
           "bit in common)"},
      Case{"answer-verb = VRFY\nreset-verb = VRFY\n",
           "/etc/smtpguard/test.conf:2: option 'reset-verb': VRFY is named in both --answer-verb "
           "and --reset-verb"});
  INFO(c.text);
  auto o = from_file(c.text);
  REQUIRE_FALSE(o);
  CHECK(o.error().text() == c.message);
}

TEST_CASE("command line: --syslog and --no-syslog together are an error") {
  auto cl = parse({"--syslog", "--no-syslog"});
  CHECK_FALSE(cl.options);
  CHECK(cl.exit_code == 2);
  CHECK(cl.text ==
        "smtpguardd: --no-syslog: contradicts --syslog (allowed: one of the two)\n"
        "Try 'smtpguardd --help'.\n");
}

TEST_CASE("command line: --config and --check-config are kept apart from the options") {
  Arguments a = arguments({"--check-config", "--port", "2525", "--config", "/tmp/x.conf",
                           "--install-rules", "--strip-keyword", "AUTH", "--strip-keyword", "DSN"});
  CHECK(a.check_config);
  CHECK(a.config_given);
  CHECK(a.config_path == "/tmp/x.conf");
  using Pair = std::pair<std::string, std::string>;
  CHECK(a.given == std::vector<Pair>{{"port", "2525"},
                                     {"install-rules", "true"},
                                     {"strip-keyword", "AUTH"},
                                     {"strip-keyword", "DSN"}});
  Arguments d = arguments({});
  CHECK_FALSE(d.check_config);
  CHECK_FALSE(d.config_given);
  CHECK(d.config_path == "/etc/smtpguard/smtpguard.conf");
}

TEST_CASE("load: a missing default file is no file, a missing --config file is an error") {
  Arguments missing_default;
  missing_default.config_path = "/nonexistent/smtpguard.conf";
  auto d = load_configuration(missing_default);
  REQUIRE(d);
  CHECK(d->options.config_file.empty());
  CHECK(d->policies->rules().empty());
  CHECK(d->policies->fallback()->name == "modern");

  Arguments missing_given = missing_default;
  missing_given.config_given = true;
  auto g = load_configuration(missing_given);
  REQUIRE_FALSE(g);
  CHECK(g.error().text() == "/nonexistent/smtpguard.conf: cannot read: No such file or directory");
  CHECK(exit_code(g.error(), false) == 1);
  CHECK(exit_code(g.error(), true) == 1);

  // A bad command-line value exits 2, or 1 under --check-config.
  auto bad = resolve_options(arguments({"--port", "0"}), nullptr);
  REQUIRE_FALSE(bad);
  CHECK(exit_code(bad.error(), false) == 2);
  CHECK(exit_code(bad.error(), true) == 1);
}

TEST_CASE("load: the file's policies, with the command-line overrides on the default") {
  const std::string path = "/tmp/smtpguard-options-test." + std::to_string(::getpid()) + ".conf";
  {
    std::ofstream out(path);
    out << "profile = pix-mailguard\n"
           "[policy]\n"
           "command.HELP = answer\n"
           "[policy.mx]\n"
           "match-server = 198.18.2.0/24\n"
           "profile = asa-default\n";
  }
  auto c = load_configuration(arguments({"--config", path, "--answer-verb", "VRFY"}));
  std::remove(path.c_str());
  INFO((c ? "" : c.error().text()));
  REQUIRE(c);
  CHECK(c->options.config_file == path);
  const sg::policy::Profile& fallback = *c->policies->fallback();
  CHECK(fallback.name == "pix-mailguard");
  CHECK(fallback.verb_action(Verb::kHelp) == CommandAction::kAnswer);
  CHECK(fallback.verb_action(Verb::kVrfy) == CommandAction::kAnswer);
  REQUIRE(c->policies->rules().size() == 1);
  CHECK(c->policies->rules()[0].profile->name == "asa-default");
  CHECK(c->policies->rules()[0].profile->verb_action(Verb::kVrfy) == CommandAction::kAllow);
  CHECK(describe_configuration(c->options) ==
        "configuration: " + path +
            "\n"
            "policy mx (line 4): server 198.18.2.0/24; client any; port any; profile "
            "asa-default; no overrides\n"
            "policy default: every other connection; profile pix-mailguard\n"
            "    command.HELP = answer\n"
            "    --answer-verb VRFY\n");
}

TEST_CASE("reload: which changes need a restart, and what a reload takes over") {
  Options running;
  Options loaded;
  CHECK(restart_only_changes(running, loaded).empty());
  loaded.profile = "asa-default";
  loaded.overrides.answer_verbs = {Verb::kVrfy};
  loaded.stats_interval_s = 5;
  loaded.config_file = "/x.conf";
  CHECK(restart_only_changes(running, loaded).empty());
  loaded.queues = QueueSpec{false, QueueRange{0, 1}};
  loaded.worker_cpus = {1};
  loaded.hooks = {Hook::kInput};
  loaded.port = 26;
  loaded.install_rules = true;
  loaded.fail_open = true;
  loaded.queue_maxlen = 1;
  loaded.max_flows = 1;
  loaded.hold_timeout_ms = 10;
  loaded.done_mark = 1;
  loaded.inject_mark = 2;
  loaded.conntrack_tuning = false;
  loaded.verbose = true;
  loaded.control_socket = "";
  loaded.prometheus_file = "/p";
  loaded.prometheus_listen = "127.0.0.1:1";
  loaded.log_rate = 1;
  loaded.syslog = false;
  CHECK(restart_only_changes(running, loaded) ==
        std::vector<std::string>{"queues", "worker-cpus", "install-rules", "hooks", "port",
                                 "fail-open", "queue-maxlen", "max-flows", "hold-timeout-ms",
                                 "done-mark", "inject-mark", "no-conntrack-tuning", "verbose",
                                 "control-socket", "prometheus-file", "prometheus-listen",
                                 "log-rate", "syslog"});
  apply_reloadable(running, loaded);
  CHECK(running.profile == "asa-default");
  CHECK(running.overrides.answer_verbs == std::vector<Verb>{Verb::kVrfy});
  CHECK(running.stats_interval_s == 5);
  CHECK(running.config_file == "/x.conf");
  CHECK(running.queues.automatic);  // restart-only: kept
  CHECK(running.worker_cpus.empty());
  CHECK(running.port == 25);
  CHECK(running.syslog);
}

TEST_CASE("help documents every option and the configuration file") {
  auto help = parse({"--help"});
  REQUIRE(help.exit_code == 0);
  for (const std::string& name : file_option_names()) {
    INFO(name);
    CHECK_THAT(help.text, Catch::Contains("--" + name + " "));
  }
  for (const char* text :
       {"--config", "--check-config", "[policy]", "[policy.NAME]", "match-server", "match-client",
        "match-port", "banner-text", "command.VERB", "command-rate.VERB", "keyword.KEYWORD",
        "answer-reply", "max-command-line", "max-reply-line", "check.mime-encoding", "SIGHUP"}) {
    INFO(text);
    CHECK_THAT(help.text, Catch::Contains(text));
  }
}
