#include "replay/session_script.hpp"

#include <algorithm>
#include <string>

#include "net/packet.hpp"
#include "support/packet_builder.hpp"

namespace sg::bench {
namespace {

constexpr const char* kClient = "198.18.1.1";
constexpr const char* kServer = "198.18.2.1";
constexpr uint16_t kClientPort = 1024;

// Postfix's answer to EHLO, as smtpd 3.x sends it by default.
constexpr std::string_view kEhloReply =
    "250-mx.example.org\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 10240000\r\n"
    "250-VRFY\r\n"
    "250-ETRN\r\n"
    "250-STARTTLS\r\n"
    "250-ENHANCEDSTATUSCODES\r\n"
    "250-8BITMIME\r\n"
    "250-DSN\r\n"
    "250-SMTPUTF8\r\n"
    "250 CHUNKING\r\n";

// Headers, then 76-character text lines (74 + CRLF) up to `size` bytes; the last line is cut to
// fit and still ends in CRLF.
std::string message_text(size_t size) {
  std::string m =
      "Received: from c.example.org (c.example.org [198.18.1.1])\r\n"
      "Date: Mon, 7 Dec 2026 21:00:00 +0000\r\n"
      "From: Alice Sender <alice@example.org>\r\n"
      "To: Bob Receiver <bob@example.net>\r\n"
      "Subject: quarterly figures, replay benchmark\r\n"
      "Message-ID: <20261207210000.12345@c.example.org>\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=us-ascii\r\n"
      "\r\n";
  static constexpr std::string_view kText =
      "The quick brown fox jumps over the lazy dog while the gateway reads every ";
  while (m.size() + 2 < size) {
    const size_t room = size - m.size() - 2;
    m.append(kText.substr(0, std::min(room, kText.size())));
    m += "\r\n";
  }
  return m;
}

class ScriptWriter {
 public:
  explicit ScriptWriter(SessionScript& script) : script_(script) {}

  void handshake() {
    push(true, base(true)
                   .seq(client_seq_ - 1)
                   .flags(net::kTcpSyn)
                   .mss(1460)
                   .sack_permitted()
                   .window_scale(7)
                   .build());
    push(false, base(false)
                    .seq(server_seq_ - 1)
                    .ack(client_seq_ - removed_)
                    .flags(net::kTcpSyn | net::kTcpAck)
                    .mss(1460)
                    .sack_permitted()
                    .window_scale(7)
                    .build());
    push(true,
         base(true).seq(client_seq_).ack(server_seq_ + inserted_).flags(net::kTcpAck).build());
  }

  // Client bytes in segments of at most `mss`; the server acks every second full segment, as a
  // delayed-ACK stack does (the reply that follows acks the rest).
  void client(std::string_view bytes, size_t mss) {
    size_t unacked_segments = 0;
    while (!bytes.empty()) {
      const std::string_view seg = bytes.substr(0, std::min(mss, bytes.size()));
      bytes.remove_prefix(seg.size());
      push(true, base(true)
                     .seq(client_seq_)
                     .ack(server_seq_ + inserted_)
                     .flags(net::kTcpAck | net::kTcpPsh)
                     .payload(seg)
                     .build());
      client_seq_ += static_cast<uint32_t>(seg.size());
      if (++unacked_segments == 2 && !bytes.empty()) {
        push(false,
             base(false).seq(server_seq_).ack(client_seq_ - removed_).flags(net::kTcpAck).build());
        unacked_segments = 0;
      }
    }
  }

  // Server reply, acknowledging everything the client sent.
  void server(std::string_view bytes) {
    push(false, base(false)
                    .seq(server_seq_)
                    .ack(client_seq_ - removed_)
                    .flags(net::kTcpAck | net::kTcpPsh)
                    .payload(bytes)
                    .build());
    server_seq_ += static_cast<uint32_t>(bytes.size());
  }

  // A command the gateway removes and answers itself: the server never sees it (nor acks it),
  // the client gets `answer_bytes` the server never sent. From here on each side's packets carry
  // the numbers of its own view of the other's stream; the pipeline maps between them.
  void answered_command(std::string_view command, size_t answer_bytes) {
    push(true, base(true)
                   .seq(client_seq_)
                   .ack(server_seq_ + inserted_)
                   .flags(net::kTcpAck | net::kTcpPsh)
                   .payload(command)
                   .build());
    client_seq_ += static_cast<uint32_t>(command.size());
    removed_ += static_cast<uint32_t>(command.size());
    inserted_ += static_cast<uint32_t>(answer_bytes);
  }

  // After the 221: the server closes, the client answers with its own FIN, the server acks it.
  void close() {
    push(false, base(false)
                    .seq(server_seq_)
                    .ack(client_seq_ - removed_)
                    .flags(net::kTcpFin | net::kTcpAck)
                    .build());
    server_seq_ += 1;
    push(true, base(true)
                   .seq(client_seq_)
                   .ack(server_seq_ + inserted_)
                   .flags(net::kTcpFin | net::kTcpAck)
                   .build());
    client_seq_ += 1;
    push(false,
         base(false).seq(server_seq_).ack(client_seq_ - removed_).flags(net::kTcpAck).build());
  }

