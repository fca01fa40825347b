#pragma once
// The bytes one worker may keep for all its flows together (PipelineConfig::memory_budget):
// retained bytes (whole blocks, pooled for reuse), held packets, and bytes the sessions have not
// consumed yet. A peer controls all three, so all three count. The budget owns the block pool.
#include <cstddef>

#include "tcp/block_pool.hpp"
#include "util/time.hpp"

namespace sg::core {

class ByteBudget {
 public:
  explicit ByteBudget(size_t limit) : limit_(limit) {}

  tcp::BlockPool& pool() { return pool_; }
  size_t used() const { return pool_.bytes_held() + held_ + pending_; }

  void add_held(size_t bytes) { held_ += bytes; }
  void remove_held(size_t bytes) { held_ -= bytes; }
  // A flow's unconsumed session bytes are `now`; `counted` is what the budget had for it.
  void account_pending(size_t& counted, size_t now) {
    pending_ = pending_ - counted + now;
    counted = now;
  }
  void forget_pending(size_t& counted) {
    pending_ -= counted;
    counted = 0;
  }

  // Whether `more` bytes fit (always, without a limit), after letting go of pooled blocks and,
  // failing that, of the retained bytes of the flow retaining the most: `release_largest()`
  // does that and returns false when no flow qualifies. One search, then at most one every
  // 10 ms while none qualifies.
  template <class ReleaseLargest>
  bool fits(size_t more, Timestamp now, ReleaseLargest release_largest) {
    if (limit_ == 0 || used() + more <= limit_) return true;
    pool_.trim();
    if (used() + more <= limit_ || now < no_victim_until_) return used() + more <= limit_;
    if (!release_largest()) {
      no_victim_until_ = now + milliseconds(10);
      return false;
    }
    pool_.trim();
    return used() + more <= limit_;
  }

 private:
  size_t limit_ = 0;  // 0: no limit
  tcp::BlockPool pool_;
  size_t held_ = 0;              // bytes of every held packet
  size_t pending_ = 0;           // unconsumed session bytes of every flow
  Timestamp no_victim_until_{};  // the last search for a flow to release found none
};

}  // namespace sg::core
