// Policy sections of the configuration file (src/config/profile_setting.hpp, policy_config.hpp):
// every override key and what it changes, every bad value with its exact message, rules in file
// order, and the shipped example configuration.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/options.hpp"
#include "config/policy_config.hpp"
#include "config/profile_setting.hpp"

using namespace sg::config;
using sg::policy::BannerAction;
using sg::policy::CheckAction;
using sg::policy::CommandAction;
using sg::policy::KeywordAction;
using sg::policy::Profile;
using sg::smtp::EhloKeyword;
using sg::smtp::Verb;

namespace {

constexpr size_t kUnknownVerb = sg::smtp::kVerbCount;

size_t at(Verb v) {
  return static_cast<size_t>(v);
}
size_t at(EhloKeyword k) {
  return static_cast<size_t>(k);
}

sg::net::IpAddress ip(const char* text) {
  auto s = sg::policy::parse_subnet(text);
  REQUIRE(s);
  return s->address;
}

ConfigFile file_of(const std::string& text) {
  auto f = parse_config_text("p.conf", text);
  REQUIRE(f);
  return *f;
}

std::string policy_error(const std::string& text) {
  auto config = parse_policy_config(file_of(text));
  REQUIRE_FALSE(config);
  return config.error().text();
}

std::shared_ptr<const sg::policy::PolicySet> policies_of(const std::string& text,
                                                         const char* profile = "modern") {
  auto config = parse_policy_config(file_of(text));
  INFO((config ? "" : config.error().text()));
  REQUIRE(config);
  auto set = build_policy_set(profile, *config, nullptr);
  INFO((set ? "" : set.error().text()));
  REQUIRE(set);
  return *set;
}

std::filesystem::path example_config() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "systemd" /
         "smtpguard.conf";
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The example file with every commented-out setting and section header put in force.
std::string uncommented(const std::string& text) {
  return std::regex_replace(text, std::regex("^#([a-z\\[])", std::regex::multiline), "$1");
}

}  // namespace

