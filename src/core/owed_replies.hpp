#pragma once
// Bytes the gateway inserted into the server's stream (an answer to a command it removed) that no
// server segment carries yet: the gateway sends them itself, and again until the client
// acknowledges them (core/gateway_segments builds the segments).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/time.hpp"

namespace sg::core {

struct OwedReply {
  uint64_t pos = 0;       // server stream offset where they were inserted
  uint64_t rw_start = 0;  // their place in the rewritten stream
  std::string bytes;
  Timestamp deadline{};
  Duration rto{};
  unsigned tries = 0;
  uint64_t rw_end() const { return rw_start + bytes.size(); }

  // Retransmission of the gateway's own segments: RFC 6298's minimum RTO is 1 s, but a reply
  // to a command is expected at once; Linux's 200 ms floor is the model. Backoff doubles up to
  // 8 s; after kMaxTries sends (about a minute) the client is taken to be gone.
  static constexpr Duration kFirstRto = milliseconds(250);
  static constexpr Duration kMaxRto = seconds(8);
  static constexpr unsigned kMaxTries = 12;
  bool given_up() const { return tries >= kMaxTries; }
  // It was sent at `now`: the next send is due after the current RTO, which then backs off.
  void sent(Timestamp now) {
    ++tries;
    deadline = now + rto;
    rto = std::min(rto * 2, kMaxRto);
  }
};

// One connection's owed replies.
// Allocated with the first owed reply and freed when the last is settled: most connections never
// owe one, and each tracked connection carries this.
class OwedReplies {
 public:
  bool empty() const { return !owed_ || owed_->empty(); }
  size_t size() const { return owed_ ? owed_->size() : 0; }
  std::vector<OwedReply>& all() {
    if (!owed_) owed_ = std::make_unique<std::vector<OwedReply>>();
    return *owed_;
  }
  const std::vector<OwedReply>& all() const {
    static const std::vector<OwedReply> kNone;
    return owed_ ? *owed_ : kNone;
  }

  // A reply inserted at server offset `pos`, rewritten offset `rw_start`: replaces one owed at
  // the same place (every insertion at pos: answers to consecutive commands).
  OwedReply& add(uint64_t pos, uint64_t rw_start, std::string bytes) {
    std::vector<OwedReply>& owed = all();
    std::erase_if(owed, [pos](const OwedReply& o) { return o.pos == pos; });
    OwedReply& o = owed.emplace_back();
    o.pos = pos;
    o.rw_start = rw_start;
    o.bytes = std::move(bytes);
    o.rto = OwedReply::kFirstRto;
    return o;
  }
  // The client acknowledged the rewritten server stream up to `acked`.
  void acked(uint64_t acked) {
    if (!owed_) return;
    std::erase_if(*owed_, [acked](const OwedReply& o) { return o.rw_end() <= acked; });
    if (owed_->empty()) owed_.reset();
  }
  // A server segment over [a, a + len) carries the inserted bytes itself now.
  void carried(uint64_t a, uint64_t len) {
    if (!owed_) return;
    std::erase_if(*owed_, [a, len](const OwedReply& o) { return o.pos >= a && o.pos < a + len; });
    if (owed_->empty()) owed_.reset();
  }
  void clear() { owed_.reset(); }
  Timestamp earliest_deadline() const {
    Timestamp t = Timestamp::max();
    for (const OwedReply& o : all()) t = std::min(t, o.deadline);
    return t;
  }
  // Whether its storage exists (some reply is owed).
  bool allocated() const { return owed_ != nullptr; }

 private:
  std::unique_ptr<std::vector<OwedReply>> owed_;
};

}  // namespace sg::core
