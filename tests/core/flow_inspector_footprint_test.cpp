// What a tracked connection costs in memory, structurally: the size of the objects every flow
// carries, and that the parts only some connections need (STARTTLS, rate windows, the
// sanitizer, the session context, a message's scanner, the reports to the pipeline, owed
// replies) do not exist for an idle connection and are created when one needs them.
// bench/flow_memory.cpp measures the resident memory through the real pipeline.
#include <catch2/catch.hpp>
#include <string>
#include <utility>

#include "core/flow_inspector.hpp"
#include "core/inspected_flow.hpp"
#include "policy/profile.hpp"
#include "smtp/session.hpp"

using namespace sg;
using core::FlowInspector;
using smtp::Dir;

namespace {

constexpr Dir C = Dir::kClientToServer;
constexpr Dir S = Dir::kServerToClient;

// Every part that is allocated on need has a reason to be, in this profile.
policy::Profile demanding() {
  policy::Profile p = *policy::builtin_profile("modern");
  p.checks.smuggling = policy::CheckAction::kSanitize;
  p.checks.body_line = {policy::CheckAction::kLog, 998};
  p.verbs[static_cast<size_t>(smtp::Verb::kNoop)] = policy::CommandAction::kMask;
  p.verb_rates[static_cast<size_t>(smtp::Verb::kNoop)].per_second = 5;
  return p;
}

void feed(FlowInspector& in, Dir d, const std::string& text) {
  in.on_data(d, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

// Takes what the pipeline takes after every packet.
void take(FlowInspector& in) {
  in.take_decisions();
  in.take_gateway_replies();
}

}  // namespace

// Bounds a little above today's sizes (x86-64, libstdc++): a new member that every connection
// pays for shows here first. Raise them knowingly, or put the member behind a part allocated
// on need. The pending-command ring is one byte per entry (128 entries).
static_assert(sizeof(smtp::Session) <= 208, "Session grew");
static_assert(sizeof(FlowInspector) <= 800, "FlowInspector grew");
static_assert(sizeof(core::InspectedFlow) <= 320, "InspectedFlow grew");
static_assert(sizeof(core::OwedReplies) <= sizeof(void*), "owed replies are allocated on need");

TEST_CASE("an idle connection has none of the parts allocated on need", "[footprint]") {
  const policy::Profile p = demanding();
  core::Counters counters;
  FlowInspector in(p, counters);
  CHECK_FALSE(in.occasional_parts().any());
  feed(in, S, "220 mx.example.org ESMTP Postfix\r\n");
  take(in);
  const FlowInspector::OccasionalParts parts = in.occasional_parts();
  CHECK_FALSE(parts.tls_watch);
  CHECK_FALSE(parts.sanitizer);
  CHECK_FALSE(parts.rate_windows);
  CHECK_FALSE(parts.context);
  CHECK_FALSE(parts.reports);
  CHECK_FALSE(parts.message);
  CHECK(in.frontier(S) == 34);
}

TEST_CASE("reports exist until the pipeline takes them", "[footprint]") {
  const policy::Profile p = demanding();
  core::Counters counters;
  FlowInspector in(p, counters);
  feed(in, S, "220 mx.example.org ESMTP Postfix\r\n");
  feed(in, C, "NOOP\r\n");  // counted against the rate: allowed, nothing to report
  REQUIRE_FALSE(in.reset_requested());
  in.take_decisions();
  in.take_gateway_replies();
  CHECK_FALSE(in.occasional_parts().reports);
  // A check that fires reports a decision: the reports exist until taken.
  feed(in, S, "250 ok\r\n");
  feed(in, C, "HELO " + std::string(1200, 'a') + "\r\n");
  REQUIRE(in.occasional_parts().reports);
  CHECK_FALSE(in.take_decisions().empty());
  in.take_gateway_replies();
  CHECK_FALSE(in.occasional_parts().reports);
}

TEST_CASE("each part is created when the connection needs it", "[footprint]") {
  const policy::Profile p = demanding();
  core::Counters counters;
  FlowInspector in(p, counters);
  feed(in, S, "220 mx.example.org ESMTP Postfix\r\n");
  take(in);

  feed(in, C, "EHLO client.example.net\r\n");
  CHECK(in.occasional_parts().context);
  CHECK_FALSE(in.occasional_parts().rate_windows);
  feed(in, S, "250-mx.example.org\r\n250 SIZE 1000000\r\n");

  feed(in, C, "NOOP\r\n");
  CHECK(in.occasional_parts().rate_windows);
  feed(in, S, "250 ok\r\n");

  feed(in, C, "MAIL FROM:<a@example.net>\r\n");
  feed(in, S, "250 ok\r\n");
  feed(in, C, "RCPT TO:<b@example.org>\r\n");
  feed(in, S, "250 ok\r\n");
  feed(in, C, "DATA\r\n");
  feed(in, S, "354 go ahead\r\n");
  CHECK_FALSE(in.occasional_parts().sanitizer);
  CHECK_FALSE(in.occasional_parts().message);
  feed(in, C, "Subject: x\r\n\r\nbody\r\n");
  CHECK(in.occasional_parts().sanitizer);
  CHECK(in.occasional_parts().message);
  feed(in, C, ".\r\n");
  CHECK_FALSE(in.occasional_parts().message);  // the scanner goes with the message
  feed(in, S, "250 queued\r\n");

  CHECK_FALSE(in.occasional_parts().tls_watch);
  feed(in, C, "STARTTLS\r\n");
  feed(in, S, "220 ready\r\n");
  CHECK(in.occasional_parts().tls_watch);
  CHECK_FALSE(in.reset_requested());
}

TEST_CASE("owed replies are allocated with the first and freed with the last", "[footprint]") {
  core::OwedReplies owed;
  CHECK_FALSE(owed.allocated());
  CHECK(std::as_const(owed).all().empty());
  CHECK_FALSE(owed.allocated());
  owed.add(10, 10, "250 ok\r\n");
  CHECK(owed.allocated());
  owed.acked(18);
  CHECK(owed.empty());
  CHECK_FALSE(owed.allocated());
  owed.add(20, 28, "250 ok\r\n");
  owed.carried(20, 1);
  CHECK_FALSE(owed.allocated());
}