TEST_CASE("override keys: each parsed, normalised, and changing what it names") {
  struct Case {
    const char* key;
    const char* value;
    const char* norm_key;
    const char* norm_value;
    std::function<bool(const Profile&)> changed;
  };
  using C = Case;
  auto c = GENERATE(
      C{"banner", "mask-all", "banner", "mask-all",
        [](const Profile& p) { return p.banner == BannerAction::kMaskAll; }},
      C{"banner", "replace", "banner", "replace",
        [](const Profile& p) { return p.banner == BannerAction::kReplace; }},
      C{"banner-text", "mx.example.org ESMTP ready", "banner-text", "mx.example.org ESMTP ready",
        [](const Profile& p) { return p.banner_text == "mx.example.org ESMTP ready"; }},
      C{"command.VRFY", "mask", "command.VRFY", "mask",
        [](const Profile& p) { return p.verbs[at(Verb::kVrfy)] == CommandAction::kMask; }},
      C{"command.vrfy", "noop", "command.VRFY", "noop",
        [](const Profile& p) { return p.verbs[at(Verb::kVrfy)] == CommandAction::kNoop; }},
      C{"command.x-link2state", "drop-connection", "command.X-LINK2STATE", "drop-connection",
        [](const Profile& p) {
          return p.verbs[at(Verb::kXlink2state)] == CommandAction::kDrop;
        }},
      C{"command.EXPN", "answer", "command.EXPN", "answer",
        [](const Profile& p) {
          return p.verbs[at(Verb::kExpn)] == CommandAction::kAnswer &&
                 p.reply_for(Verb::kExpn) == p.answer_reply;
        }},
      C{"command.EXPN", "answer   502 5.5.1 Not here", "command.EXPN", "answer 502 5.5.1 Not here",
        [](const Profile& p) {
          return p.verbs[at(Verb::kExpn)] == CommandAction::kAnswer &&
                 p.reply_for(Verb::kExpn) == "502 5.5.1 Not here";
        }},
      C{"command.*", "reset", "command.*", "reset",
        [](const Profile& p) { return p.unknown_verb == CommandAction::kReset; }},
      C{"command.*", "answer 550 no", "command.*", "answer 550 no",
        [](const Profile& p) {
          return p.unknown_verb == CommandAction::kAnswer &&
                 p.reply_for(Verb::kUnknown) == "550 no";
        }},
      C{"command.HELP", "log", "command.HELP", "log",
        [](const Profile& p) { return p.verbs[at(Verb::kHelp)] == CommandAction::kLog; }},
      C{"command.TURN", "allow", "command.TURN", "allow",
        [](const Profile& p) { return p.verbs[at(Verb::kTurn)] == CommandAction::kAllow; }},
      C{"command-rate.VRFY", "10", "command-rate.VRFY", "10",
        [](const Profile& p) { return p.rate_for(Verb::kVrfy).per_second == 10; }},
      C{"command-rate.*", "1000000", "command-rate.*", "1000000",
        [](const Profile& p) { return p.verb_rates[kUnknownVerb].per_second == 1000000; }},
      C{"keyword.AUTH", "strip", "keyword.AUTH", "strip",
        [](const Profile& p) { return p.keywords[at(EhloKeyword::kAuth)] == KeywordAction::kStrip; }},
      C{"keyword.starttls", "mask", "keyword.STARTTLS", "mask",
        [](const Profile& p) {
          return p.keywords[at(EhloKeyword::kStarttls)] == KeywordAction::kMask;
        }},
      C{"keyword.XEXCH50", "allow", "keyword.XEXCH50", "allow",
        [](const Profile& p) {
          return p.keywords[at(EhloKeyword::kXexch50)] == KeywordAction::kAllow;
        }},
      C{"keyword.*", "strip", "keyword.*", "strip",
        [](const Profile& p) { return p.unknown_keyword == KeywordAction::kStrip; }},
      C{"answer-reply", "421 4.7.0 Try later", "answer-reply", "421 4.7.0 Try later",
        [](const Profile& p) { return p.answer_reply == "421 4.7.0 Try later"; }},
      C{"max-command-line", "2048", "max-command-line", "2048",
        [](const Profile& p) { return p.max_command_line == 2048; }},
      C{"max-reply-line", "512", "max-reply-line", "512",
        [](const Profile& p) { return p.max_reply_line == 512; }},
      C{"check.command-line-length", "512 drop-connection", "check.command-line-length",
        "512 drop-connection",
        [](const Profile& p) {
          return p.checks.command_line == sg::policy::Limit{CheckAction::kDropConnection, 512};
        }},
      C{"check.command-line-length", "1000  mask", "check.command-line-length", "1000 mask",
        [](const Profile& p) {
          return p.checks.command_line == sg::policy::Limit{CheckAction::kMask, 1000};
        }},
      C{"check.reply-line-length", "600 log", "check.reply-line-length", "600 log",
        [](const Profile& p) {
          return p.checks.reply_line == sg::policy::Limit{CheckAction::kLog, 600};
        }},
      C{"check.special-chars", "mask", "check.special-chars", "mask",
        [](const Profile& p) { return p.checks.special_chars == CheckAction::kMask; }},
      C{"check.sender-length", "320 reset", "check.sender-length", "320 reset",
        [](const Profile& p) {
          return p.checks.sender_length == sg::policy::Limit{CheckAction::kReset, 320};
        }},
      C{"check.sender", "mask *@spam.example,  <>", "check.sender", "mask *@spam.example, <>",
        [](const Profile& p) {
          return p.checks.sender ==
                 sg::policy::PatternCheck{CheckAction::kMask, {"*@spam.example", "<>"}};
        }},
      C{"check.relay", "reset example.org,*.example.org", "check.relay",
        "reset example.org, *.example.org",
        [](const Profile& p) {
          return p.checks.relay ==
                 sg::policy::PatternCheck{CheckAction::kReset, {"example.org", "*.example.org"}};
        }},
      C{"check.recipients", "100 drop-connection", "check.recipients", "100 drop-connection",
        [](const Profile& p) {
          return p.checks.recipients == sg::policy::Limit{CheckAction::kDropConnection, 100};
        }},
      C{"check.invalid-recipients", "20 log", "check.invalid-recipients", "20 log",
        [](const Profile& p) {
          return p.checks.invalid_recipients == sg::policy::Limit{CheckAction::kLog, 20};
        }},
      C{"check.header-line-length", "998 reset", "check.header-line-length", "998 reset",
        [](const Profile& p) {
          return p.checks.header_line == sg::policy::Limit{CheckAction::kReset, 998};
        }},
      C{"check.to-fields", "5 log", "check.to-fields", "5 log",
        [](const Profile& p) {
          return p.checks.to_fields == sg::policy::Limit{CheckAction::kLog, 5};
        }},
      C{"check.body-line-length", "998 log", "check.body-line-length", "998 log",
        [](const Profile& p) {
          return p.checks.body_line == sg::policy::Limit{CheckAction::kLog, 998};
        }},
      C{"check.message-size", "50M reset", "check.message-size", "52428800 reset",
        [](const Profile& p) {
          return p.checks.message_size == sg::policy::Limit{CheckAction::kReset, 50u << 20};
        }},
      C{"check.message-size", "10k log", "check.message-size", "10240 log",
        [](const Profile& p) {
          return p.checks.message_size == sg::policy::Limit{CheckAction::kLog, 10240};
        }},
      C{"check.message-size", "1G drop-connection", "check.message-size",
        "1073741824 drop-connection",
        [](const Profile& p) {
          return p.checks.message_size ==
                 sg::policy::Limit{CheckAction::kDropConnection, uint64_t{1} << 30};
        }},
      C{"check.message-size", "1000", "check.message-size", "",
        [](const Profile&) { return false; }},  // no action: an error (empty norm_value)
      C{"check.mime-filename-length", "255 drop-connection", "check.mime-filename-length",
        "255 drop-connection",
        [](const Profile& p) {
          return p.checks.mime_filename == sg::policy::Limit{CheckAction::kDropConnection, 255};
        }},
      C{"check.mime-filetype", "reset *.exe, *.scr", "check.mime-filetype", "reset *.exe, *.scr",
        [](const Profile& p) {
          return p.checks.mime_filetype ==
                 sg::policy::PatternCheck{CheckAction::kReset, {"*.exe", "*.scr"}};
        }},
      C{"check.mime-encoding", "log x-uuencode", "check.mime-encoding", "log x-uuencode",
        [](const Profile& p) {
          return p.checks.mime_encoding ==
                 sg::policy::PatternCheck{CheckAction::kLog, {"x-uuencode"}};
        }},
      C{"check.mime-encoding", "off", "check.mime-encoding", "off",
        [](const Profile& p) { return p.checks.mime_encoding == sg::policy::PatternCheck{}; }},
      C{"check.smuggling", "drop-connection", "check.smuggling", "drop-connection",
        [](const Profile& p) { return p.checks.smuggling == CheckAction::kDropConnection; }},
      C{"check.smuggling", "sanitize", "check.smuggling", "sanitize",
        [](const Profile& p) { return p.checks.smuggling == CheckAction::kSanitize; }},
      C{"check.starttls-injection", "log", "check.starttls-injection", "log",
        [](const Profile& p) { return p.checks.starttls_injection == CheckAction::kLog; }},
      C{"check.starttls-injection", "off", "check.starttls-injection", "off",
        [](const Profile& p) { return p.checks.starttls_injection == CheckAction::kOff; }},
      C{"check.command-line-length", "off", "check.command-line-length", "off",
        [](const Profile& p) { return p.checks.command_line.action == CheckAction::kOff; }});
  INFO(c.key << " = " << c.value);
  auto s = parse_profile_setting(c.key, c.value);
  if (std::string(c.norm_value).empty()) {
    CHECK_FALSE(s);
    return;
  }
  INFO((s ? "" : s.error().text()));
  REQUIRE(s);
  CHECK(s->key == c.norm_key);
  CHECK(s->value == c.norm_value);
  CHECK(is_profile_setting(c.key));
  // From a profile where the change is visible (asa-default has every check on where it has
  // one): the setting makes it.
  for (const char* base : {"modern", "asa-default", "pix-legacy"}) {
    INFO(base);
    Profile p = *sg::policy::builtin_profile(base);
    s->apply(p);
    CHECK(c.changed(p));
  }
}

