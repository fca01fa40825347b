#include "core/tls_watch.hpp"

#include <algorithm>

namespace sg::core {

bool TlsWatch::start(uint64_t client_from) {
  State& s = state();
  const bool reported = s.phase == Phase::kDone;  // at once, when the bytes came
  s.phase = reported ? Phase::kDone : Phase::kAwaitHello;
  s.client_from = client_from;
  return reported;
}

std::optional<std::string> TlsWatch::on_bytes(smtp::Dir dir, uint64_t pos,
                                              std::span<const uint8_t> bytes, uint64_t server_end) {
  State& s = state();
  if (dir == smtp::Dir::kServerToClient) {
    if (server_end <= s.reply_end) return std::nullopt;
    s.phase = Phase::kDone;
    return "server bytes after its 220 before the client's TLS hello";
  }
  // A TLS connection starts with a handshake record: content type 22, version 3.x. Its first
  // two bytes are checked, however the segments cut them.
  for (uint64_t p = std::max(pos, s.client_from); p < pos + bytes.size(); ++p) {
    const uint8_t c = bytes[static_cast<size_t>(p - pos)];
    const uint64_t index = p - s.client_from;
    if (c != (index == 0 ? 0x16 : 0x03)) {
      s.phase = Phase::kDone;
      return "client bytes after the 220 are not a TLS record";
    }
    if (index == 1) {
      s.phase = Phase::kDone;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace sg::core
