#pragma once
// The per-worker flow table: a fixed number of flows keyed by FlowKey, kept in least-recently-
// touched order so that a full table evicts the flow idle longest, and idle flows expire in
// bounded steps. Single-threaded: each worker owns its table.
//
// Layout. Each flow lives in one node of an unordered_map; its Value is the base class of the
// node's Entry, which adds the intrusive LRU links, the deadline and a pointer to the key held by
// the same node (about 32 bytes, plus the map's node and bucket overhead). Nodes never move, so
// a Value* stays valid until its flow is erased, evicted or expired, and touch(Value&) reaches
// the links without a second lookup: the hot path is one find() and one touch().
#include <cstddef>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "flow/flow_key.hpp"
#include "util/time.hpp"

namespace sg::flow {

// Value: a default-constructible, non-final class (it becomes a base of the table's entry).
template <class Value>
class FlowTable {
  static_assert(std::is_class_v<Value> && !std::is_final_v<Value>,
                "FlowTable stores Value as a base class of its entry");
  static_assert(std::is_default_constructible_v<Value>);

  struct Entry : Value {
    const FlowKey* table_key_ = nullptr;  // the key stored in the same map node
    Entry* lru_prev_ = nullptr;           // towards the least recently touched end
    Entry* lru_next_ = nullptr;           // towards the most recently touched end
    Timestamp deadline_{};
  };

 public:
  // Flows passed over per eviction looking for an evictable one (see insert).
  static constexpr size_t kEvictScan = 16;
  // A capacity of 0 is treated as 1: an inserted flow must be able to exist.
  explicit FlowTable(size_t capacity) : capacity_(capacity > 0 ? capacity : 1) {
    // One spare slot: insert() adds before it evicts. Buckets are never rehashed afterwards.
    map_.reserve(capacity_ + 1);
  }
  FlowTable(const FlowTable&) = delete;  // the links point into this table's own nodes
  FlowTable& operator=(const FlowTable&) = delete;

  size_t size() const { return map_.size(); }
  size_t capacity() const { return capacity_; }

  // Looks a flow up without changing its place in the LRU order.
  Value* find(const FlowKey& key) {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }
  const Value* find(const FlowKey& key) const {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }

  // Adds a default-constructed Value as the most recently touched flow, with deadline
  // now + idle_timeout. If that makes the table exceed its capacity, the least recently touched
  // flow is evicted: on_evict(const FlowKey&, Value&) runs, then the flow is destroyed.
  // (The new Value is constructed before the eviction, so the map briefly holds capacity + 1.)
  // The key should not be present; if it is, nothing is evicted and the existing Value is
  // touched and returned unchanged. on_evict must not call back into the table.
  template <class OnEvict>
  Value* insert(const FlowKey& key, Timestamp now, Duration idle_timeout, OnEvict&& on_evict) {
    return insert(key, now, idle_timeout, std::forward<OnEvict>(on_evict),
                  [](const Value&) { return true; });
  }

  // As insert, but a full table evicts a flow for which evictable(const Value&) is true, if it
  // finds one among the kEvictScan least recently touched: the others it passes over are moved
  // to the most recent end (a second chance), so that a flood of flows that are cheap to lose
  // (half-open connections) evicts its own kind rather than connections under inspection. Only
  // when kEvictScan flows in a row are not evictable is the least recently touched one evicted
  // all the same: the capacity always holds.
  template <class OnEvict, class Evictable>
  Value* insert(const FlowKey& key, Timestamp now, Duration idle_timeout, OnEvict&& on_evict,
                Evictable&& evictable) {
    auto [it, inserted] = map_.try_emplace(key);
    Entry& e = it->second;
    if (!inserted) {
      touch_entry(e, now, idle_timeout);
      return &e;
    }
    e.table_key_ = &it->first;
    if (map_.size() > capacity_) {
      // The new entry is not linked yet, so it cannot be the victim.
      Entry* victim = head_;
      for (size_t i = 0; i < kEvictScan && !evictable(static_cast<const Value&>(*victim)); ++i) {
        if (victim == tail_) break;  // a single flow: nothing to pass over it to
        unlink(*victim);
        link_back(*victim);
        victim = head_;
      }
      on_evict(*victim->table_key_, static_cast<Value&>(*victim));
      remove(victim);
    }
    e.deadline_ = now + idle_timeout;
    link_back(e);
    return &e;
  }