TEST_CASE("a setting changes only what it names") {
  const Profile base = *sg::policy::builtin_profile("asa-default");
  Profile p = base;
  parse_profile_setting("command.VRFY", "reset")->apply(p);
  parse_profile_setting("check.recipients", "7 log")->apply(p);
  for (size_t i = 0; i < sg::smtp::kVerbCount; ++i) {
    INFO(sg::smtp::to_string(static_cast<Verb>(i)));
    CHECK(p.verbs[i] == (i == at(Verb::kVrfy) ? CommandAction::kReset : base.verbs[i]));
  }
  CHECK(p.unknown_verb == base.unknown_verb);
  CHECK(p.keywords == base.keywords);
  sg::policy::Checks expected = base.checks;
  expected.recipients = {CheckAction::kLog, 7};
  CHECK(p.checks == expected);
  CHECK(p.banner == base.banner);
  CHECK(p.answer_reply == base.answer_reply);
}

TEST_CASE("override keys: a bad value is an error saying what is allowed") {
  const std::string command_allowed =
      "'ACTION [REPLY]' with ACTION allow, log, mask, noop, answer, reset, drop-connection; "
      "only answer takes a REPLY: 4xy or 5xy, a space and text";
  const std::string reply_allowed =
      "a reply code 4xy or 5xy, a space and printable ASCII text, at most 510 characters, e.g. "
      "'550 5.7.1 Command blocked by policy'";
  const std::string limit_mask =
      "'N ACTION' with N 1-1000000 and ACTION off, log, mask, reset, drop-connection; or 'off'";
  const std::string line_limit_no_mask =
      "'N ACTION' with N 1-1048576 and ACTION off, log, reset, drop-connection; or 'off'";
  const std::string size_allowed =
      "'N ACTION' with N 1-1099511627776 (or with a suffix K, M, G) and ACTION off, log, reset, "
      "drop-connection; or 'off'";
  const std::string sender_allowed =
      "'ACTION PATTERN[, PATTERN...]' with ACTION off, log, mask, reset, drop-connection and "
      "PATTERN an address pattern ('*' any run of characters, '?' one); or 'off'";
  const std::string relay_allowed =
      "'ACTION PATTERN[, PATTERN...]' with ACTION off, log, mask, reset, drop-connection and "
      "PATTERN a domain pattern of letters, digits, '.', '-', '_' ('*' any run of characters, "
      "'?' one); or 'off'";
  const std::string filetype_allowed =
      "'ACTION PATTERN[, PATTERN...]' with ACTION off, log, reset, drop-connection and PATTERN "
      "a file name pattern ('*' any run of characters, '?' one); or 'off'";
  const std::string mask_problem =
      "'mask' only works on checks of command lines; here the bytes are the server's or the "
      "message's";
  struct Case {
    std::string key, value, message;
  };
  auto c = GENERATE_COPY(
      Case{"banner", "asterisks", "got 'asterisks' (allowed: pass, mask, mask-all, replace)"},
      Case{"banner", "", "got '' (allowed: pass, mask, mask-all, replace)"},
      Case{"banner-text", "", "got '' (allowed: printable ASCII text, 1-500 characters)"},
      Case{"banner-text", "caf\xc3\xa9",
           "got 'caf\\xc3\\xa9' (allowed: printable ASCII text, 1-500 characters)"},
      Case{"banner-text", std::string(501, 'x'),
           "got 501 characters (allowed: printable ASCII text, 1-500 characters)"},
      Case{"command.VRFY", "block", "got 'block' (allowed: " + command_allowed + ")"},
      Case{"command.VRFY", "", "got '' (allowed: " + command_allowed + ")"},
      Case{"command.VRFY", "Mask", "got 'Mask' (allowed: " + command_allowed + ")"},
      Case{"command.VRFY", "mask 550 no",
           "'mask' takes no reply text (allowed: " + command_allowed + ")"},
      Case{"command.VRFY", "answer 250 fine", "got '250 fine' (allowed: " + reply_allowed + ")"},
      Case{"command.VRFY", "answer 550 tab\there",
           "got a byte 0x9 at position 7 (allowed: " + reply_allowed + ")"},
      Case{"command.BDAT", "answer",
           "BDAT cannot be answered: its chunk follows without waiting for a reply (allowed: "
           "allow, log, mask, noop, reset, drop-connection)"},
      Case{"command.VRFYY", "mask",
           "unknown SMTP verb 'VRFYY', did you mean 'VRFY'? (allowed: HELO, EHLO, MAIL, RCPT, "
           "DATA, BDAT, RSET, NOOP, QUIT, VRFY, EXPN, HELP, STARTTLS, AUTH, ETRN, TURN, ATRN, "
           "SAML, SEND, SOML, XEXCH50, X-LINK2STATE, X-EXPS, or * for every other verb)"},
      Case{"command.FROBNICATE", "mask",
           "unknown SMTP verb 'FROBNICATE' (allowed: " + verb_names() +
               ", or * for every other verb)"},
      Case{"command-rate.VRFY", "0", "got '0' (allowed: a number 1-1000000 per second)"},
      Case{"command-rate.VRFY", "ten", "got 'ten' (allowed: a number 1-1000000 per second)"},
      Case{"command-rate.NOOPP", "1",
           "unknown SMTP verb 'NOOPP', did you mean 'NOOP'? (allowed: " + verb_names() +
               ", or * for every other verb)"},
      Case{"keyword.AUTH", "remove", "got 'remove' (allowed: allow, mask, strip)"},
      Case{"keyword.STARTLS", "mask",
           "unknown EHLO keyword 'STARTLS', did you mean 'STARTTLS'? (allowed: " + keyword_names() +
               ", or * for every other one)"},
      Case{"answer-reply", "250 ok", "got '250 ok' (allowed: " + reply_allowed + ")"},
      Case{"max-command-line", "100", "got '100' (allowed: a number 512-65536)"},
      Case{"max-reply-line", "65537", "got '65537' (allowed: a number 512-65536)"},
      Case{"check.recipients", "0 reset", "bad limit '0' (allowed: " + limit_mask + ")"},
      Case{"check.recipients", "100", "got '100' (allowed: " + limit_mask + ")"},
      Case{"check.recipients", "reset 100", "bad limit 'reset' (allowed: " + limit_mask + ")"},
      Case{"check.recipients", "100 kill", "unknown action 'kill' (allowed: " + limit_mask + ")"},
      Case{"check.recipients", "100 reset now",
           "got '100 reset now' (allowed: " + limit_mask + ")"},
      Case{"check.recipients", "", "got '' (allowed: " + limit_mask + ")"},
      Case{"check.body-line-length", "998 mask",
           mask_problem + " (allowed: " + line_limit_no_mask + ")"},
      Case{"check.header-line-length", "1048577 log",
           "bad limit '1048577' (allowed: " + line_limit_no_mask + ")"},
      Case{"check.message-size", "2T reset", "bad limit '2T' (allowed: " + size_allowed + ")"},
      Case{"check.message-size", "1025G reset",
           "bad limit '1025G' (allowed: " + size_allowed + ")"},
      Case{"check.message-size", "100 mask", mask_problem + " (allowed: " + size_allowed + ")"},
      Case{"check.special-chars", "strip",
           "unknown action 'strip' (allowed: off, log, mask, reset, drop-connection)"},
      Case{"check.special-chars", "log now",
           "got 'log now' (allowed: off, log, mask, reset, drop-connection)"},
      Case{"check.sender", "reset",
           "'reset' needs at least one pattern (allowed: " + sender_allowed + ")"},
      Case{"check.sender", "reset a@b,", "got 'a@b,' (allowed: " + sender_allowed + ")"},
      Case{"check.sender", "reset a b", "bad pattern 'a b' (allowed: " + sender_allowed + ")"},
      Case{"check.relay", "mask exa mple.org",
           "bad pattern 'exa mple.org' (allowed: " + relay_allowed + ")"},
      Case{"check.relay", "mask user@example.org",
           "bad pattern 'user@example.org' (allowed: " + relay_allowed + ")"},
      Case{"check.mime-filetype", "mask *.exe",
           mask_problem + " (allowed: " + filetype_allowed + ")"},
      Case{"check.mime-filetype", "drop *.exe",
           "unknown action 'drop' (allowed: " + filetype_allowed + ")"},
      Case{"check.sendr", "reset x",
           "unknown check 'sendr', did you mean 'check.sender'? (allowed: command-line-length, "
           "reply-line-length, special-chars, sender-length, sender, relay, recipients, "
           "invalid-recipients, header-line-length, to-fields, body-line-length, message-size, "
           "mime-filename-length, mime-filetype, mime-encoding, smuggling, starttls-injection, "
           "early-talker, pipelining)"},
      Case{"check.smuggling", "mask",
           mask_problem + " (allowed: off, log, reset, drop-connection, sanitize)"},
      Case{"check.starttls-injection", "sanitize",
           "'sanitize' only works on check.smuggling (stray CR, LF and NUL bytes become spaces) "
           "(allowed: off, log, reset, drop-connection)"},
      Case{"check.recipients", "100 sanitize",
           "'sanitize' only works on check.smuggling (stray CR, LF and NUL bytes become spaces) "
           "(allowed: " +
               limit_mask + ")"},
      Case{"check.starttls-injection", "100 reset",
           "got '100 reset' (allowed: off, log, reset, drop-connection)"},
      Case{"check.", "x", "unknown policy option 'check.', did you mean 'check.NAME'?"},
      Case{"bannner", "mask", "unknown policy option 'bannner', did you mean 'banner'?"},
      Case{"comand.VRFY", "mask",
           "unknown policy option 'comand.VRFY', did you mean "
           "'command.VRFY'?"},
      Case{"keywords.AUTH", "strip",
           "unknown policy option 'keywords.AUTH', did you mean "
           "'keyword.AUTH'?"},
      Case{"frobnicate", "1", "unknown policy option 'frobnicate'"});
  INFO(c.key << " = " << c.value);
  auto s = parse_profile_setting(c.key, c.value);
  REQUIRE_FALSE(s);
  CHECK(s.error().text() == c.message);
}

