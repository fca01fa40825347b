// The policy model end to end through the inspector: actions beyond mask (log, drop-connection,
// banner replacement, per-verb replies, rate limits), parameter checks, and the decisions each
// of them logs. Dialogues are fed whole and split at every point: the outcome must not depend
// on segmentation.
#include <catch2/catch.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/dialogue_feed.hpp"
#include "core/flow_inspector.hpp"
#include "policy/profile.hpp"

using namespace sg;
using core::FlowInspector;
using policy::CheckAction;
using policy::Event;
using smtp::Dir;

namespace {

using test::C;
using test::S;

using Outcome = test::DialogueOutcome;
using test::feed_every_split;
using test::Step;

// Modern without the dialogue-order checks: these dialogues leave out most server replies
// (check.pipelining would log them); the order checks have tests/core/inspector_order_test.cpp.
policy::Profile modern() {
  policy::Profile p = *policy::builtin_profile("modern");
  p.checks.early_talker = CheckAction::kOff;
  p.checks.pipelining = CheckAction::kOff;
  return p;
}

void set_verb(policy::Profile& p, smtp::Verb v, policy::CommandAction a) {
  p.verbs[static_cast<size_t>(v)] = a;
}

const Step kGreeting{S, "220 mx.example.org ESMTP Postfix\r\n"};
const Step kEhlo{C, "EHLO client.example.net\r\n"};
const Step kEhloReply{S, "250-mx.example.org\r\n250-PIPELINING\r\n250 STARTTLS\r\n"};

}  // namespace

TEST_CASE("banner replace: the greeting becomes one configured line, every line of it",
          "[inspector_policy]") {
  policy::Profile p = modern();
  p.banner = policy::BannerAction::kReplace;
  p.banner_text = "mail gateway ready";
  const std::string multi = "220-mx.example.org ESMTP\r\n220-second line\r\n220 last\r\n";
  const Outcome o = feed_every_split(p, {{S, multi}, {C, "QUIT\r\n"}});
  CHECK(o.out[1] == "220 mail gateway ready\r\n");
  CHECK(o.out[0] == "QUIT\r\n");
  CHECK(o.events == std::vector<std::string>{"banner_replaced replace greeting",
                                             "banner_replaced replace greeting",
                                             "banner_replaced replace greeting"});
}

TEST_CASE("banner mask logs one decision per greeting line", "[inspector_policy]") {
  const Outcome o = feed_every_split(*policy::builtin_profile("pix-mailguard"), {kGreeting});
  CHECK(o.out[1] == "220 " + std::string(28, '*') + "\r\n");
  CHECK(o.events == std::vector<std::string>{"banner_masked mask greeting"});
}

TEST_CASE("command actions: log forwards, each blocked verb logs its own event",
          "[inspector_policy]") {
  policy::Profile p = modern();
  set_verb(p, smtp::Verb::kHelp, policy::CommandAction::kLog);
  set_verb(p, smtp::Verb::kVrfy, policy::CommandAction::kAnswer);
  p.verb_replies[static_cast<size_t>(smtp::Verb::kVrfy)] = "252 2.1.5 Send some mail";
  const Outcome o = feed_every_split(p, {kGreeting,
                                         {C, "HELP\r\n"},
                                         {S, "214 see RFC 5321\r\n"},
                                         {C, "VRFY root\r\nEXPN x\r\n"},
                                         {S, "500 5.5.2 Error: command not recognized\r\n"}});
  CHECK(o.out[0] == "HELP\r\nXXXXXX\r\n");
  CHECK(o.out[1] == kGreeting.text + "214 see RFC 5321\r\n252 2.1.5 Send some mail\r\n" +
                        "500 5.5.2 Error: command not recognized\r\n");
  CHECK(o.events == std::vector<std::string>{"command_logged log HELP",
                                             "command_answered answer VRFY",
                                             "command_masked mask EXPN"});
}

