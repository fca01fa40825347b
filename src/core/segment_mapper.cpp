#include "core/segment_mapper.hpp"

#include <algorithm>

#include "net/checksum.hpp"
#include "tcp/ack_rewrite.hpp"
#include "util/byte_order.hpp"

namespace sg::core {
namespace {

using smtp::Dir;

// The receiver must read the stream that was inspected: with URG set, a socket without
// SO_OOBINLINE takes one byte out of it (which byte, BSD and RFC 1122 disagree), so "XEXPN"
// with the X urgent reaches the server's parser as "EXPN". Every forwarded segment of an
// inspected flow goes without the flag and the pointer.
bool clear_urgent(std::span<uint8_t> packet, const net::PacketView& v, Counters& counters) {
  if (!net::clear_urgent(packet, v)) return false;
  counters.add(Counter::tcp_urgent_cleared);
  return true;
}

}  // namespace

uint64_t stream_offset(const InspectedFlow& f, Dir d, uint32_t seq) {
  return f.sender(d).space.offset(seq, f.inspector->frontier(d));
}

MappedPacket map_packet(InspectedFlow& f, Dir d, std::span<uint8_t> packet,
                        const net::PacketView& v, std::vector<uint8_t>& out, Counters& counters) {
  FlowInspector& in = *f.inspector;
  const tcp::SenderState& fd = f.sender(d);
  const Dir r = smtp::opposite(d);
  const rewrite::EditList& ed = in.edits(d);
  const rewrite::EditList& er = in.edits(r);
  const bool syn = v.flags & net::kTcpSyn;
  const uint64_t a = syn ? 0 : stream_offset(f, d, v.seq);
  const uint64_t b = a + v.payload_len;
  if (!syn && v.payload_len > 0) f.conn.note_forwarded(static_cast<size_t>(d), b);

  if (!ed.ever_resized() && !er.ever_resized()) {
    // Every edit so far keeps lengths: bytes change in place, numbers stay.
    auto payload = packet.subspan(v.payload_offset, v.payload_len);
    const bool edited = v.payload_len > 0 && in.apply(d, a, payload);
    const bool urgent = clear_urgent(packet, v, counters);
    if (!edited && !urgent) return {};
    net::finalize_checksums(packet, v);
    return {MapOutcome::kRewritten, packet};
  }

  // The receiver already acknowledged what lies before acked: those bytes are not rendered
  // again (their edits are forgotten), only what follows.
  const uint64_t acked = ed.acked_original();
  std::span<const uint8_t> payload =
      std::span<const uint8_t>(packet).subspan(v.payload_offset, v.payload_len);
  uint64_t from = a;
  bool stale = false;  // nothing of it is new to the receiver
  if (!syn && v.payload_len > 0 && a < acked) {
    counters.add(Counter::segments_trimmed);
    if (b <= acked) {
      stale = true;
      from = b;
      payload = {};
    } else {
      from = acked;
      payload = payload.subspan(static_cast<size_t>(acked - a));
    }
  }
  out.assign(packet.begin(), packet.begin() + static_cast<ptrdiff_t>(v.payload_offset));
  ed.render(from, payload, out);
  const size_t new_payload = out.size() - v.payload_offset;
  if (out.size() > 0xffff) return {MapOutcome::kTooLong, {}};

  uint32_t seq = v.seq;
  if (!syn) {
    if (new_payload > 0) {
      seq = fd.space.seq(ed.to_rewritten(from));
    } else if (stale && !(v.flags & net::kTcpFin)) {
      // Old data only (a spurious retransmission, a keepalive): one below the receiver's next
      // byte, so that it answers with an ACK as it would have.
      seq = fd.space.seq(ed.to_rewritten_after(acked)) - 1;
    } else {
      // No data: an ACK, FIN or RST belongs after any bytes inserted at its position.
      seq = fd.space.seq(ed.to_rewritten_after(b));
    }
  }
  if (new_payload != v.payload_len) counters.add(Counter::segments_resized);

  // Lengths first, so that the packet parses again.
  if (v.ip_version == 4) {
    store_be16(out, 2, static_cast<uint16_t>(out.size()));
  } else {
    store_be16(out, 4, static_cast<uint16_t>(out.size() - 40));
  }
  auto nv = net::parse_packet(out);
  if (!nv) return {MapOutcome::kTooLong, {}};  // unreachable: the header was valid as it came
  net::write_seq(out, *nv, seq);
  clear_urgent(out, *nv, counters);
  if (er.ever_resized()) {
    const tcp::SenderState& rd = f.sender(r);
    const uint64_t near = er.to_rewritten(in.frontier(r));
    tcp::rewrite_ack_and_sack(out, *nv, er.map(), rd.space, near);
  }
  net::finalize_checksums(out, *nv);
  return {MapOutcome::kRewritten, out};
}

}  // namespace sg::core
