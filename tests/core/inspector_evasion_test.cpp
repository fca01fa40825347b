// Parsing evasions through the inspector: dialogues where a lax reading would move the
// gateway's SMTP state where the server's does not go (DESIGN.md section 7, fail closed). Each
// is fed whole and with every step cut at every point (test::feed_every_split): what the server
// receives is either what the gateway read as the server reads it, neutralised (same length),
// or the connection ends with an exception.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "core/dialogue_feed.hpp"
#include "core/flow_inspector.hpp"
#include "policy/profile.hpp"

using namespace sg;
using policy::CheckAction;
using smtp::Dir;

namespace {

using test::C;
using test::S;

using Outcome = test::DialogueOutcome;
using test::feed_every_split;
using test::Step;

// A profile without the dialogue-order checks: these dialogues leave out server replies.
policy::Profile profile(const char* name) {
  policy::Profile p = *policy::builtin_profile(name);
  p.checks.early_talker = CheckAction::kOff;
  p.checks.pipelining = CheckAction::kOff;
  return p;
}

const Step kGreeting{S, "220 mx.example.org ESMTP\r\n"};
const Step k500{S, "500 5.5.2 Error: command not recognized\r\n"};
const std::string kExpn = "EXPN root\r\n";  // modern masks EXPN
const std::string kExpnMasked = "XXXXXXXXX\r\n";

bool has_prefix(const std::vector<std::string>& events, const std::string& prefix) {
  return std::any_of(events.begin(), events.end(),
                     [&prefix](const std::string& e) { return e.starts_with(prefix); });
}

}  // namespace

TEST_CASE("an over-long command line is X'd whole: the server changes no phase",
          "[inspector_evasion][overlong]") {
  // Postfix reads 2048 bytes a line: DATA with 600 blanks after it is DATA to it (354), and the
  // next lines would be a body the gateway reads as commands. X'd to its line ending, every
  // piece, the line is an unknown command to every server.
  const std::string verb =
      GENERATE(as<std::string>{}, "DATA", "BDAT 5 LAST", "STARTTLS", "AUTH LOGIN");
  INFO(verb);
  // An AUTH line's cap is 12288 (RFC 4954), the others' the command-line cap.
  const std::string padding(verb.starts_with("AUTH") ? 12300 : 600, ' ');
  const std::string line = verb + padding + "\r\n";
  const std::string x(line.size() - 2, 'X');
  for (const char* name : {"modern", "pix-mailguard"}) {
    INFO(name);
    const Outcome o = feed_every_split(profile(name), {kGreeting, {C, line}, k500, {C, kExpn}});
    CHECK_FALSE(o.reset);
    // The line after it is a command (modern masks EXPN, pix-mailguard every verb but seven).
    CHECK(o.out[0] == x + "\r\n" + kExpnMasked);
    // Neutralised and logged, unless the profile masks the verb anyway.
    const std::string name_of_verb = verb.substr(0, verb.find(' '));
    CHECK((has_prefix(o.events,
                      "line_neutralised mask " + name_of_verb + " command line longer than") ||
           has_prefix(o.events, "command_masked mask " + name_of_verb)));
  }
}

TEST_CASE("an over-long command line: a stronger length check wins",
          "[inspector_evasion][overlong]") {
  // asa-default drops the connection at 512 (match cmd line length gt 512): nothing of the
  // line reaches the server, nothing is neutralised.
  const std::string line = "DATA" + std::string(600, ' ') + "\r\n";
  const Outcome o = feed_every_split(profile("asa-default"), {kGreeting, {C, line}});
  CHECK(o.drop);
  CHECK(o.out[0].empty());
  CHECK_FALSE(has_prefix(o.events, "line_neutralised"));
}

TEST_CASE("a long RCPT line's first bytes may have left: its rest is X'd",
          "[inspector_evasion][overlong]") {
  // A verb that opens no phase is released as it comes; once the line is cut, the rest of it
  // is X'd (the server refuses the address) and the session carries on in command mode.
  const std::string head = "RCPT TO:<" + std::string(300, 'a');
  const std::string tail = std::string(300, 'a') + "@example.org>\r\n";
  const std::string line = head + tail;
  const size_t cap = 513;  // modern: its command-line check's limit + 1
  const std::vector<Step> steps{kGreeting, {C, head}, {C, tail}, k500, {C, kExpn}};
  const test::DialogueOutcome whole = test::feed(profile("modern"), steps, SIZE_MAX);
  for (size_t cut = 1; cut < tail.size(); ++cut) {
    INFO("cut at " << cut);
    const test::DialogueOutcome o = cut == 1 ? whole : test::feed(profile("modern"), steps, cut);
    CHECK_FALSE(o.reset);
    CHECK(o.events == whole.events);
    REQUIRE(o.out[0].size() == line.size() + kExpn.size());
    CHECK(o.out[0].starts_with(head));  // released before the line was cut
    CHECK(o.out[0].substr(cap) == std::string(line.size() - 2 - cap, 'X') + "\r\n" + kExpnMasked);
  }
  CHECK(has_prefix(whole.events, "line_neutralised mask RCPT command line longer than 513 bytes"));
}

