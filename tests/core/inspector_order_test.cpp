// Dialogue-order checks through the inspector: check.early-talker (client bytes before the
// greeting ended) and check.pipelining (RFC 2920 section 3.1). Each dialogue is fed whole and
// with every step cut at every point: the same decisions always, and with reset the offending
// bytes never among what the server receives.
#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

#include "core/dialogue_feed.hpp"
#include "core/flow_inspector.hpp"
#include "policy/profile.hpp"

using namespace sg;
using core::FlowInspector;
using policy::CheckAction;
using smtp::Dir;

namespace {

using test::C;
using test::S;

using Outcome = test::DialogueOutcome;
using test::Step;

// The counter of checks that fired agrees with the order and STARTTLS decisions logged.
void check_counted(const Outcome& o) {
  CHECK(o.checks_fired ==
        static_cast<uint64_t>(std::count_if(o.events.begin(), o.events.end(), [](auto& e) {
          return e.starts_with("early_talker") || e.starts_with("pipelining") ||
                 e.starts_with("starttls_injection");
        })));
}

// Every split as test::feed_every_split checks it, each outcome counted right.
Outcome counted_every_split(const policy::Profile& p, const std::vector<Step>& steps,
                            const std::function<void(const Outcome&)>& each) {
  return test::feed_every_split(p, steps, [&each](const Outcome& o) {
    check_counted(o);
    each(o);
  });
}

policy::Profile with(const char* name, CheckAction early, CheckAction pipelining) {
  policy::Profile p = *policy::builtin_profile(name);
  p.checks.early_talker = early;
  p.checks.pipelining = pipelining;
  return p;
}

const Step kGreeting{S, "220 mx.example.org ESMTP\r\n"};
const Step kEhloReply{S, "250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n"};
const std::string kEarly =
    "early_talker reset greeting client bytes before the server's greeting ended";

}  // namespace

TEST_CASE("early talker: reset before any of its bytes reach the server", "[inspector_order]") {
  struct Row {
    const char* name;
    std::vector<Step> steps;
  };
  const Row row =
      GENERATE_COPY(Row{"a client that talks first", {{C, "EHLO x\r\n"}, kGreeting}},
                    Row{"a client that talks during a multi-line greeting",
                        {{S, "220-mx.example.org\r\n"}, {C, "EHLO x\r\n"}, {S, "220 ESMTP\r\n"}}},
                    Row{"a client that talks before the greeting's last line ended",
                        {{S, "220-mx.example.org\r\n220 ESMTP"}, {C, "QUIT\r\n"}, {S, "\r\n"}}});
  INFO(row.name);
  const Outcome o =
      counted_every_split(with("modern", CheckAction::kReset, CheckAction::kOff), row.steps,
                          [](const Outcome& x) { CHECK(x.out[0].empty()); });
  CHECK(o.reset);
  CHECK_FALSE(o.drop);
  CHECK(o.events == std::vector<std::string>{kEarly});
}

TEST_CASE("early talker: drop-connection, log, and a client that waits", "[inspector_order]") {
  const std::vector<Step> early{{C, "EHLO x\r\n"}, kGreeting, kEhloReply, {C, "QUIT\r\n"}};
  const auto nothing = [](const Outcome& x) { CHECK(x.out[0].empty()); };
  const Outcome dropped = counted_every_split(
      with("modern", CheckAction::kDropConnection, CheckAction::kOff), early, nothing);
  CHECK(dropped.drop);
  // Logged only: the bytes pass, once, in order (modern's default).
  const Outcome logged =
      counted_every_split(*policy::builtin_profile("modern"), early, [](const Outcome&) {});
  CHECK_FALSE(logged.reset);
  CHECK(logged.out[0] == "EHLO x\r\nQUIT\r\n");
  CHECK(logged.events ==
        std::vector<std::string>{
            "early_talker log greeting client bytes before the server's greeting ended"});
  // A client that waits for the greeting: nothing.
  const Outcome waited =
      counted_every_split(with("modern", CheckAction::kReset, CheckAction::kReset),
                          {kGreeting, {C, "EHLO x\r\n"}, kEhloReply}, [](const Outcome&) {});
  CHECK(waited.events.empty());
  CHECK(waited.out[0] == "EHLO x\r\n");
}

