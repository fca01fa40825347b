#pragma once
// The records waiting for one watcher: a bounded queue that workers push into and the watch
// thread takes from. A push never waits for the reader: when the queue is full the record is
// dropped and counted, and the count is handed to the reader with the records that were queued
// before the loss, so that it can say where records are missing. Thread-safe.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sg::eventlog {

class WatchQueue {
 public:
  explicit WatchQueue(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // False when the queue was full: the record is dropped and counted.
  bool push(std::string record) {
    std::lock_guard lock(mutex_);
    if (records_.size() >= capacity_) {
      ++dropped_;
      ++dropped_total_;
      return false;
    }
    records_.push_back(std::move(record));
    return true;
  }

  // Appends every queued record to `out`, oldest first, and returns how many records were
  // dropped since the last take (they were lost after the ones taken: the queue was full of
  // them).
  uint64_t take(std::vector<std::string>& out) {
    std::lock_guard lock(mutex_);
    for (std::string& r : records_) out.push_back(std::move(r));
    records_.clear();
    return std::exchange(dropped_, 0);
  }

  size_t size() const {
    std::lock_guard lock(mutex_);
    return records_.size();
  }
  uint64_t dropped_total() const {
    std::lock_guard lock(mutex_);
    return dropped_total_;
  }
  size_t capacity() const { return capacity_; }

 private:
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<std::string> records_;
  uint64_t dropped_ = 0;        // since the last take
  uint64_t dropped_total_ = 0;  // since the queue was made
};

}  // namespace sg::eventlog
