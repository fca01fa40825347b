#pragma once
// check.smuggling = sanitize: a message's stray CR, LF and NUL bytes (smtp::StrayBytes finds
// them) are to become spaces. Allocated only for profiles that sanitize; says which client
// stream offsets to rewrite, the inspector rewrites them.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "smtp/stray_bytes.hpp"

namespace sg::core {

class StraySanitizer {
 public:
  explicit StraySanitizer(bool active)
      : bytes_(active ? std::make_unique<smtp::StrayBytes>() : nullptr) {}

  bool active() const { return bytes_ != nullptr; }
  // Message bytes at `pos`: the offsets found stray (valid until the next call).
  std::span<const uint64_t> feed(uint64_t pos, std::span<const uint8_t> bytes) {
    offsets_.clear();
    bytes_->feed(pos, bytes, offsets_);
    return offsets_;
  }
  // The message's held CR is stray (no next byte in time, or the message is over): its offset,
  // if there was one to settle.
  std::optional<std::span<const uint64_t>> settle() {
    offsets_.clear();
    if (!bytes_ || !bytes_->settle(offsets_)) return std::nullopt;
    return std::span<const uint64_t>(offsets_);
  }
  // A CR that waits for the byte after it: output from there on is not final.
  std::optional<uint64_t> undecided() const { return bytes_ ? bytes_->undecided() : std::nullopt; }

 private:
  std::unique_ptr<smtp::StrayBytes> bytes_;
  std::vector<uint64_t> offsets_;  // scratch
};

}  // namespace sg::core