TEST_CASE("a pattern list holds at most 1000 patterns") {
  std::string list = "reset p0";
  for (int i = 1; i < 1000; ++i) list += ",p" + std::to_string(i);
  CHECK(parse_profile_setting("check.mime-filetype", list));
  auto s = parse_profile_setting("check.mime-filetype", list + ",one-more");
  REQUIRE_FALSE(s);
  CHECK(s.error().text() == "1001 patterns (allowed: at most 1000)");
}

TEST_CASE("policy sections: rules in file order with their matches and profiles") {
  auto config =
      parse_policy_config(file_of("queues = 0-1\n"
                                  "[policy]\n"
                                  "banner = mask\n"
                                  "[policy.mx]\n"
                                  "match-server = 198.18.2.0/24, 2001:db8:2::/64\n"
                                  "match-port = 25\n"
                                  "profile = asa-default\n"
                                  "check.recipients = 50 drop-connection\n"
                                  "[policy.clients]\n"
                                  "match-client = 198.18.1.7, 2001:db8:1::/64\n"
                                  "command.* = log\n"));
  INFO((config ? "" : config.error().text()));
  REQUIRE(config);
  CHECK(config->file == "p.conf");
  REQUIRE(config->defaults.size() == 1);
  CHECK(config->defaults[0].key == "banner");
  CHECK(config->defaults[0].line == 3);
  REQUIRE(config->rules.size() == 2);
  const PolicySection& mx = config->rules[0];
  CHECK(mx.name == "mx");
  CHECK(mx.line == 4);
  REQUIRE(mx.servers.size() == 2);
  CHECK(mx.servers[0].to_string() == "198.18.2.0/24");
  CHECK(mx.servers[1].to_string() == "2001:db8:2::/64");
  CHECK(mx.clients.empty());
  CHECK(mx.server_port == 25);
  CHECK(mx.profile == "asa-default");
  REQUIRE(mx.settings.size() == 1);
  CHECK(mx.settings[0].key == "check.recipients");
  CHECK(mx.settings[0].line == 8);
  const PolicySection& clients = config->rules[1];
  CHECK(clients.name == "clients");
  CHECK(clients.servers.empty());
  REQUIRE(clients.clients.size() == 2);
  CHECK(clients.clients[0].to_string() == "198.18.1.7/32");
  CHECK_FALSE(clients.server_port);
  CHECK(clients.profile.empty());

  CHECK(describe_policies("modern", *config, "--answer-verb VRFY") ==
        "policy mx (line 4): server 198.18.2.0/24, 2001:db8:2::/64; client any; port 25; profile "
        "asa-default\n"
        "    check.recipients = 50 drop-connection\n"
        "policy clients (line 9): server any; client 198.18.1.7/32, 2001:db8:1::/64; port any; "
        "profile modern\n"
        "    command.* = log\n"
        "policy default: every other connection; profile modern\n"
        "    banner = mask\n"
        "    --answer-verb VRFY\n");
}