TEST_CASE("drop-connection: the command never reaches the server and the flow ends silently",
          "[inspector_policy]") {
  policy::Profile p = modern();
  set_verb(p, smtp::Verb::kXlink2state, policy::CommandAction::kDrop);
  const Outcome o = feed_every_split(p, {kGreeting, {C, "X-LINK2STATE FIRST CHUNK=x\r\n"}},
                                     [](const Outcome& x) { CHECK(x.out[0].empty()); });
  CHECK(o.reset);
  CHECK(o.drop);
  CHECK(o.events == std::vector<std::string>{"command_dropped drop-connection X-LINK2STATE"});
}

TEST_CASE("a rate limit lets the first N commands a second pass", "[inspector_policy]") {
  policy::Profile p = modern();
  set_verb(p, smtp::Verb::kNoop, policy::CommandAction::kMask);
  p.verb_rates[static_cast<size_t>(smtp::Verb::kNoop)].per_second = 2;
  const Outcome o = feed_every_split(p, {kGreeting, {C, "NOOP\r\nNOOP\r\nNOOP\r\n"}});
  CHECK(o.out[0] == "NOOP\r\nNOOP\r\nXXXX\r\n");
  CHECK(o.events == std::vector<std::string>{"command_masked mask NOOP"});
}

TEST_CASE("command line length: over the limit the command is masked, whatever the cuts",
          "[inspector_policy]") {
  policy::Profile p = modern();
  p.checks.command_line = {CheckAction::kMask, 20};
  const std::string longer = "HELO " + std::string(20, 'a') + "\r\n";
  const Outcome o = feed_every_split(p, {kGreeting, {C, "HELO short\r\n" + longer}});
  CHECK(o.out[0] == "HELO short\r\n" + std::string(25, 'X') + "\r\n");
  CHECK(o.events == std::vector<std::string>{"command_line_length mask HELO 27 > 20"});
}

TEST_CASE("recipients per transaction: the one over the limit resets, RSET starts over",
          "[inspector_policy]") {
  policy::Profile p = modern();
  p.checks.recipients = {CheckAction::kReset, 2};
  const Step start{C,
                   "MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n"
                   "RCPT TO:<c@example.org>\r\nRSET\r\nMAIL FROM:<a@example.net>\r\n"
                   "RCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n"};
  const Outcome ok = feed_every_split(p, {kGreeting, start});
  CHECK_FALSE(ok.reset);
  CHECK(ok.events.empty());
  // The third RCPT never reaches the server whole (a prefix may: the reset ends it).
  const Outcome o = feed_every_split(
      p, {kGreeting, start, {C, "RCPT TO:<d@example.org>\r\n"}},
      [](const Outcome& x) { CHECK(x.out[0].find("<d@example.org>\r\n") == std::string::npos); });
  CHECK(o.reset);
  CHECK_FALSE(o.drop);
  CHECK(o.out[0] == start.text);
  CHECK(o.events == std::vector<std::string>{"recipients reset RCPT 3 > 2"});
}

TEST_CASE("invalid recipients per session: refused RCPTs are counted from the replies",
          "[inspector_policy]") {
  policy::Profile p = modern();
  p.checks.invalid_recipients = {CheckAction::kDropConnection, 1};
  const Outcome o = feed_every_split(
      p,
      {kGreeting,
       {C, "MAIL FROM:<>\r\nRCPT TO:<x@example.org>\r\nRCPT TO:<y@example.org>\r\n"},
       {S,
        "250 2.1.0 Ok\r\n550 5.1.1 <x@example.org>: unknown\r\n"
        "550 5.1.1 <y@example.org>: unknown\r\n"}},
      [](const Outcome& x) {
        CHECK(x.out[1].find("<y@example.org>: unknown\r\n") == std::string::npos);
      });
  CHECK(o.drop);
  CHECK(o.events == std::vector<std::string>{"invalid_recipients drop-connection RCPT 2 > 1"});
  // The reply that went over the limit never reaches the client whole.
  CHECK(o.out[1] == kGreeting.text);
}

