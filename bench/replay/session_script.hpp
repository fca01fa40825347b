#pragma once
// One SMTP session as the packets a gateway between client and server would see, both
// directions, in the order they pass: SYN, SYN-ACK, ACK, the dialogue with its acks and the
// FINs. Built once per kind; the replay copies the packets and gives every session its own
// client address and port (readdress), so that no two sessions share a flow.
//
// Client 198.18.1.x:port, server 198.18.2.1:25. The client's sequence numbers are those of the
// client's stack; the server's acks are those a Linux stack would send: its reply acknowledges
// the command, and during the body one pure ACK per two full segments (delayed ACK). The client
// piggybacks its acks on the next command.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace sg::bench {

enum class SessionKind : uint8_t {
  kClean,      // banner, EHLO (multi-line reply), MAIL, RCPT, DATA, body, ".", QUIT, FINs
  kPipelined,  // the same, MAIL + 2 RCPT + DATA in one segment, the replies in one segment
  kEdits,      // the clean session with VRFY and EXPN before MAIL: commands the profile masks
  kAnswer,     // the clean session with VRFY before MAIL, which the gateway removes and answers
               // itself (CommandAction::kAnswer): both streams change length and are mapped
};

struct ScriptPacket {
  std::vector<uint8_t> bytes;
  bool from_client = false;
};

struct SessionScript {
  std::vector<ScriptPacket> packets;
  size_t data_bytes = 0;  // the message as sent after the 354, up to and including ".\r\n"
  size_t commands = 0;    // client command lines
};

struct ScriptOptions {
  SessionKind kind = SessionKind::kClean;
  size_t body_bytes = 10 * 1024;  // the message (headers and body) before the final "."
  size_t mss = 1448;              // client payload per segment: Linux's on a 1500-byte MTU with TCP
                                  // timestamps (the script's packets carry no timestamp option)
  size_t answer_bytes = 0;        // kAnswer: the length of the gateway's reply, CRLF included
};

SessionScript build_session(const ScriptOptions& options);

// Rewrites a packet of the script in place for session `index`: the client 198.18.1.1:1024
// becomes 198.18.1.(1 + index / 60000 % 250):(1024 + index % 60000), unique for 15M sessions;
// the IPv4 and TCP checksums are updated incrementally (RFC 1624).
void readdress(std::span<uint8_t> packet, bool from_client, size_t index);

std::string_view to_string(SessionKind kind);

}  // namespace sg::bench
