#pragma once
// Per-verb rate limits (policy: verb_rates): a command of a rate-limited verb passes as allowed
// while its verb stays within so many per second. One-second windows per verb, allocated with
// the first command counted against a limit: a connection that sends none pays one pointer.
#include <array>
#include <cstdint>
#include <memory>

#include "policy/profile.hpp"
#include "smtp/vocabulary.hpp"
#include "util/time.hpp"

namespace sg::core {

class VerbRates {
 public:
  // The profile limits some verb's rate.
  static bool limits_any(const policy::Profile& profile) {
    for (const policy::RateLimit& r : profile.verb_rates)
      if (r.per_second > 0) return true;
    return false;
  }
  // Counts one `verb` at `now`; true while within `limit`.
  bool within(smtp::Verb verb, const policy::RateLimit& limit, Timestamp now) {
    if (limit.per_second == 0) return false;
    if (!windows_) windows_ = std::make_unique<std::array<Window, smtp::kVerbCount + 1>>();
    Window& w = (*windows_)[static_cast<size_t>(verb)];
    if (now - w.start >= std::chrono::seconds(1) || w.count == 0) {
      w.start = now;
      w.count = 0;
    }
    return ++w.count <= limit.per_second;
  }
  // Whether the windows exist (some command was counted against a limit).
  bool allocated() const { return windows_ != nullptr; }

 private:
  struct Window {
    Timestamp start{};
    uint32_t count = 0;
  };
  std::unique_ptr<std::array<Window, smtp::kVerbCount + 1>> windows_;
};

}  // namespace sg::core