TEST_CASE("policy sections: the first matching rule wins, the default takes the rest") {
  auto set = policies_of(
      "[policy]\n"
      "banner = mask-all\n"
      "[policy.mail-port]\n"
      "match-server = 198.18.2.0/24\n"
      "match-port = 587\n"
      "profile = pix-legacy\n"
      "[policy.servers]\n"
      "match-server = 198.18.2.0/24, 2001:db8:2::/64\n"
      "profile = asa-default\n"
      "banner = replace\n"
      "banner-text = hello\n"
      "[policy.one-client]\n"
      "match-client = 198.18.1.9\n"
      "match-server = 198.18.3.0/24\n"
      "command.VRFY = reset\n");
  REQUIRE(set->rules().size() == 3);
  struct Case {
    const char* client;
    const char* server;
    uint16_t port;
    const char* rule;
  };
  auto c = GENERATE(Case{"198.18.1.1", "198.18.2.5", 587, "mail-port"},
                    Case{"198.18.1.1", "198.18.2.5", 25, "servers"},
                    Case{"2001:db8:1::1", "2001:db8:2::5", 25, "servers"},
                    Case{"2001:db8:1::1", "2001:db8:2::5", 587, "servers"},
                    Case{"198.18.1.9", "198.18.3.1", 25, "one-client"},
                    Case{"198.18.1.8", "198.18.3.1", 25, "default"},
                    Case{"198.18.1.9", "198.18.4.1", 25, "default"},
                    Case{"198.18.1.1", "198.19.2.5", 587, "default"});
  INFO(c.client << " -> " << c.server << ":" << c.port);
  CHECK(set->select_name(ip(c.client), ip(c.server), c.port) == c.rule);
  const Profile& p = *set->select(ip(c.client), ip(c.server), c.port);
  const std::string rule = c.rule;
  if (rule == "mail-port") {
    CHECK(p.name == "pix-legacy");
    CHECK(p.banner == BannerAction::kMaskAll);  // pix-legacy's own, not from [policy]
  } else if (rule == "servers") {
    CHECK(p.name == "asa-default");
    CHECK(p.banner == BannerAction::kReplace);
    CHECK(p.banner_text == "hello");
  } else if (rule == "one-client") {
    CHECK(p.name == "modern");               // the top-level profile
    CHECK(p.banner == BannerAction::kPass);  // [policy] does not apply to rules
    CHECK(p.verb_action(Verb::kVrfy) == CommandAction::kReset);
  } else {
    CHECK(p.name == "modern");
    CHECK(p.banner == BannerAction::kMaskAll);  // [policy]
    CHECK(p.verb_action(Verb::kVrfy) == CommandAction::kAllow);
  }
}