TEST_CASE("pipelining: EHLO and MAIL in one segment is reset, MAIL never forwarded",
          "[inspector_order]") {
  const std::vector<Step> steps{kGreeting, {C, "EHLO x\r\nMAIL FROM:<a@b>\r\n"}};
  const Outcome o = counted_every_split(
      with("modern", CheckAction::kOff, CheckAction::kReset), steps,
      [](const Outcome& x) { CHECK(x.out[0].find("MAIL") == std::string::npos); });
  CHECK(o.reset);
  CHECK(o.events ==
        std::vector<std::string>{"pipelining reset EHLO input before the reply to EHLO"});
}

TEST_CASE("pipelining: modern logs it once per connection and forwards", "[inspector_order]") {
  const std::vector<Step> steps{
      kGreeting,
      {C, "EHLO x\r\n"},
      kEhloReply,
      {C,
       "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nNOOP\r\nQUIT\r\n"},
      {S, "250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n250 ok\r\n221 bye\r\n"}};
  const Outcome o =
      counted_every_split(*policy::builtin_profile("modern"), steps, [](const Outcome&) {});
  CHECK_FALSE(o.reset);
  CHECK(o.events == std::vector<std::string>{"pipelining log DATA input before the reply to DATA"});
  CHECK(o.out[0].find("QUIT\r\n") != std::string::npos);
}

TEST_CASE("pipelining: a profile that hides PIPELINING from the client expects lockstep",
          "[inspector_order]") {
  policy::Profile p = with("modern", CheckAction::kOff, CheckAction::kLog);
  p.keywords[static_cast<size_t>(smtp::EhloKeyword::kPipelining)] = policy::KeywordAction::kMask;
  const std::vector<Step> steps{
      kGreeting, {C, "EHLO x\r\n"}, kEhloReply, {C, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"}};
  const Outcome o = counted_every_split(p, steps, [](const Outcome&) {});
  CHECK(o.events ==
        std::vector<std::string>{
            "keyword_masked mask PIPELINING",
            "pipelining log MAIL PIPELINING not offered: input before the reply to MAIL"});
}

TEST_CASE("the Cisco profiles check neither; STARTTLS injection is not reported twice",
          "[inspector_order]") {
  const std::vector<Step> steps{{C, "HELO x\r\n"}, kGreeting, {C, "NOOP\r\nQUIT\r\n"}};
  for (const char* name : {"pix-legacy", "pix-mailguard", "asa-default"}) {
    INFO(name);
    const policy::Profile p = *policy::builtin_profile(name);
    CHECK(p.checks.early_talker == CheckAction::kOff);
    CHECK(p.checks.pipelining == CheckAction::kOff);
    const Outcome o = test::feed(p, steps, SIZE_MAX);
    check_counted(o);
    for (const std::string& e : o.events) {
      CHECK_FALSE(e.starts_with("early_talker"));
      CHECK_FALSE(e.starts_with("pipelining"));
    }
  }
  const Outcome tls = counted_every_split(
      with("modern", CheckAction::kLog, CheckAction::kLog),
      {kGreeting, {C, "EHLO x\r\n"}, kEhloReply, {C, "STARTTLS\r\nRSET\r\n"}, {S, "220 ready\r\n"}},
      [](const Outcome&) {});
  // Decided when the glued bytes arrive (the reset ends the dialogue before the 220).
  CHECK(tls.events == std::vector<std::string>{
                          "starttls_injection reset STARTTLS client bytes after STARTTLS before "
                          "its reply"});
}
