// fuzz_pipeline: the whole per-packet path, raw IP packets in, verdicts out.
//
// Input: byte 0 chooses the profile (fuzz_support.hpp, byte % 8), byte 1 the setup (bit 0:
// IPv6; bit 1: no mid-stream pickup; bit 2: a short hold timeout and small hold limits); then
// records:
//   'P' len16 bytes                raw IP packet, handed to Pipeline::process as it is
//   'C' / 'S' flags i16 i16 opts len16 payload
//                                  a TCP segment of the client / server built here (so that a
//                                  mutated length or flag still gives a well-formed packet):
//                                  TCP flags (low 6 bits), seq relative to the side's next
//                                  sequence number, ack relative to the other side's, options
//                                  (bit 0 timestamps, bit 1 a SACK block: two more u16, its
//                                  left edge relative to the ack and its length)
//   'T' u16                        the clock advances that many milliseconds, then on_timer
// any other tag: a segment, its side by the tag's low bit. Before the records the harness runs a
// handshake for the client 198.18.1.1:40000 (2001:db8:1::1) and the server 198.18.2.1:25
// (2001:db8:2::1), client ISN 0xffffffef (its sequence numbers wrap inside the dialogue) and
// server ISN 999, so data reaches the SMTP engine; make_corpus.py writes raw packets for the same
// connection. Packets are numbered 1, 2, ... in the order they are processed.
//
// Checked after every call:
//   - a kAcceptModified packet, a released kAcceptModified packet and every injected packet
//     parse, carry complete IPv4 and TCP checksums, and keep the packet's own addresses and
//     ports (an injected one: the connection's, either way);
//   - a packet is released only if it was held and not released yet, as accept, modified or
//     drop; a held packet is released once its hold timeout has passed and on_timer ran;
//   - at the end, drain() releases everything held.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/pipeline.hpp"
#include "fuzz/fuzz_support.hpp"
#include "net/checksum.hpp"
#include "net/packet.hpp"
#include "policy/policy_set.hpp"
#include "support/packet_builder.hpp"

using namespace sg;
using core::VerdictKind;

namespace {

constexpr uint32_t kClientIsn = 0xffffffefu;
constexpr uint32_t kServerIsn = 999;

struct Endpoint {
  net::IpAddress addr;
  uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
};

std::string describe(const net::PacketView& v) {
  return v.src.to_string() + ":" + std::to_string(v.src_port) + " > " + v.dst.to_string() + ":" +
         std::to_string(v.dst_port) + " seq " + std::to_string(v.seq) + " ack " +
         std::to_string(v.ack) + " flags " + std::to_string(v.flags) + " len " +
         std::to_string(v.payload_len);
}

// A packet the pipeline hands out must be one a kernel would accept as it is.
net::PacketView well_formed(std::span<const uint8_t> bytes, const char* what) {
  const auto v = net::parse_packet(bytes);
  SG_FUZZ_CHECK(v.has_value(), std::string(what) + " does not parse");
  SG_FUZZ_CHECK(v->packet_len <= bytes.size(), std::string(what) + ": IP length " +
                                                   std::to_string(v->packet_len) + " of " +
                                                   std::to_string(bytes.size()) + " bytes");
  SG_FUZZ_CHECK(net::tcp_checksum_ok(bytes, *v),
                std::string(what) + ": TCP checksum, " + describe(*v));
  SG_FUZZ_CHECK(v->ip_version == 6 || net::ipv4_checksum_ok(bytes, *v),
                std::string(what) + ": IPv4 header checksum");
  return *v;
}

class Harness {
 public:
  Harness(size_t profile, uint8_t setup) : v6_(setup & 1), pipeline_(config(profile, setup)) {
    hold_timeout_ = (setup & 4) ? milliseconds(50) : milliseconds(2000);
    client_ = {parse_addr(v6_ ? "2001:db8:1::1" : "198.18.1.1"), 40000};
    server_ = {parse_addr(v6_ ? "2001:db8:2::1" : "198.18.2.1"), 25};
    seg(true, net::kTcpSyn, kClientIsn, 0, {});
    seg(false, net::kTcpSyn | net::kTcpAck, kServerIsn, kClientIsn + 1, {});
    next_[0] = kClientIsn + 1;
    next_[1] = kServerIsn + 1;
    seg(true, net::kTcpAck, next_[0], next_[1], {});
  }