TEST_CASE("policy set: the command-line overrides come after [policy], for the default only") {
  auto config = parse_policy_config(
      file_of("[policy]\nanswer-reply = 550 from the file\nkeyword.AUTH = mask\n"
              "[policy.r]\nmatch-port = 2525\n"));
  REQUIRE(config);
  PolicyOverrides overrides;
  overrides.strip_keywords = {EhloKeyword::kAuth};
  overrides.answer_reply = "554 from the command line";
  auto set = build_policy_set("modern", *config,
                              [&](Profile p) { return apply_overrides(std::move(p), overrides); });
  REQUIRE(set);
  const Profile& fallback = *(*set)->fallback();
  CHECK(fallback.keyword_action(EhloKeyword::kAuth) == KeywordAction::kStrip);
  CHECK(fallback.answer_reply == "554 from the command line");
  const Profile& rule = *(*set)->rules().at(0).profile;
  CHECK(rule.keyword_action(EhloKeyword::kAuth) == KeywordAction::kAllow);
  CHECK(rule.answer_reply == "550 5.7.1 Command blocked by policy");
  // The built-in profile itself is untouched.
  CHECK(sg::policy::builtin_profile("modern")->keyword_action(EhloKeyword::kAuth) ==
        KeywordAction::kAllow);
}

