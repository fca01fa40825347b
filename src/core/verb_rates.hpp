#pragma once
// Per-verb rate limits (policy: verb_rates): a command of a rate-limited verb passes as allowed
// while its verb stays within so many per second. One-second windows per verb, allocated only
// for profiles with rate limits.
#include <array>
#include <cstdint>
#include <memory>

#include "policy/profile.hpp"
#include "smtp/vocabulary.hpp"
#include "util/time.hpp"

namespace sg::core {

class VerbRates {
 public:
  explicit VerbRates(const policy::Profile& profile) {
    for (const policy::RateLimit& r : profile.verb_rates)
      if (r.per_second > 0) {
        windows_ = std::make_unique<std::array<Window, smtp::kVerbCount + 1>>();
        break;
      }
  }
  // The profile limits some verb's rate.
  bool active() const { return windows_ != nullptr; }
  // Counts one `verb` at `now`; true while within `limit`.
  bool within(smtp::Verb verb, const policy::RateLimit& limit, Timestamp now) {
    if (!windows_ || limit.per_second == 0) return false;
    Window& w = (*windows_)[static_cast<size_t>(verb)];
    if (now - w.start >= std::chrono::seconds(1) || w.count == 0) {
      w.start = now;
      w.count = 0;
    }
    return ++w.count <= limit.per_second;
  }

 private:
  struct Window {
    Timestamp start{};
    uint32_t count = 0;
  };
  std::unique_ptr<std::array<Window, smtp::kVerbCount + 1>> windows_;
};

}  // namespace sg::core
