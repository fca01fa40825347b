// Dialogue-order checks through the inspector: check.early-talker (client bytes before the
// greeting ended) and check.pipelining (RFC 2920 section 3.1). Each dialogue is fed whole and
// with every step cut at every point: the same decisions always, and with reset the offending
// bytes never among what the server receives.
#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

#include "core/flow_inspector.hpp"
#include "policy/profile.hpp"

using namespace sg;
using core::FlowInspector;
using policy::CheckAction;
using smtp::Dir;

namespace {

constexpr Dir C = Dir::kClientToServer;
constexpr Dir S = Dir::kServerToClient;

struct Step {
  Dir dir;
  std::string text;
};

struct Outcome {
  std::string to_server;            // what the server receives
  std::vector<std::string> events;  // "name action subject detail"
  bool reset = false, drop = false;
};

std::span<const uint8_t> span_of(const std::string& s, size_t from, size_t n) {
  return {reinterpret_cast<const uint8_t*>(s.data()) + from, n};
}

// As the pipeline does: a piece after which the inspector asks to end the connection is not
// forwarded, nor anything after it; the rest goes out as far as it is decided.
Outcome feed(const policy::Profile& p, const std::vector<Step>& steps, size_t cut) {
  core::Counters counters;
  FlowInspector in(p, counters);
  std::string original;
  uint64_t sent = 0;
  Outcome o;
  for (const Step& s : steps) {
    const size_t at = std::min(cut, s.text.size());
    for (auto [from, n] : {std::pair{size_t{0}, at}, std::pair{at, s.text.size() - at}}) {
      if (n == 0 || in.reset_requested()) continue;
      if (s.dir == C) original += s.text.substr(from, n);
      in.on_data(s.dir, span_of(s.text, from, n));
      if (in.reset_requested()) break;
      sent = in.decided_until(C);
    }
  }
  std::vector<uint8_t> out;
  in.edits(C).render(0, span_of(original, 0, sent), out);
  o.to_server.assign(out.begin(), out.end());
  for (const core::Decision& d : in.take_decisions()) {
    std::string line =
        std::string(policy::info(d.event).name) + " " + std::string(d.action) + " " + d.subject;
    if (!d.detail.empty()) line += " " + d.detail;
    o.events.push_back(line);
  }
  o.reset = in.reset_requested();
  o.drop = in.drop_requested();
  CHECK(counters.get(core::Counter::checks_fired) ==
        static_cast<uint64_t>(std::count_if(o.events.begin(), o.events.end(), [](auto& e) {
          return e.starts_with("early_talker") || e.starts_with("pipelining") ||
                 e.starts_with("starttls_injection");
        })));
  return o;
}

// The whole dialogue's outcome; every cut gives the same decisions, and `each` holds for all.
Outcome feed_every_split(const policy::Profile& p, const std::vector<Step>& steps,
                         const std::function<void(const Outcome&)>& each) {
  const Outcome whole = feed(p, steps, SIZE_MAX);
  each(whole);
  size_t longest = 0;
  for (const Step& s : steps) longest = std::max(longest, s.text.size());
  for (size_t cut = 1; cut < longest; ++cut) {
    INFO("cut at " << cut);
    const Outcome o = feed(p, steps, cut);
    CHECK(o.events == whole.events);
    CHECK(o.reset == whole.reset);
    CHECK(o.drop == whole.drop);
    if (!whole.reset) CHECK(o.to_server == whole.to_server);
    each(o);
  }
  return whole;
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
      feed_every_split(with("modern", CheckAction::kReset, CheckAction::kOff), row.steps,
                       [](const Outcome& x) { CHECK(x.to_server.empty()); });
  CHECK(o.reset);
  CHECK_FALSE(o.drop);
  CHECK(o.events == std::vector<std::string>{kEarly});
}

TEST_CASE("early talker: drop-connection, log, and a client that waits", "[inspector_order]") {
  const std::vector<Step> early{{C, "EHLO x\r\n"}, kGreeting, kEhloReply, {C, "QUIT\r\n"}};
  const auto nothing = [](const Outcome& x) { CHECK(x.to_server.empty()); };
  const Outcome dropped = feed_every_split(
      with("modern", CheckAction::kDropConnection, CheckAction::kOff), early, nothing);
  CHECK(dropped.drop);
  // Logged only: the bytes pass, once, in order (modern's default).
  const Outcome logged =
      feed_every_split(*policy::builtin_profile("modern"), early, [](const Outcome&) {});
  CHECK_FALSE(logged.reset);
  CHECK(logged.to_server == "EHLO x\r\nQUIT\r\n");
  CHECK(logged.events ==
        std::vector<std::string>{
            "early_talker log greeting client bytes before the server's greeting ended"});
  // A client that waits for the greeting: nothing.
  const Outcome waited =
      feed_every_split(with("modern", CheckAction::kReset, CheckAction::kReset),
                       {kGreeting, {C, "EHLO x\r\n"}, kEhloReply}, [](const Outcome&) {});
  CHECK(waited.events.empty());
  CHECK(waited.to_server == "EHLO x\r\n");
}

TEST_CASE("pipelining: EHLO and MAIL in one segment is reset, MAIL never forwarded",
          "[inspector_order]") {
  const std::vector<Step> steps{kGreeting, {C, "EHLO x\r\nMAIL FROM:<a@b>\r\n"}};
  const Outcome o = feed_every_split(
      with("modern", CheckAction::kOff, CheckAction::kReset), steps,
      [](const Outcome& x) { CHECK(x.to_server.find("MAIL") == std::string::npos); });
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
      feed_every_split(*policy::builtin_profile("modern"), steps, [](const Outcome&) {});
  CHECK_FALSE(o.reset);
  CHECK(o.events == std::vector<std::string>{"pipelining log DATA input before the reply to DATA"});
  CHECK(o.to_server.find("QUIT\r\n") != std::string::npos);
}

TEST_CASE("pipelining: a profile that hides PIPELINING from the client expects lockstep",
          "[inspector_order]") {
  policy::Profile p = with("modern", CheckAction::kOff, CheckAction::kLog);
  p.keywords[static_cast<size_t>(smtp::EhloKeyword::kPipelining)] = policy::KeywordAction::kMask;
  const std::vector<Step> steps{
      kGreeting, {C, "EHLO x\r\n"}, kEhloReply, {C, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"}};
  const Outcome o = feed_every_split(p, steps, [](const Outcome&) {});
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
    for (const std::string& e : feed(p, steps, SIZE_MAX).events) {
      CHECK_FALSE(e.starts_with("early_talker"));
      CHECK_FALSE(e.starts_with("pipelining"));
    }
  }
  const Outcome tls = feed_every_split(
      with("modern", CheckAction::kLog, CheckAction::kLog),
      {kGreeting, {C, "EHLO x\r\n"}, kEhloReply, {C, "STARTTLS\r\nRSET\r\n"}, {S, "220 ready\r\n"}},
      [](const Outcome&) {});
  CHECK(tls.events == std::vector<std::string>{
                          "starttls allow STARTTLS",
                          "starttls_injection reset STARTTLS client bytes after STARTTLS before "
                          "the 220"});
}