  // Marks a flow most recently touched and sets its deadline to now + idle_timeout.
  // `value` must be a Value of this table (from find or insert) that is still present.
  void touch(Value& value, Timestamp now, Duration idle_timeout) {
    touch_entry(static_cast<Entry&>(value), now, idle_timeout);
  }
  // The same by key (one lookup); false when the flow is not present.
  bool touch(const FlowKey& key, Timestamp now, Duration idle_timeout) {
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    touch_entry(it->second, now, idle_timeout);
    return true;
  }

  // Removes a flow without calling anything; false when it was not present.
  bool erase(const FlowKey& key) {
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    unlink(it->second);
    map_.erase(it);
    return true;
  }

  // Removes flows whose deadline <= now, calling on_expire(const FlowKey&, Value&) before each is
  // destroyed. Examines at most max_scan flows per call. The rule: a sweep hand walks the LRU
  // list from the least to the most recently touched end, continuing where the previous call
  // stopped; a call ends after max_scan flows or at the most recent end (the next call restarts
  // at the least recent end). An unexpired flow never stops the sweep, so a flow with a long
  // timeout cannot shield expired flows with shorter ones behind it: every flow idle since the
  // sweep started is examined within ceil(size / max_scan) + 1 calls. Returns the number removed.
  // on_expire must not call back into the table.
  template <class OnExpire>
  size_t expire(Timestamp now, size_t max_scan, OnExpire&& on_expire) {
    size_t removed = 0;
    for (size_t scanned = 0; scanned < max_scan; ++scanned) {
      Entry* e = hand_ != nullptr ? hand_ : head_;
      if (e == nullptr) break;
      hand_ = e->lru_next_;
      if (e->deadline_ <= now) {
        on_expire(*e->table_key_, static_cast<Value&>(*e));
        remove(e);
        ++removed;
      }
      if (hand_ == nullptr) break;  // reached the most recent end: this sweep is complete
    }
    return removed;
  }

  // Whether a sweep stopped at max_scan before the most recent end: the next expire() goes on
  // from there (the caller calls again soon rather than let expired flows pile up).
  bool sweeping() const { return hand_ != nullptr; }

  // Calls fn(const FlowKey&, const Value&) for every flow, least recently touched first.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (const Entry* e = head_; e != nullptr; e = e->lru_next_) {
      fn(*e->table_key_, static_cast<const Value&>(*e));
    }
  }

  // The key and deadline of a Value of this table (diagnostics, logging, tests).
  const FlowKey& key_of(const Value& value) const {
    return *static_cast<const Entry&>(value).table_key_;
  }
  Timestamp deadline_of(const Value& value) const {
    return static_cast<const Entry&>(value).deadline_;
  }

 private:
  void touch_entry(Entry& e, Timestamp now, Duration idle_timeout) {
    e.deadline_ = now + idle_timeout;
    if (tail_ == &e) return;
    unlink(e);
    link_back(e);
  }

  void link_back(Entry& e) {
    e.lru_prev_ = tail_;
    e.lru_next_ = nullptr;
    if (tail_ != nullptr) {
      tail_->lru_next_ = &e;
    } else {
      head_ = &e;
    }
    tail_ = &e;
  }

  void unlink(Entry& e) {
    if (hand_ == &e) hand_ = e.lru_next_;  // the sweep continues with the next flow
    if (e.lru_prev_ != nullptr) {
      e.lru_prev_->lru_next_ = e.lru_next_;
    } else {
      head_ = e.lru_next_;
    }
    if (e.lru_next_ != nullptr) {
      e.lru_next_->lru_prev_ = e.lru_prev_;
    } else {
      tail_ = e.lru_prev_;
    }
    e.lru_prev_ = e.lru_next_ = nullptr;
  }

  void remove(Entry* e) {
    unlink(*e);
    const FlowKey key = *e->table_key_;  // a copy: the node holding the key is being freed
    map_.erase(key);
  }

  size_t capacity_;
  std::unordered_map<FlowKey, Entry, FlowKeyHash> map_;
  Entry* head_ = nullptr;  // least recently touched
  Entry* tail_ = nullptr;  // most recently touched
  Entry* hand_ = nullptr;  // where the next expire() continues; nullptr: at head_
};

}  // namespace sg::flow