 private:
  test::PacketBuilder base(bool from_client) const {
    test::PacketBuilder b;
    from_client ? b.v4(kClient, kServer).ports(kClientPort, 25)
                : b.v4(kServer, kClient).ports(25, kClientPort);
    return b;
  }
  void push(bool from_client, std::vector<uint8_t> bytes) {
    script_.packets.push_back({std::move(bytes), from_client});
  }

  SessionScript& script_;
  uint32_t client_seq_ = 0x1a2b3c4d;  // the next byte each side sends (after the SYN)
  uint32_t server_seq_ = 0x71e2d3c4;
  uint32_t removed_ = 0;   // client bytes the server never got (answered commands)
  uint32_t inserted_ = 0;  // bytes the client got that the server never sent (the answers)
};

// RFC 1624 eqn. 3: the one's-complement sum `check` after a 16-bit word went from `from` to `to`.
void update_checksum(uint8_t* check, uint16_t from, uint16_t to) {
  uint32_t sum = static_cast<uint16_t>(~((check[0] << 8) | check[1]));
  sum += static_cast<uint16_t>(~from);
  sum += to;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  const uint16_t result = static_cast<uint16_t>(~sum);
  check[0] = static_cast<uint8_t>(result >> 8);
  check[1] = static_cast<uint8_t>(result);
}

void replace_word(uint8_t* word, uint16_t to, uint8_t* ip_check, uint8_t* tcp_check) {
  const uint16_t from = static_cast<uint16_t>((word[0] << 8) | word[1]);
  word[0] = static_cast<uint8_t>(to >> 8);
  word[1] = static_cast<uint8_t>(to);
  if (ip_check) update_checksum(ip_check, from, to);
  update_checksum(tcp_check, from, to);
}

}  // namespace

SessionScript build_session(const ScriptOptions& options) {
  SessionScript script;
  ScriptWriter w(script);
  const bool pipelined = options.kind == SessionKind::kPipelined;
  w.handshake();
  w.server("220 mx.example.org ESMTP Postfix\r\n");
  w.client("EHLO c.example.org\r\n", options.mss);
  w.server(kEhloReply);
  script.commands = 1;
  if (options.kind == SessionKind::kEdits) {
    // Masked by modern (EXPN), by asa-default (EXPN) and by pix-mailguard (both): the server
    // sees X's of the same length and answers as Postfix does to an unknown command.
    w.client("VRFY postmaster\r\n", options.mss);
    w.server("252 2.0.0 postmaster\r\n");
    w.client("EXPN staff\r\n", options.mss);
    w.server("502 5.5.2 Error: command not recognized\r\n");
    script.commands += 2;
  }
  if (options.kind == SessionKind::kAnswer) {
    w.answered_command("VRFY postmaster\r\n", options.answer_bytes);
    script.commands += 1;
  }
  if (pipelined) {
    w.client("MAIL FROM:<alice@example.org> SIZE=" + std::to_string(options.body_bytes) +
                 "\r\nRCPT TO:<bob@example.net>\r\nRCPT TO:<carol@example.net>\r\nDATA\r\n",
             options.mss);
    w.server(
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
        "354 End data with <CR><LF>.<CR><LF>\r\n");
    script.commands += 4;
  } else {
    w.client("MAIL FROM:<alice@example.org>\r\n", options.mss);
    w.server("250 2.1.0 Ok\r\n");
    w.client("RCPT TO:<bob@example.net>\r\n", options.mss);
    w.server("250 2.1.5 Ok\r\n");
    w.client("DATA\r\n", options.mss);
    w.server("354 End data with <CR><LF>.<CR><LF>\r\n");
    script.commands += 3;
  }
  const std::string message = message_text(options.body_bytes) + ".\r\n";
  script.data_bytes = message.size();
  w.client(message, options.mss);
  w.server("250 2.0.0 Ok: queued as 4dQmXk1Zr2z9v\r\n");
  w.client("QUIT\r\n", options.mss);
  w.server("221 2.0.0 Bye\r\n");
  script.commands += 1;
  w.close();
  return script;
}

void readdress(std::span<uint8_t> packet, bool from_client, size_t index) {
  const size_t ihl = (packet[0] & 0x0f) * 4u;
  uint8_t* ip_check = &packet[10];
  uint8_t* tcp_check = &packet[ihl + 16];
  // The client address's last two bytes (198.18.1.x) and the client's port.
  const uint16_t host = static_cast<uint16_t>(0x0100 | (1 + index / 60000 % 250));
  const uint16_t port = static_cast<uint16_t>(kClientPort + index % 60000);
  replace_word(&packet[from_client ? 14 : 18], host, ip_check, tcp_check);
  replace_word(&packet[ihl + (from_client ? 0 : 2)], port, nullptr, tcp_check);
}

std::string_view to_string(SessionKind kind) {
  switch (kind) {
    case SessionKind::kClean:
      return "clean";
    case SessionKind::kPipelined:
      return "pipelined";
    case SessionKind::kEdits:
      return "edits";
    case SessionKind::kAnswer:
      return "answer";
  }
  return "?";
}

}  // namespace sg::bench
