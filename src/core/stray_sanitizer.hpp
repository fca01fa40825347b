#pragma once
// check.smuggling = sanitize: a message's stray CR, LF and NUL bytes (smtp::StrayBytes finds
// them) are to become spaces. Says which client stream offsets to rewrite, the inspector
// rewrites them. Its state is allocated with the first message byte fed (only profiles that
// sanitize feed it): a connection that never sends a message pays one pointer.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "smtp/stray_bytes.hpp"

namespace sg::core {

class StraySanitizer {
 public:
  // Message bytes at `pos`: the offsets found stray (valid until the next call).
  std::span<const uint64_t> feed(uint64_t pos, std::span<const uint8_t> bytes) {
    if (!state_) state_ = std::make_unique<State>();
    state_->offsets.clear();
    state_->bytes.feed(pos, bytes, state_->offsets);
    return state_->offsets;
  }
  // The message's held CR is stray (no next byte in time, or the message is over): its offset,
  // if there was one to settle.
  std::optional<std::span<const uint64_t>> settle() {
    if (!state_) return std::nullopt;
    state_->offsets.clear();
    if (!state_->bytes.settle(state_->offsets)) return std::nullopt;
    return std::span<const uint64_t>(state_->offsets);
  }
  // A CR that waits for the byte after it: output from there on is not final.
  std::optional<uint64_t> undecided() const {
    return state_ ? state_->bytes.undecided() : std::nullopt;
  }
  // Whether any message byte was fed (its state exists).
  bool allocated() const { return state_ != nullptr; }

 private:
  struct State {
    smtp::StrayBytes bytes;
    std::vector<uint64_t> offsets;  // scratch
  };
  std::unique_ptr<State> state_;
};

}  // namespace sg::core