TEST_CASE("reply line length over the limit is logged", "[inspector_policy]") {
  policy::Profile p = modern();
  p.checks.reply_line = {CheckAction::kLog, 30};
  const Outcome o = feed_every_split(p, {kGreeting, kEhlo, kEhloReply});
  CHECK(o.out[1] == kGreeting.text + kEhloReply.text);
  CHECK(o.events == std::vector<std::string>{"reply_line_length log 220 34 > 30"});
}

TEST_CASE("message size: a message over the limit resets before its end reaches the server",
          "[inspector_policy]") {
  policy::Profile p = modern();
  p.checks.message_size = {CheckAction::kReset, 40};
  const std::vector<Step> head{kGreeting,
                               {C, "MAIL FROM:<a@example.net>\r\n"},
                               {S, "250 2.1.0 Ok\r\n"},
                               {C, "RCPT TO:<b@example.org>\r\n"},
                               {S, "250 2.1.5 Ok\r\n"},
                               {C, "DATA\r\n"},
                               {S, "354 End data with <CR><LF>.<CR><LF>\r\n"}};
  std::vector<Step> small = head;
  small.push_back({C, "Subject: hi\r\n\r\nshort\r\n.\r\n"});
  CHECK_FALSE(feed_every_split(p, small).reset);
  std::vector<Step> big = head;
  big.push_back({C, "Subject: hi\r\n\r\n" + std::string(40, 'x') + "\r\n.\r\n"});
  const Outcome o = feed_every_split(
      p, big, [](const Outcome& x) { CHECK(x.out[0].find("\r\n.\r\n") == std::string::npos); });
  CHECK(o.reset);
  CHECK(o.events == std::vector<std::string>{"message_size reset message over 40"});
}

TEST_CASE("STARTTLS is logged when inspection stops", "[inspector_policy]") {
  const Outcome o = feed_every_split(
      modern(), {kGreeting, kEhlo, kEhloReply, {C, "STARTTLS\r\n"}, {S, "220 2.0.0 Ready\r\n"}});
  CHECK(o.events == std::vector<std::string>{"starttls allow STARTTLS"});
}

namespace {

// A transaction up to the 354, then `message` (DATA body, terminator included).
std::vector<Step> with_message(const std::string& message) {
  return {kGreeting,
          {C, "MAIL FROM:<a@example.net>\r\n"},
          {S, "250 2.1.0 Ok\r\n"},
          {C, "RCPT TO:<b@example.org>\r\n"},
          {S, "250 2.1.5 Ok\r\n"},
          {C, "DATA\r\n"},
          {S, "354 End data with <CR><LF>.<CR><LF>\r\n"},
          {C, message}};
}

const std::string kMimeMessage =
    "Subject: files\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
    "--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    "--b1\r\nContent-Type: application/octet-stream\r\n"
    "Content-Disposition: attachment; filename=\"setup.EXE\"\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b1--\r\n.\r\n";

}  // namespace

TEST_CASE("message checks read headers, lines and MIME parts", "[inspector_policy]") {
  struct Row {
    const char* name;
    std::function<void(policy::Checks&)> set;
    std::string message;
    std::vector<std::string> events;
    bool reset;
  };
  const Row row = GENERATE_COPY(
      Row{"header line over the limit drops the connection",
          [](policy::Checks& c) {
            c.header_line = {CheckAction::kDropConnection, 40};
          },
          "Subject: " + std::string(40, 's') + "\r\n\r\nbody\r\n.\r\n",
          {"header_line_length drop-connection header over 40"},
          true},
      Row{"a long body line is logged once",
          [](policy::Checks& c) {
            c.body_line = {CheckAction::kLog, 20};
          },
          "Subject: x\r\n\r\n" + std::string(30, 'b') + "\r\n" + std::string(30, 'c') + "\r\n.\r\n",
          {"body_line_length log body over 20"},
          false},
      Row{"too many To fields",
          [](policy::Checks& c) {
            c.to_fields = {CheckAction::kReset, 1};
          },
          "To: a@example.org\r\nTo: b@example.org\r\n\r\nx\r\n.\r\n",
          {"to_fields reset To 2 > 1"},
          true},
      Row{"attachment name length and type, and encoding",
          [](policy::Checks& c) {
            c.mime_filename = {CheckAction::kLog, 8};
            c.mime_filetype = {CheckAction::kLog, {"*.exe", "*.scr"}};
            c.mime_encoding = {CheckAction::kLog, {"base64"}};
          },
          kMimeMessage,
          {"mime_filename log setup.EXE 9 > 8", "mime_filetype log setup.EXE matches *.exe",
           "mime_encoding log base64 matches base64"},
          false});
  INFO(row.name);
  policy::Profile p = *policy::builtin_profile("pix-mailguard");  // no checks of its own
  row.set(p.checks);
  const Outcome o = feed_every_split(p, with_message(row.message));
  std::vector<std::string> events(o.events.begin() + 1, o.events.end());  // after the banner
  CHECK(events == row.events);
  CHECK(o.reset == row.reset);
}