TEST_CASE("an over-long line of a verb that opens no phase: X'd from the cap, however cut",
          "[inspector_evasion][overlong]") {
  // fuzz_split's finding: X'd whole when it came in one segment, but only from where it was
  // cut when its first bytes had left already. The output may not depend on the segments: it
  // is X'd from the cap on, whatever came first (the server reads NOOP, or HELO, and a 500 for
  // anything it might read as a second line).
  for (const std::string verb : {"NOOP ", "HELO ", "RCPT TO:<"}) {
    INFO(verb);
    const std::string line = verb + std::string(600, 'a') + "\r\n";
    const size_t cap = 513;  // modern: its command-line check's limit + 1
    const Outcome o = feed_every_split(profile("modern"), {kGreeting, {C, line}, k500, {C, kExpn}});
    CHECK_FALSE(o.reset);
    CHECK(o.out[0] == line.substr(0, cap) + std::string(line.size() - 2 - cap, 'X') + "\r\n" +
                          kExpnMasked);
  }
}

TEST_CASE("a cut AUTH response: the next line waits for the reply, then is a command",
          "[inspector_evasion][auth]") {
  // Before the fix the line after a long response was read as a second response, never as the
  // command the server reads after its 535.
  const std::string response = std::string(12400, 'Q') + "==\r\n";  // over 12288 (RFC 4954)
  const Outcome o = feed_every_split(profile("modern"), {kGreeting,
                                                         {C, "AUTH LOGIN\r\n"},
                                                         {S, "334 VXNlcm5hbWU6\r\n"},
                                                         {C, response + kExpn},
                                                         {S, "535 5.7.8 failed\r\n"}});
  CHECK_FALSE(o.reset);
  CHECK(o.out[0] == "AUTH LOGIN\r\n" + response + kExpnMasked);
}

TEST_CASE("a long AUTH initial response passes whole (RFC 4954: 12288)",
          "[inspector_evasion][auth]") {
  // XOAUTH2 bearer tokens run to kilobytes: over the command-line cap, under the AUTH cap.
  // Modern's command-line check logs it; the line reaches the server as sent.
  const std::string line = "AUTH XOAUTH2 " + std::string(2000, 'T') + "\r\n";
  const Outcome o = feed_every_split(profile("modern"),
                                     {kGreeting, {C, line}, {S, "235 2.7.0 ok\r\n"}, {C, kExpn}});
  CHECK_FALSE(o.reset);
  CHECK(o.out[0] == line + kExpnMasked);
  CHECK_FALSE(has_prefix(o.events, "line_neutralised"));
}

TEST_CASE("verbs after blanks or split by VT and FF are the verbs", "[inspector_evasion][verb]") {
  policy::Profile p = profile("modern");
  p.verbs[static_cast<size_t>(smtp::Verb::kVrfy)] = policy::CommandAction::kMask;
  const std::string line =
      GENERATE(as<std::string>{}, " VRFY postmaster\r\n", "\tVRFY postmaster\r\n", "EXPN\vroot\r\n",
               "TURN\f\r\n", "  EXPN root\r\n", "\v\fTURN\r\n");
  INFO(line);
  const Outcome o = feed_every_split(p, {kGreeting, {C, line}});
  // X'd from column 0: whatever blanks came first, the server reads an unknown command.
  CHECK(o.out[0] == std::string(line.size() - 2, 'X') + "\r\n");
  CHECK(o.events.size() == 1);
  CHECK(o.events[0].starts_with("command_masked mask "));
}

TEST_CASE("an address check finds MAIL after blanks", "[inspector_evasion][verb]") {
  // asa-default drops a sender longer than 320: a leading blank must not hide the MAIL.
  const std::string line = " MAIL FROM:<" + std::string(400, 'a') + "@example.org>\r\n";
  policy::Profile p = profile("asa-default");
  p.checks.command_line.action = CheckAction::kOff;
  const Outcome o = feed_every_split(p, {kGreeting, {C, line}});
  CHECK(o.drop);
  CHECK(has_prefix(o.events, "sender_length drop-connection"));
}

