#pragma once
// Packets of one direction kept queued in the kernel until the bytes they carry are decided:
// the end of a partial line, or a hole before them (out of order). The queue owns the copies
// and their byte count; what a packet becomes when it leaves (mapped, dropped) is the caller's.
// Pure: stream offsets and deadlines in, packets out in the order they came.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "util/time.hpp"

namespace sg::tcp {

struct HeldPacket {
  uint32_t packet_id = 0;
  uint64_t start = 0;          // stream offset of its first payload byte
  uint64_t end = 0;            // stream offset after its payload
  Timestamp deadline{};        // partial line neutralised, or (not fed) the packet dropped
  bool fed = true;             // false: it lies beyond a hole and has not been inspected yet
  std::vector<uint8_t> bytes;  // a copy of the whole IP packet
  bool conflict = false;       // overlaps inspected bytes with different ones: dropped
};

class HoldQueue {
 public:
  bool empty() const { return held_.empty(); }
  size_t size() const { return held_.size(); }
  size_t bytes() const { return bytes_; }
  const std::vector<HeldPacket>& packets() const { return held_; }

  // Whether a packet of `bytes` more fits under the per-direction limits.
  bool fits(size_t bytes, size_t max_packets, size_t max_bytes) const {
    return held_.size() < max_packets && bytes_ + bytes <= max_bytes;
  }
  void push(HeldPacket h) {
    bytes_ += h.bytes.size();
    held_.push_back(std::move(h));
  }
  // An inspected packet whose deadline passed (its partial line must be decided now).
  bool fed_due(Timestamp now) const {
    for (const HeldPacket& h : held_)
      if (h.fed && h.deadline <= now) return true;
    return false;
  }
  Timestamp earliest_deadline() const {
    Timestamp t = Timestamp::max();
    for (const HeldPacket& h : held_) t = std::min(t, h.deadline);
    return t;
  }

  // Segments held beyond a hole, in whatever order they came, as the hole closes: `feed(h)`
  // for each not yet fed packet that starts at or before `frontier()`, until none is left.
  template <class Frontier, class Feed>
  void feed_in_order(Frontier frontier, Feed feed) {
    for (bool progress = true; progress;) {
      progress = false;
      for (HeldPacket& h : held_) {
        if (h.fed || h.start > frontier()) continue;
        h.fed = true;
        progress = true;
        feed(h);
      }
    }
  }
  // Removes the packets never fed whose deadline is at or before `deadline`, calling
  // `dropped(h)` for each. Returns the bytes freed.
  template <class Dropped>
  size_t drop_unfed(Timestamp deadline, Dropped dropped) {
    size_t freed = 0;
    for (auto it = held_.begin(); it != held_.end();) {
      if (it->fed || it->deadline > deadline) {
        ++it;
        continue;
      }
      freed += it->bytes.size();
      dropped(*it);
      it = held_.erase(it);
    }
    bytes_ -= freed;
    return freed;
  }
  // Removes, in the order they came, the fed packets that conflict or whose bytes are all
  // decided (before `decided_until()`), calling `leave(h)` for each; a packet still waiting
  // behind a hole does not hold up the ones after it. Returns the bytes freed.
  template <class DecidedUntil, class Leave>
  size_t take_ready(DecidedUntil decided_until, Leave leave) {
    size_t freed = 0;
    for (auto it = held_.begin(); it != held_.end();) {
      if (!it->fed || (!it->conflict && it->end > decided_until())) {
        ++it;
        continue;
      }
      HeldPacket h = std::move(*it);
      it = held_.erase(it);
      freed += h.bytes.size();
      bytes_ -= h.bytes.size();
      leave(h);
    }
    return freed;
  }
  // Empties the queue, calling `dropped(h)` for each packet. Returns the bytes freed.
  template <class Dropped>
  size_t clear(Dropped dropped) {
    for (const HeldPacket& h : held_) dropped(h);
    held_.clear();
    return std::exchange(bytes_, 0);
  }

 private:
  std::vector<HeldPacket> held_;
  size_t bytes_ = 0;
};

}  // namespace sg::tcp