  void run(fuzz::Input& in) {
    while (!in.empty()) {
      const uint8_t tag = in.u8();
      if (tag == 'P') {
        const auto raw = in.bytes(in.u16());
        process(std::vector<uint8_t>(raw.begin(), raw.end()));
      } else if (tag == 'T') {
        now_ += milliseconds(in.u16());
        out_.clear();
        pipeline_.on_timer(now_, out_);
        check_output();
        check_deadlines();
      } else {
        segment(tag == 'C' ? true : tag == 'S' ? false : (tag & 1) == 0, in);
      }
    }
    out_.clear();
    pipeline_.drain(now_, out_);
    check_output();
    SG_FUZZ_CHECK(held_.empty(), std::to_string(held_.size()) + " packets never released");
    SG_FUZZ_CHECK(!pipeline_.has_held_packets(), "the pipeline still holds packets after drain");
  }

 private:
  static core::PipelineConfig config(size_t profile, uint8_t setup) {
    core::PipelineConfig c;
    c.policies = policy::single_policy(fuzz::profile_ptr(profile));
    c.max_flows = 4;
    c.exceptions.set(sg::policy::Exception::kMidstream, (setup & 2)
                                                            ? sg::policy::ExceptionAction::kReject
                                                            : sg::policy::ExceptionAction::kPass);
    c.done_mark = 0x100000;
    if (setup & 4) {
      c.hold_timeout = milliseconds(50);
      c.max_held_packets_per_flow = 4;
      c.max_held_bytes_per_flow = 512;
    }
    return c;
  }

  static net::IpAddress parse_addr(std::string_view text) {
    // Through a packet: PacketBuilder knows the text forms, parse_packet stores them.
    test::PacketBuilder b;
    text.find(':') != text.npos ? b.v6(text, "2001:db8::9") : b.v4(text, "198.18.0.9");
    return net::parse_packet(b.build())->src;
  }

  test::PacketBuilder base(bool from_client) const {
    test::PacketBuilder b;
    const char* c = v6_ ? "2001:db8:1::1" : "198.18.1.1";
    const char* s = v6_ ? "2001:db8:2::1" : "198.18.2.1";
    if (v6_) {
      from_client ? b.v6(c, s) : b.v6(s, c);
    } else {
      from_client ? b.v4(c, s) : b.v4(s, c);
    }
    from_client ? b.ports(40000, 25) : b.ports(25, 40000);
    return b;
  }

  void seg(bool from_client, uint8_t flags, uint32_t seq, uint32_t ack, std::string_view payload) {
    process(base(from_client).flags(flags).seq(seq).ack(ack).payload(payload).build());
  }

  void segment(bool from_client, fuzz::Input& in) {
    const uint8_t flags = in.u8() & 0x3f;
    const auto seq_delta = static_cast<int16_t>(in.u16());
    const auto ack_delta = static_cast<int16_t>(in.u16());
    const uint8_t opts = in.u8();
    uint16_t sack_left = 0, sack_len = 0;
    if (opts & 2) {
      sack_left = in.u16();
      sack_len = in.u16();
    }
    // At most what fits in one IP packet with every header and option (PacketBuilder's limit).
    const auto payload = fuzz::text_of(in.bytes(std::min<size_t>(in.u16(), 65000)));
    const size_t side = from_client ? 0 : 1;
    const uint32_t seq = next_[side] + static_cast<uint32_t>(static_cast<int32_t>(seq_delta));
    const uint32_t ack = next_[1 - side] + static_cast<uint32_t>(static_cast<int32_t>(ack_delta));
    test::PacketBuilder b = base(from_client).flags(flags).seq(seq).ack(ack).payload(payload);
    if (opts & 1) {
      ++tsval_;
      b.timestamps(tsval_, tsval_ / 2);
    }
    if (opts & 2) b.sack({{ack + sack_left, ack + sack_left + sack_len}});
    process(b.build());
    // The side's next number: the highest end it has sent (serial arithmetic).
    const uint32_t end = seq + static_cast<uint32_t>(payload.size());
    if (static_cast<int32_t>(end - next_[side]) > 0) next_[side] = end;
  }