TEST_CASE("BDAT arguments split at any blank: the chunk is data", "[inspector_evasion][bdat]") {
  // Postfix and Exim read a 11-byte chunk here: the EXPN inside it is message data, forwarded
  // as it is, and the NOOP after it a command.
  const std::string line = GENERATE(as<std::string>{}, "BDAT\t11\tLAST\r\n", "BDAT 11\vlast\r\n");
  INFO(line);
  const std::string client = line + kExpn + "NOOP\r\n";
  const Outcome o = feed_every_split(profile("modern"), {kGreeting, {C, client}});
  CHECK_FALSE(o.reset);
  CHECK(o.out[0] == client);
}

TEST_CASE("a BDAT line without one readable chunk size is an exception",
          "[inspector_evasion][bdat]") {
  const std::string line =
      GENERATE(as<std::string>{}, "BDAT 11 LASTX\r\n", "BDAT 11 LAST now\r\n", "BDAT\r\n",
               "BDAT eleven\r\n", "BDAT 99999999999999999999999 LAST\r\n", "BDAT 11 12\r\n");
  INFO(line);
  const Outcome o =
      feed_every_split(profile("modern"), {kGreeting, {C, line}, {C, kExpn}}, [](const Outcome& x) {
        CHECK(x.out[0].find("BDAT") == std::string::npos);  // held until decided, then reset
      });
  CHECK(o.reset);
  CHECK(o.events == std::vector<std::string>{"exception_unclassifiable reject unclassifiable "
                                             "BDAT without one readable chunk size"});
}

TEST_CASE("a masked BDAT opens no chunk: the server reads commands", "[inspector_evasion][bdat]") {
  // pix-mailguard X's BDAT, pix-legacy makes it NOOP; the server answers 500 or 250 and reads
  // the next bytes as commands, so the gateway must too (before: an 11-byte "chunk" carried a
  // VRFY past the mask).
  const std::vector<Step> steps{kGreeting, {C, "BDAT 11\r\nVRFY root\r\nQUIT\r\n"}};
  CHECK(feed_every_split(profile("pix-mailguard"), steps).out[0] ==
        "XXXXXXX\r\nXXXXXXXXX\r\nQUIT\r\n");
  CHECK(feed_every_split(profile("pix-legacy"), steps).out[0] ==
        "NOOP   \r\nNOOP     \r\nQUIT\r\n");
}

TEST_CASE("the 129th pipelined command is an exception", "[inspector_evasion][pending]") {
  // The session tracks 128 commands awaiting replies; one more would pair every later reply
  // with the wrong command. Reset before it (and the DATA after it) reach the server.
  std::string rcpts;
  for (int i = 0; i < 128; ++i) rcpts += "RCPT TO:<r@example.org>\r\n";
  policy::Profile p = profile("modern");
  p.checks.recipients.action = CheckAction::kOff;  // its log lines are not the point here
  const Outcome o = feed_every_split(
      p, {kGreeting, {C, rcpts}, {C, "RCPT TO:<r@example.org>\r\n"}, {C, "DATA\r\n"}},
      [&rcpts](const Outcome& x) {
        // The 129th may have begun to leave, never whole (a line without its end is nothing).
        CHECK(x.out[0].starts_with(rcpts));
        CHECK(x.out[0].find("\n", rcpts.size()) == std::string::npos);
      });
  CHECK(o.reset);
  CHECK(o.events == std::vector<std::string>{"exception_pending_overflow reject pending-overflow "
                                             "more than 128 commands await replies"});
}