TEST_CASE("policy sections: errors name the file, the line and the key") {
  struct Case {
    std::string text;
    std::string message;
  };
  auto c = GENERATE(
      Case{"[policy]\ncommand.VRFY = block\n",
           "p.conf:2: option 'policy.command.VRFY': got 'block' (allowed: 'ACTION [REPLY]' with "
           "ACTION allow, log, mask, noop, answer, reset, drop-connection; only answer takes a "
           "REPLY: 4xy or 5xy, a space and text)"},
      Case{"[policy.mx]\nmatch-server = 198.18.2.0/24\ncheck.to-fields = 5 mask\n",
           "p.conf:3: option 'policy.mx.check.to-fields': 'mask' only works on checks of "
           "command lines; here the bytes are the server's or the message's (allowed: 'N "
           "ACTION' with N 1-1000000 and ACTION off, log, reset, drop-connection; or 'off')"},
      Case{"[policy.mx]\nmatch-server = 198.18.2.1/24\n",
           "p.conf:2: option 'policy.mx.match-server': '198.18.2.1/24' has host bits set (did "
           "you mean 198.18.2.0/24?) (allowed: comma-separated IPv4 or IPv6 addresses or "
           "prefixes, e.g. 198.18.2.0/24, 2001:db8:2::/64)"},
      Case{"[policy.mx]\nmatch-client = 198.18.1.0/24,\n",
           "p.conf:2: option 'policy.mx.match-client': got '198.18.1.0/24,' (allowed: "
           "comma-separated IPv4 or IPv6 addresses or prefixes, e.g. 198.18.2.0/24, "
           "2001:db8:2::/64)"},
      Case{"[policy.mx]\nmatch-server = mx.example.org\n",
           "p.conf:2: option 'policy.mx.match-server': 'mx.example.org' is not an IPv4 or IPv6 "
           "address or prefix (a.b.c.d/N or x:y::/N) (allowed: comma-separated IPv4 or IPv6 "
           "addresses or prefixes, e.g. 198.18.2.0/24, 2001:db8:2::/64)"},
      Case{"[policy.mx]\nmatch-port = 0\n",
           "p.conf:2: option 'policy.mx.match-port': got '0' (allowed: a number 1-65535)"},
      Case{"[policy.mx]\nmatch-port = 25\nprofile = asa\n",
           "p.conf:3: option 'policy.mx.profile': unknown profile 'asa' (allowed: modern, "
           "pix-mailguard, pix-legacy, asa-default)"},
      Case{"[policy.mx]\nmatch-port = 25\nprofile = modren\n",
           "p.conf:3: option 'policy.mx.profile': unknown profile 'modren', did you mean "
           "'modern'? (allowed: modern, pix-mailguard, pix-legacy, asa-default)"},
      Case{"[policy.mx]\nmatch-port = 25\nmatch-sever = 198.18.2.0/24\n",
           "p.conf:3: option 'policy.mx.match-sever': unknown policy option 'match-sever', did "
           "you mean 'match-server'?"},
      Case{"[policy.mx]\nprofile = asa-default\n\n[policy.other]\nmatch-port = 25\n",
           "p.conf:1: section [policy.mx]: a rule must match something (allowed: match-server, "
           "match-client or match-port; settings for every other connection go in [policy])"},
      Case{"[policy]\nprofile = modern\n",
           "p.conf:2: option 'policy.profile': the default policy's profile is the top-level "
           "option 'profile' (allowed: override keys; 'profile' before the first section, or "
           "in a [policy.NAME] rule)"},
      Case{"[policy]\nmatch-server = 198.18.2.0/24\n",
           "p.conf:2: option 'policy.match-server': [policy] is for every connection no rule "
           "matches: it matches nothing itself (allowed: match keys in a [policy.NAME] "
           "section)"},
      Case{"[polcy]\n",
           "p.conf:1: section [polcy]: unknown section, did you mean [policy]? (allowed: "
           "[policy] and [policy.NAME]; top-level options come before the first section)"},
      Case{"[policy-mx]\n",
           "p.conf:1: section [policy-mx]: unknown section, did you mean [policy.mx]? (allowed: "
           "[policy] and [policy.NAME]; top-level options come before the first section)"},
      Case{"[mail]\n",
           "p.conf:1: section [mail]: unknown section (allowed: [policy] and [policy.NAME]; "
           "top-level options come before the first section)"},
      Case{"[policy.a.b]\n",
           "p.conf:1: section [policy.a.b]: bad policy name 'a.b' (allowed: letters, digits, "
           "'-', '_'; not 'default')"},
      Case{"[policy.default]\nmatch-port = 25\n",
           "p.conf:1: section [policy.default]: bad policy name 'default' (allowed: letters, "
           "digits, '-', '_'; not 'default')"});
  INFO(c.text);
  CHECK(policy_error(c.text) == c.message);
}