TEST_CASE("modern resets on every SMTP smuggling sequence before it reaches the server",
          "[inspector_policy]") {
  // The sequences of CVE-2023-51764/51765/51766 and friends, each followed by a smuggled
  // command, then the real end of data.
  const std::string seq = GENERATE(
      std::string("\n.\n"), std::string("\n.\r\n"), std::string("\r.\r"), std::string("\r.\n"),
      std::string("\n.\r"), std::string("\r\n.\n"), std::string("\r\n.\r"), std::string("\r.\r\n"),
      std::string("\r\n.\r\r\n"), std::string("\r\r\n.\r\r\n"), std::string("\r\n\0.\r\n", 6),
      std::string("bare\rcr"), std::string("bare\nlf"), std::string("nul\0byte", 8));
  INFO("sequence " << seq.size() << " bytes");
  const std::string message = "Subject: x\r\n\r\nhello" + seq +
                              "MAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.org>\r\n"
                              "DATA\r\n\r\nsmuggled\r\n.\r\n";
  const Outcome o = feed_every_split(
      *policy::builtin_profile("modern"), with_message(message), [](const Outcome& x) {
        // The smuggled commands never reach the server whole.
        CHECK(x.out[0].find("evil@example.net>\r\n") == std::string::npos);
      });
  CHECK(o.reset);
  REQUIRE(o.events.size() == 1);
  CHECK(o.events[0].rfind("smtp_smuggling reset ", 0) == 0);
}

TEST_CASE("a clean message passes modern's smuggling check", "[inspector_policy]") {
  const std::string message = "Subject: x\r\n\r\nline one\r\n..dot-stuffed\r\n\r\n.\r\n";
  const Outcome o = feed_every_split(*policy::builtin_profile("modern"), with_message(message));
  CHECK_FALSE(o.reset);
  CHECK(o.events.empty());
  CHECK(o.out[0].find(message) != std::string::npos);
}

TEST_CASE("STARTTLS injection is reset in both directions; a real TLS hello passes",
          "[inspector_policy]") {
  const std::string hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
  struct Row {
    const char* name;
    std::vector<Step> tail;
    bool reset;
    const char* detail;
  };
  const Row row = GENERATE_COPY(
      Row{"a TLS hello after the 220",
          {{C, "STARTTLS\r\n"}, {S, "220 2.0.0 Ready to start TLS\r\n"}, {C, hello}},
          false,
          ""},
      Row{"client commands glued to STARTTLS (CVE-2011-0411): decided at once",
          {{C, "STARTTLS\r\nRSET\r\n"}},
          true,
          "client bytes after STARTTLS before its reply"},
      Row{"a client command after STARTTLS before its reply",
          {{C, "STARTTLS\r\n"}, {C, "RSET\r\n"}},
          true,
          "client bytes after STARTTLS before its reply"},
      Row{"server bytes after its 220",
          {{C, "STARTTLS\r\n"}, {S, "220 2.0.0 Ready to start TLS\r\n250 injected\r\n"}},
          true,
          "server bytes after its 220 before the client's TLS hello"},
      Row{"plaintext from the client after the 220",
          {{C, "STARTTLS\r\n"}, {S, "220 2.0.0 Ready to start TLS\r\n"}, {C, "MAIL FROM:<>\r\n"}},
          true,
          "client bytes after the 220 are not a TLS record"});
  INFO(row.name);
  std::vector<Step> steps{kGreeting, kEhlo, kEhloReply};
  steps.insert(steps.end(), row.tail.begin(), row.tail.end());
  const Outcome o = feed_every_split(*policy::builtin_profile("modern"), steps);
  CHECK(o.reset == row.reset);
  if (row.reset) {
    REQUIRE_FALSE(o.events.empty());
    CHECK(o.events.back() == std::string("starttls_injection reset STARTTLS ") + row.detail);
  } else {
    CHECK(o.events == std::vector<std::string>{"starttls allow STARTTLS"});
  }
}

