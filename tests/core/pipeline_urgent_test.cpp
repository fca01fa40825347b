// Urgent data on an inspected connection: the receiver must read the bytes that were inspected,
// so no segment leaves with URG or an urgent pointer (a socket without SO_OOBINLINE would take
// the urgent byte out of the stream: "XEXPN" inspected, "EXPN" read).
#include <catch2/catch.hpp>

#include "core/pipeline_session.hpp"

using namespace sg;
using core::VerdictKind;
using test::PipelineSession;

namespace {

core::PipelineConfig config(std::string_view profile) {
  return core::PipelineConfig{policy::single_policy(policy::builtin_profile(std::string(profile)))};
}

void check_clean(const std::vector<uint8_t>& pkt, std::string_view payload) {
  auto v = net::parse_packet(pkt);
  REQUIRE(v);
  CHECK_FALSE(v->flags & net::kTcpUrg);
  CHECK(v->urgent == 0);
  CHECK(test::payload_of(pkt) == payload);
  CHECK(test::checksums_ok(pkt));
}

size_t urgent_decisions(const core::Output& out) {
  size_t n = 0;
  for (const core::Decision& d : out.decisions)
    if (d.event == policy::Event::kUrgentCleared) ++n;
  return n;
}

}  // namespace

TEST_CASE("urgent data leaves as ordinary bytes, counted, logged once per connection") {
  const std::string profile = GENERATE("modern", "pix-mailguard");
  core::Pipeline p(config(profile));
  PipelineSession s(p, 40001);
  s.handshake();
  s.server("220 mx.example.org ESMTP\r\n");
  s.client("EHLO c.example.org\r\n");
  s.server("250 mx.example.org\r\n");
  // "XEXPN root" with the X urgent (MSG_OOB on the first byte: pointer 1, BSD style).
  auto o = s.client("XEXPN root\r\n", net::kTcpUrg, 1);
  REQUIRE(o.verdict.kind == VerdictKind::kAcceptModified);
  // modern lets the unknown verb pass (the server refuses it); pix-mailguard X's it.
  check_clean(o.packet, profile == "modern" ? "XEXPN root\r\n" : "XXXXXXXXXX\r\n");
  CHECK(p.counters().get(core::Counter::tcp_urgent_cleared) == 1);
  CHECK(urgent_decisions(s.out) == 1);
  // A pointer without the flag is zeroed too; the decision is not logged again.
  auto o2 = s.client("NOOP\r\n", 0, 3);
  REQUIRE(o2.verdict.kind == VerdictKind::kAcceptModified);
  check_clean(o2.packet, "NOOP\r\n");
  CHECK(p.counters().get(core::Counter::tcp_urgent_cleared) == 2);
  CHECK(urgent_decisions(s.out) == 0);
  // The server's direction too, and a segment without data (urgent mode announced ahead).
  auto o3 = s.server("", net::kTcpUrg, 100);
  REQUIRE(o3.verdict.kind == VerdictKind::kAcceptModified);
  check_clean(o3.packet, "");
  CHECK(p.counters().get(core::Counter::tcp_urgent_cleared) == 3);
  // Plain segments stay untouched.
  auto plain = s.client("NOOP\r\n");
  CHECK(plain.verdict.kind == VerdictKind::kAccept);
  CHECK(p.counters().get(core::Counter::tcp_urgent_cleared) == 3);
}

TEST_CASE("a held urgent segment is released without its urgent pointer, at every split") {
  // The command is cut anywhere; the first piece (held: undecided) carries the URG flag.
  const std::string line = "EXPN root\r\n";
  const size_t cut = GENERATE(range(size_t{1}, size_t{10}));
  core::Pipeline p(config("modern"));
  PipelineSession s(p, 40002);
  s.handshake();
  s.server("220 mx.example.org ESMTP\r\n");
  auto first = s.client(line.substr(0, cut), net::kTcpUrg, 1);
  auto second = s.client(line.substr(cut));
  std::vector<std::vector<uint8_t>> forwarded;
  if (first.verdict.kind == VerdictKind::kHold) {
    REQUIRE(s.out.released.size() == 1);
    REQUIRE(s.out.released[0].kind == VerdictKind::kAcceptModified);  // never the kernel's copy
    forwarded.emplace_back(s.out.released[0].bytes.begin(), s.out.released[0].bytes.end());
  } else {
    REQUIRE(first.verdict.kind == VerdictKind::kAcceptModified);
    forwarded.push_back(first.packet);
  }
  REQUIRE(second.verdict.kind != VerdictKind::kDrop);
  std::string seen;
  for (const auto& pkt : forwarded) {
    auto v = net::parse_packet(pkt);
    REQUIRE(v);
    CHECK_FALSE(v->flags & net::kTcpUrg);
    CHECK(v->urgent == 0);
    CHECK(test::checksums_ok(pkt));
  }
  CHECK(p.counters().get(core::Counter::tcp_urgent_cleared) == 1);
}

TEST_CASE("urgent data on a connection whose lengths changed is cleared in the rebuilt packet") {
  // VRFY answered by the gateway: the command leaves the client's stream, numbers are mapped.
  auto profile = std::make_shared<policy::Profile>(*policy::builtin_profile("modern"));
  profile->verbs[static_cast<size_t>(smtp::Verb::kVrfy)] = policy::CommandAction::kAnswer;
  core::Pipeline p(core::PipelineConfig{policy::single_policy(profile)});
  PipelineSession s(p, 40003);
  s.handshake();
  s.server("220 mx.example.org ESMTP\r\n");
  s.client("VRFY a\r\n");
  auto o = s.client("XEXPN root\r\n", net::kTcpUrg, 1);
  REQUIRE(o.verdict.kind == VerdictKind::kAcceptModified);
  check_clean(o.packet, "XEXPN root\r\n");
  auto v = net::parse_packet(o.packet);
  REQUIRE(v);
  CHECK(v->seq == s.client_seq - 12 - 8);  // mapped: the 8 bytes of VRFY are gone
  CHECK(p.counters().get(core::Counter::tcp_urgent_cleared) == 1);
}