TEST_CASE("policy set: contradicting settings of one section are errors at their line") {
  struct Case {
    std::string text;
    std::string message;
  };
  auto c = GENERATE(
      Case{"[policy]\nbanner = replace\n",
           "p.conf:2: option 'policy.banner': 'replace' needs the text of the new greeting "
           "(allowed: banner-text = TEXT in the same section)"},
      Case{"[policy.r]\nmatch-port = 25\nbanner-text = hello\n",
           "p.conf:3: option 'policy.r.banner-text': banner-text is only used with banner = "
           "replace (allowed: banner = replace in the same section)"},
      Case{"[policy]\nbanner-text = hello\n[policy.r]\nmatch-port = 25\nbanner = replace\n",
           "p.conf:2: option 'policy.banner-text': banner-text is only used with banner = "
           "replace (allowed: banner = replace in the same section)"});
  INFO(c.text);
  auto config = parse_policy_config(file_of(c.text));
  REQUIRE(config);
  auto set = build_policy_set("modern", *config, nullptr);
  REQUIRE_FALSE(set);
  CHECK(set.error().text() == c.message);
}

TEST_CASE("the example configuration passes, as shipped and with every example in force") {
  const std::filesystem::path path = example_config();
  INFO(path);
  REQUIRE(std::filesystem::exists(path));
  Arguments shipped;
  shipped.config_path = path.string();
  shipped.config_given = true;
  auto loaded = load_configuration(shipped);
  INFO((loaded ? "" : loaded.error().text()));
  REQUIRE(loaded);
  // As shipped everything is commented out: the defaults.
  CHECK(restart_only_changes(Options{}, loaded->options).empty());
  CHECK(loaded->options.profile == "modern");
  CHECK(loaded->options.overrides.empty());
  CHECK(loaded->options.policy.rules.empty());
  CHECK(loaded->options.policy.defaults.empty());

  const std::string text = uncommented(read_text(path));
  auto file = parse_config_text("example", text);
  INFO((file ? "" : file.error().text()));
  REQUIRE(file);
  auto options = resolve_options(Arguments{}, &*file);
  INFO((options ? "" : options.error().text()));
  REQUIRE(options);
  auto set = make_policies(*options);
  INFO((set ? "" : set.error().text()));
  REQUIRE(set);
  CHECK((*set)->rules().size() == 2);

  // Every top-level option is shown, with its default value but for the three that have none.
  std::set<std::string> top, policy_keys;
  for (const ConfigEntry& e : file->entries) (e.section.empty() ? top : policy_keys).insert(e.key);
  for (const std::string& name : file_option_names()) {
    INFO(name);
    // syslog and no-syslog are one setting: the file shows syslog.
    if (name != "no-syslog") CHECK(top.count(name) == 1);
  }
  CHECK(restart_only_changes(Options{}, *options) ==
        std::vector<std::string>{"prometheus-file", "prometheus-listen", "event-json"});
  CHECK(options->profile == "modern");
  CHECK(options->stats_interval_s == 0);
  // Every override key appears in some section.
  for (const std::string& check : check_names()) {
    INFO(check);
    CHECK(policy_keys.count("check." + check) == 1);
  }
  for (const char* key :
       {"banner", "banner-text", "answer-reply", "max-command-line", "max-reply-line",
        "match-server", "match-client", "match-port", "profile"}) {
    INFO(key);
    CHECK(policy_keys.count(key) >= 1);
  }
  for (const char* prefix : {"command.", "command-rate.", "keyword."}) {
    INFO(prefix);
    CHECK(std::any_of(policy_keys.begin(), policy_keys.end(),
                      [&](const std::string& k) { return k.rfind(prefix, 0) == 0; }));
  }
}