TEST_CASE("client bytes waiting for a reply are capped", "[inspector_evasion][pending]") {
  // After DATA, before the 354 (which the server's window may keep from arriving): the body
  // waits unconsumed. Up to the cap it waits; one byte more is an exception.
  const policy::Profile p = profile("modern");
  core::Counters counters;
  core::FlowInspector probe(p, counters);
  const size_t cap = probe.pending_cap(C);
  CHECK(cap == core::FlowInspector::kPendingSlack + 513);  // modern: line cap 512 + 1
  for (const size_t piece : {size_t{1000}, size_t{65536}, cap + 1}) {
    INFO("pieces of " << piece);
    core::Counters c;
    core::FlowInspector in(p, c);
    const std::string greeting = "220 mx.example.org ESMTP\r\n";
    in.on_data(S, test::span_of(greeting, 0, greeting.size()));
    const std::string data = "DATA\r\n";
    in.on_data(C, test::span_of(data, 0, data.size()));
    const std::string body(cap + 1, 'b');
    size_t fed = 0;
    while (fed < cap && !in.reset_requested()) {
      const size_t n = std::min(piece, cap - fed);
      in.on_data(C, test::span_of(body, fed, n));
      fed += n;
    }
    CHECK_FALSE(in.reset_requested());
    CHECK(in.pending_bytes(C) == cap);
    in.on_data(C, test::span_of(body, 0, std::min(piece, body.size())));
    CHECK(in.reset_requested());
    CHECK(in.pending_bytes(C) == cap);  // not appended beyond the cap
    CHECK(in.frontier(C) == data.size() + cap);
    const auto decisions = in.take_decisions();
    REQUIRE(decisions.size() == 1);
    CHECK(decisions[0].event == policy::Event::kExceptionPendingBuffer);
  }
}

TEST_CASE("with check.smuggling off, a loose end of data is an exception",
          "[inspector_evasion][smuggling]") {
  // The gateway ends a body at CRLF.CRLF only; a lenient server ends it at these and reads the
  // smuggled MAIL as a command. With the check off (or only logging) nobody neutralises it.
  const std::string seq =
      GENERATE(as<std::string>{}, "\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r", "\r\n.\r\r\n");
  INFO("sequence " << seq.size() << " bytes");
  const std::string message =
      "Subject: x\r\n\r\nhello" + seq + "MAIL FROM:<evil@example.net>\r\n\r\n.\r\n";
  for (const CheckAction action : {CheckAction::kOff, CheckAction::kLog}) {
    policy::Profile p = profile("modern");
    p.checks.smuggling = action;
    const Outcome o =
        feed_every_split(p,
                         {kGreeting,
                          {C, "MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"},
                          {S, "250 ok\r\n250 ok\r\n354 go\r\n"},
                          {C, message}},
                         [](const Outcome& x) {
                           CHECK(x.out[0].find("evil@example.net>\r\n") == std::string::npos);
                         });
    CHECK(o.reset);
    CHECK(has_prefix(o.events, "exception_unclassifiable reject unclassifiable a '.' line"));
  }
}

TEST_CASE("the Cisco profiles sanitize smuggling: a loose end of data becomes spaces",
          "[inspector_evasion][smuggling]") {
  const std::string message = "Subject: x\r\n\r\nhello\n.\nMAIL FROM:<evil@example.net>\r\n.\r\n";
  for (const char* name : {"pix-legacy", "pix-mailguard", "asa-default"}) {
    INFO(name);
    CHECK(policy::builtin_profile(name)->checks.smuggling == CheckAction::kSanitize);
    const Outcome o = feed_every_split(
        profile(name), {kGreeting,
                        {C, "MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n"},
                        {S, "250 ok\r\n250 ok\r\n"},
                        {C, "DATA\r\n"},
                        {S, "354 go\r\n"},
                        {C, message},
                        {S, "250 queued\r\n"},
                        {C, "QUIT\r\n"}});
    CHECK_FALSE(o.reset);
    CHECK(o.out[0].ends_with("hello . MAIL FROM:<evil@example.net>\r\n.\r\nQUIT\r\n"));
  }
}

TEST_CASE("an exception's decision ends the connection exactly when its action does",
          "[inspector_evasion][exceptions]") {
  // The event log's warning level reads Decision::ends_connection, set from the action's enum.
  using policy::ExceptionAction;
  const policy::Profile p = profile("modern");
  const std::pair<ExceptionAction, bool> cases[] = {{ExceptionAction::kReject, true},
                                                    {ExceptionAction::kDropFlow, true},
                                                    {ExceptionAction::kDropPacket, false},
                                                    {ExceptionAction::kPass, false}};
  for (const auto& [action, ends] : cases) {
    INFO(policy::to_string(action));
    policy::ExceptionPolicy ex;
    ex.set(policy::Exception::kHoldLimit, action);
    core::Counters c;
    core::FlowInspector in(p, c, nullptr, &ex);
    CHECK(in.raise(policy::Exception::kHoldLimit, C, "test") == action);
    const std::vector<core::Decision> d = in.take_decisions();
    REQUIRE(d.size() == 1);
    CHECK(d[0].ends_connection == ends);
  }
}