  void process(std::vector<uint8_t> packet) {
    const uint32_t id = next_id_++;
    const auto before = net::parse_packet(packet);
    out_.clear();
    const core::PacketVerdict v = pipeline_.process(id, packet, false, now_, out_);
    check_output(id);
    check_deadlines();
    SG_FUZZ_CHECK(v.kind == VerdictKind::kHold || !released_now_.count(id),
                  "packet " + std::to_string(id) + " released and given a verdict in one call");
    switch (v.kind) {
      case VerdictKind::kAcceptModified: {
        SG_FUZZ_CHECK(before.has_value(), "an unparsable packet came back modified");
        const net::PacketView after = well_formed(v.bytes, "modified packet");
        same_connection(*before, after, "modified packet");
        break;
      }
      case VerdictKind::kHold:
        if (released_now_.count(id)) {
          // Known (tests/fuzz/regressions/fuzz_pipeline/held-and-released-*): a segment beyond
          // a hole is held, then its own RST closes the flow and releases it in the same call,
          // and the call still answers kHold. The worker verdicts the release; the kHold then
          // leaves a stale held_marks_ entry. SG_FUZZ_STRICT=1 makes this a failure.
          SG_FUZZ_CHECK(!fuzz::strict(), "packet " + std::to_string(id) +
                                             " released by the call that answered kHold for it");
        } else {
          held_.emplace(id, now_);
        }
        break;
      case VerdictKind::kAccept:
      case VerdictKind::kDrop:
        break;
    }
  }

  static void same_connection(const net::PacketView& a, const net::PacketView& b,
                              const char* what) {
    SG_FUZZ_CHECK(
        a.src == b.src && a.dst == b.dst && a.src_port == b.src_port && a.dst_port == b.dst_port,
        std::string(what) + " changed its addresses: " + describe(a) + " became " + describe(b));
  }

  void check_output(uint32_t current = 0) {
    released_now_.clear();
    for (const core::Release& r : out_.released) {
      released_now_.insert(r.packet_id);
      if (r.packet_id == current && current != 0) continue;  // see process()
      const auto it = held_.find(r.packet_id);
      SG_FUZZ_CHECK(it != held_.end(),
                    "released packet " + std::to_string(r.packet_id) + " was not held");
      held_.erase(it);
      SG_FUZZ_CHECK(r.kind == VerdictKind::kAccept || r.kind == VerdictKind::kAcceptModified ||
                        r.kind == VerdictKind::kDrop,
                    "a release that holds again");
      if (r.kind == VerdictKind::kAcceptModified) well_formed(r.bytes, "released packet");
    }
    for (const core::Injection& x : out_.injected) {
      const net::PacketView v = well_formed(x.bytes, "injected packet");
      const Endpoint src{v.src, v.src_port}, dst{v.dst, v.dst_port};
      // Another connection's only as a reset: one the pipeline met without its handshake
      // (the mid-stream exception's reject).
      SG_FUZZ_CHECK((src == client_ && dst == server_) || (src == server_ && dst == client_) ||
                        (v.flags & net::kTcpRst),
                    "injected packet of another connection: " + describe(v));
    }
    for (const core::Decision& d : out_.decisions)
      SG_FUZZ_CHECK(d.event < policy::Event::kCount && !d.action.empty(), "decision");
  }

  // After on_timer, nothing is held longer than the hold timeout; and the pipeline asks for
  // on_timer by then.
  void check_deadlines() const {
    if (held_.empty()) return;
    Timestamp first = Timestamp::max();
    for (const auto& [id, since] : held_) first = std::min(first, since);
    SG_FUZZ_CHECK(pipeline_.next_deadline() <= first + hold_timeout_,
                  "next_deadline is later than the oldest hold's timeout");
    for (const auto& [id, since] : held_)
      SG_FUZZ_CHECK(
          now_ - since <= hold_timeout_,
          "packet " + std::to_string(id) + " held for " +
              std::to_string(std::chrono::duration_cast<milliseconds>(now_ - since).count()) +
              " ms after on_timer");
  }

  bool v6_;
  core::Pipeline pipeline_;
  Duration hold_timeout_{};
  Endpoint client_, server_;
  core::Output out_;
  Timestamp now_ = Timestamp{} + seconds(1000);
  uint32_t next_id_ = 1;
  uint32_t next_[2] = {0, 0};  // each side's next sequence number
  uint32_t tsval_ = 1000;
  std::map<uint32_t, Timestamp> held_;  // packet id -> when it was held
  std::set<uint32_t> released_now_;     // by the last call
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const size_t profile = in.u8();
  const uint8_t setup = in.u8();
  Harness h(profile, setup);
  h.run(in);
  return 0;
}
