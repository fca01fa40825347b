#include "core/tls_watch.hpp"

#include <algorithm>

namespace sg::core {

bool TlsWatch::start(uint64_t client_from) {
  const bool reported = state_ == State::kDone;  // at once, when the bytes came
  state_ = reported ? State::kDone : State::kAwaitHello;
  client_from_ = client_from;
  return reported;
}

std::optional<std::string> TlsWatch::on_bytes(smtp::Dir dir, uint64_t pos,
                                              std::span<const uint8_t> bytes, uint64_t server_end) {
  if (dir == smtp::Dir::kServerToClient) {
    if (server_end <= reply_end_) return std::nullopt;
    state_ = State::kDone;
    return "server bytes after its 220 before the client's TLS hello";
  }
  // A TLS connection starts with a handshake record: content type 22, version 3.x. Its first
  // two bytes are checked, however the segments cut them.
  for (uint64_t p = std::max(pos, client_from_); p < pos + bytes.size(); ++p) {
    const uint8_t c = bytes[static_cast<size_t>(p - pos)];
    const uint64_t index = p - client_from_;
    if (c != (index == 0 ? 0x16 : 0x03)) {
      state_ = State::kDone;
      return "client bytes after the 220 are not a TLS record";
    }
    if (index == 1) {
      state_ = State::kDone;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace sg::core
