#pragma once
// STARTTLS: from the server's 220 to the client's first TLS record nothing else may pass (RFC
// 3207; CVE-2011-0411, "STARTTLS command injection"). The watch follows both directions' bytes
// over that stretch and says what broke it; the inspector decides what that costs. Its state is
// allocated when the 220 is seen or the watch ends: a connection without STARTTLS pays one
// pointer.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "smtp/session.hpp"

namespace sg::core {

class TlsWatch {
 public:
  // The server's 220 to STARTTLS ends at server offset `end`.
  void on_ready_reply(uint64_t end) { state().reply_end = end; }
  // The session starts TLS with the client's stream at `client_from`. Returns whether an
  // injection was reported before (bytes that came with the STARTTLS): nothing more to watch.
  bool start(uint64_t client_from);
  // Bytes of `dir` at `pos`, while awaiting the client's hello; `server_end` is the server
  // stream's frontier. Returns what breaks the rule, if anything (the watch is then over).
  std::optional<std::string> on_bytes(smtp::Dir dir, uint64_t pos, std::span<const uint8_t> bytes,
                                      uint64_t server_end);
  // Reported or settled: nothing more to watch.
  void end() { state().phase = Phase::kDone; }

  bool off() const { return !state_ || state_->phase == Phase::kOff; }
  bool awaiting_hello() const { return state_ && state_->phase == Phase::kAwaitHello; }
  // Whether its state exists (a STARTTLS reply was seen or the watch ended).
  bool allocated() const { return state_ != nullptr; }

 private:
  // kOff: no STARTTLS yet; kAwaitHello: the 220 was seen, the client's TLS hello not yet.
  enum class Phase : uint8_t { kOff, kAwaitHello, kDone };
  struct State {
    Phase phase = Phase::kOff;
    uint64_t reply_end = 0;    // server offset after the 220 line
    uint64_t client_from = 0;  // client offset of its first byte after the 220
  };
  State& state() {
    if (!state_) state_ = std::make_unique<State>();
    return *state_;
  }
  std::unique_ptr<State> state_;
};

}  // namespace sg::core
