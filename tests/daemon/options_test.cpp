// smtpguardd's command line (src/daemon/options.hpp). Lives here because the unit-test glob
// covers tests/nft and tests/nfq for the kernel shell.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "daemon/options.hpp"

using namespace sg::daemon;
using sg::nft::Hook;
using sg::policy::CommandAction;
using sg::policy::KeywordAction;
using sg::smtp::EhloKeyword;
using sg::smtp::Verb;

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
  CHECK(o.inject_mark == kDefaultInjectMark);
  CHECK(o.inject_mark == sg::nft::RuleOptions{}.inject_mark);
  CHECK(o.done_mark == sg::nft::RuleOptions{}.done_mark);
  CHECK((o.inject_mark & o.done_mark) == 0);
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
    CHECK_THAT(r.error(), Catch::Contains("non-zero"));
  }
}

TEST_CASE("the inject mark and the done mark share no bit") {
  struct Case {
    std::vector<std::string> args;
    bool ok;
  };
  auto c = GENERATE(Case{{"--inject-mark", "0x1", "--done-mark", "0x2"}, true},
                    Case{{"--inject-mark", "0x300000", "--done-mark", "0x400000"}, true},
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
  for (const char* bad : {"", ",", "AUTH,", ",AUTH", "AUTH,,DSN", " AUTH", "AUTH DSN"}) {
    INFO("list " << bad);
    CHECK_FALSE(parse_keyword_list(bad));
    CHECK_FALSE(parse_verb_list(bad));
  }
}

TEST_CASE("an unknown name is reported alone") {
  auto k = parse_keyword_list("AUTH,STARTTLSX,CHUNKING");
  REQUIRE_FALSE(k);
  CHECK(k.error() == "unknown EHLO keyword 'STARTTLSX'");
  auto v = parse_verb_list("VRFY,EXPN,FROB");
  REQUIRE_FALSE(v);
  CHECK(v.error() == "unknown SMTP verb 'FROB'");
  // A keyword is not a verb and the other way round.
  CHECK_FALSE(parse_verb_list("PIPELINING"));
  CHECK_FALSE(parse_keyword_list("MAIL"));
  auto cl = parse({"--strip-keyword", "AUTH,NOPE"});
  CHECK(cl.text ==
        "smtpguardd: --strip-keyword: unknown EHLO keyword 'NOPE'\n"
        "Try 'smtpguardd --help'.\n");
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
    CHECK_THAT(r.error(), Catch::Contains("4xy or 5xy") && Catch::Contains("510"));
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
