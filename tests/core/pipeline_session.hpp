#pragma once
// One TCP connection driven through a shared Pipeline (tests of what a worker does across
// flows: the byte budget, urgent data). Client 198.18.1.1:`client_port`, server 198.18.2.1:25.
#include <string>
#include <string_view>
#include <vector>

#include "core/pipeline.hpp"
#include "net/checksum.hpp"
#include "net/packet.hpp"
#include "support/packet_builder.hpp"

namespace sg::test {

struct PipelineSession {
  PipelineSession(core::Pipeline& p, uint16_t client_port) : pipeline(p), port(client_port) {}

  core::Pipeline& pipeline;
  uint16_t port;
  uint32_t client_seq = 5000;
  uint32_t server_seq = 90000;
  uint32_t server_acked = 5000;  // what the server acknowledged of the client's stream
  uint32_t next_id = 1;
  Timestamp now{};
  core::Output out;
  core::PacketMeta meta;  // what the kernel would say of the next packets

  struct Sent {
    core::PacketVerdict verdict;
    std::vector<uint8_t> packet;  // as the pipeline left it (or its own bytes, when modified)
  };

  PacketBuilder base(bool from_client) const {
    PacketBuilder b;
    from_client ? b.v4("198.18.1.1", "198.18.2.1").ports(port, 25)
                : b.v4("198.18.2.1", "198.18.1.1").ports(25, port);
    return b;
  }
  Sent send(std::vector<uint8_t> pkt) {
    out.clear();
    Sent s;
    s.verdict = pipeline.process(next_id++, pkt, false, now, out, meta);
    if (s.verdict.kind == core::VerdictKind::kAcceptModified)
      s.packet.assign(s.verdict.bytes.begin(), s.verdict.bytes.end());
    else
      s.packet = std::move(pkt);
    return s;
  }
  void handshake() {
    send(base(true).seq(client_seq - 1).flags(net::kTcpSyn).build());
    send(
        base(false).seq(server_seq - 1).ack(client_seq).flags(net::kTcpSyn | net::kTcpAck).build());
    send(base(true).seq(client_seq).ack(server_seq).flags(net::kTcpAck).build());
  }
  // Client data at its next sequence number (advanced only when it was not dropped).
  Sent client(std::string_view payload, uint8_t extra_flags = 0, uint16_t urgent = 0) {
    Sent s = client_at(client_seq, payload, extra_flags, urgent);
    if (s.verdict.kind != core::VerdictKind::kDrop)
      client_seq += static_cast<uint32_t>(payload.size());
    return s;
  }
  Sent client_at(uint32_t seq, std::string_view payload, uint8_t extra_flags = 0,
                 uint16_t urgent = 0) {
    return send(base(true)
                    .seq(seq)
                    .ack(server_seq)
                    .flags(net::kTcpAck | net::kTcpPsh | extra_flags)
                    .urgent(urgent)
                    .payload(payload)
                    .build());
  }
  // Server data, acknowledging everything the client sent.
  Sent server(std::string_view payload, uint8_t extra_flags = 0, uint16_t urgent = 0) {
    server_acked = client_seq;
    Sent s = send(base(false)
                      .seq(server_seq)
                      .ack(client_seq)
                      .flags(net::kTcpAck | net::kTcpPsh | extra_flags)
                      .urgent(urgent)
                      .payload(payload)
                      .build());
    server_seq += static_cast<uint32_t>(payload.size());
    return s;
  }
  // Client up to the DATA body: greeting, EHLO, MAIL, RCPT, DATA, each answered.
  void open_data() {
    handshake();
    server("220 mx.example.org ESMTP\r\n");
    client("EHLO c.example.org\r\n");
    server("250 mx.example.org\r\n");
    client("MAIL FROM:<a@example.org>\r\n");
    server("250 ok\r\n");
    client("RCPT TO:<b@example.org>\r\n");
    server("250 ok\r\n");
    client("DATA\r\n");
    server("354 go ahead\r\n");
  }
};

// A body segment of `size` bytes of complete 70-byte lines (size a multiple of 70).
inline std::string body_segment(size_t size, char fill) {
  std::string s;
  while (s.size() + 70 <= size) s += std::string(68, fill) + "\r\n";
  return s;
}

inline bool checksums_ok(std::span<const uint8_t> pkt) {
  auto v = net::parse_packet(pkt);
  return v && net::tcp_checksum_ok(pkt, *v) && net::ipv4_checksum_ok(pkt, *v);
}

}  // namespace sg::test