TEST_CASE("BDAT resets even when every verb is answered and its verb arrives cut",
          "[inspector_policy]") {
  // The fuzzer's finding (tests/fuzz/regressions/fuzz_split/bdat-answered-when-cut-early): a
  // segment ending in "BD" decided "answer" early, and the chunk was then read as commands.
  policy::Profile p = modern();
  p.verbs.fill(policy::CommandAction::kAnswer);
  p.unknown_verb = policy::CommandAction::kAnswer;
  set_verb(p, smtp::Verb::kEhlo, policy::CommandAction::kAllow);
  const Outcome o = feed_every_split(p, {kGreeting, {C, "BDAT 6 LAST\r\nRSET\r\n"}});
  CHECK(o.reset);
  CHECK(o.events == std::vector<std::string>{"command_reset reset BDAT"});
}

TEST_CASE("a decision carries what the server had been told: HELO name, sender, recipients",
          "[inspector_policy][context]") {
  policy::Profile p = modern();
  set_verb(p, smtp::Verb::kVrfy, policy::CommandAction::kMask);
  core::Counters counters;
  FlowInspector in(p, counters);
  auto say = [&in](Dir d, std::string_view text) {
    in.on_data(d, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  };
  auto last_decision = [&in]() {
    std::vector<core::Decision> d = in.take_decisions();
    REQUIRE_FALSE(d.empty());
    return d.back();
  };
  say(S, "220 mx.example.org ESMTP\r\n");
  say(C, "VRFY a\r\n");
  core::Decision d = last_decision();
  CHECK(d.helo.empty());
  CHECK(d.mail_from.empty());
  CHECK(d.rcpt_count == 0);
  say(S, "502 no\r\n");
  say(C, "EHLO  client.example.net \r\n");
  say(S, "250 mx.example.org\r\n");
  say(C, "MAIL FROM:<sender@example.org> SIZE=10\r\n");
  say(S, "250 ok\r\n");
  say(C, "RCPT TO:<u1@example.org>\r\n");
  say(S, "250 ok\r\n");
  say(C, "RCPT TO:<u2@example.org>\r\n");
  say(S, "250 ok\r\n");
  say(C, "VRFY b\r\n");
  d = last_decision();
  CHECK(d.helo == "client.example.net");
  CHECK(d.mail_from == "sender@example.org");
  CHECK(d.rcpt_count == 2);
  say(S, "502 no\r\n");
  // RSET ends the transaction; the name stays.
  say(C, "RSET\r\n");
  say(S, "250 ok\r\n");
  say(C, "VRFY c\r\n");
  d = last_decision();
  CHECK(d.helo == "client.example.net");
  CHECK(d.mail_from.empty());
  // An over-long name is cut at the decision's subject cap.
  say(S, "502 no\r\n");
  say(C, "HELO " + std::string(200, 'h') + "\r\n");
  say(S, "250 ok\r\n");
  say(C, "VRFY d\r\n");
  d = last_decision();
  CHECK(d.helo == std::string(core::Decision::kMaxSubject, 'h'));
}
