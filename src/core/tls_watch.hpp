#pragma once
// STARTTLS: from the server's 220 to the client's first TLS record nothing else may pass (RFC
// 3207; CVE-2011-0411, "STARTTLS command injection"). The watch follows both directions' bytes
// over that stretch and says what broke it; the inspector decides what that costs.
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "smtp/session.hpp"

namespace sg::core {

class TlsWatch {
 public:
  // The server's 220 to STARTTLS ends at server offset `end`.
  void on_ready_reply(uint64_t end) { reply_end_ = end; }
  // The session starts TLS with the client's stream at `client_from`. Returns whether an
  // injection was reported before (bytes that came with the STARTTLS): nothing more to watch.
  bool start(uint64_t client_from);
  // Bytes of `dir` at `pos`, while awaiting the client's hello; `server_end` is the server
  // stream's frontier. Returns what breaks the rule, if anything (the watch is then over).
  std::optional<std::string> on_bytes(smtp::Dir dir, uint64_t pos, std::span<const uint8_t> bytes,
                                      uint64_t server_end);
  // Reported or settled: nothing more to watch.
  void end() { state_ = State::kDone; }

  bool off() const { return state_ == State::kOff; }
  bool awaiting_hello() const { return state_ == State::kAwaitHello; }

 private:
  // kOff: no STARTTLS yet; kAwaitHello: the 220 was seen, the client's TLS hello not yet.
  enum class State : uint8_t { kOff, kAwaitHello, kDone };
  State state_ = State::kOff;
  uint64_t reply_end_ = 0;    // server offset after the 220 line
  uint64_t client_from_ = 0;  // client offset of its first byte after the 220
};

}  // namespace sg::core
