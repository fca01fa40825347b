// The bounded queue of one watcher (src/eventlog/watch_queue.hpp): drops when full, counts them,
// and hands the count over after the records queued before the loss; many writers.
#include "eventlog/watch_queue.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

using sg::eventlog::WatchQueue;

TEST_CASE("watch queue: in order, bounded, drops counted once per take") {
  WatchQueue q(3);
  CHECK(q.push("a"));
  CHECK(q.push("b"));
  CHECK(q.push("c"));
  CHECK_FALSE(q.push("d"));
  CHECK_FALSE(q.push("e"));
  CHECK(q.size() == 3);
  std::vector<std::string> out;
  CHECK(q.take(out) == 2);
  CHECK(out == std::vector<std::string>{"a", "b", "c"});
  CHECK(q.size() == 0);
  // Nothing dropped since: the next take says 0.
  out.clear();
  CHECK(q.push("f"));
  CHECK(q.take(out) == 0);
  CHECK(out == std::vector<std::string>{"f"});
  CHECK(q.dropped_total() == 2);
}

TEST_CASE("watch queue: a reader that never takes bounds the memory, not the writers") {
  WatchQueue q(16);
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&q] {
      for (int i = 0; i < 1000; ++i) q.push(std::string(100, 'x'));
    });
  }
  for (auto& w : writers) w.join();
  CHECK(q.size() == 16);
  CHECK(q.dropped_total() == 4000 - 16);
  std::vector<std::string> out;
  CHECK(q.take(out) == 4000 - 16);
  CHECK(out.size() == 16);
}

TEST_CASE("watch queue: concurrent take loses nothing it does not count") {
  WatchQueue q(64);
  std::atomic<bool> done{false};
  size_t taken = 0;
  uint64_t dropped = 0;
  std::thread reader([&] {
    std::vector<std::string> out;
    while (!done.load()) {
      dropped += q.take(out);
    }
    dropped += q.take(out);
    taken = out.size();
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) {
    writers.emplace_back([&q] {
      for (int i = 0; i < 5000; ++i) q.push("r");
    });
  }
  for (auto& w : writers) w.join();
  done.store(true);
  reader.join();
  CHECK(taken + dropped == 15000);
  CHECK(q.dropped_total() == dropped);
}
