#include "flow/flow_table.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <list>
#include <string>
#include <vector>

namespace sg::flow {
namespace {

struct Flow {
  int id = 0;
  std::string note = "new";
};

using Table = FlowTable<Flow>;

const Timestamp kT0{seconds(1000)};

// Flow n: 198.18.0.1:n <-> 198.18.0.2:25, already canonical.
FlowKey key(int n) {
  FlowKey k;
  k.lo_addr.bytes = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 1};
  k.hi_addr.bytes = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 2};
  k.lo_port = static_cast<uint16_t>(n);
  k.hi_port = 25;
  return k;
}

int id_of(const FlowKey& k) {
  return k.lo_port;
}

auto no_evict() {
  return [](const FlowKey&, Flow&) { FAIL("unexpected eviction"); };
}

Flow* add(Table& t, int n, Timestamp now = kT0, Duration timeout = seconds(60)) {
  Flow* f = t.insert(key(n), now, timeout, no_evict());
  REQUIRE(f != nullptr);
  f->id = n;
  return f;
}

std::vector<int> lru_order(const Table& t) {
  std::vector<int> ids;
  t.for_each([&](const FlowKey& k, const Flow& f) {
    CHECK(id_of(k) == f.id);
    ids.push_back(f.id);
  });
  return ids;
}

TEST_CASE("insert, find, erase", "[flow][table]") {
  Table t(8);
  CHECK(t.capacity() == 8);
  CHECK(t.size() == 0);
  CHECK(t.find(key(1)) == nullptr);

  Flow* f = t.insert(key(1), kT0, seconds(30), no_evict());
  REQUIRE(f != nullptr);
  CHECK(f->note == "new");  // default-constructed
  f->id = 1;
  CHECK(t.size() == 1);
  CHECK(t.find(key(1)) == f);
  CHECK(t.key_of(*f) == key(1));
  CHECK(t.deadline_of(*f) == kT0 + seconds(30));

  add(t, 2);
  const Table& ct = t;
  CHECK(ct.find(key(2))->id == 2);

  CHECK(t.erase(key(1)));
  CHECK_FALSE(t.erase(key(1)));
  CHECK(t.find(key(1)) == nullptr);
  CHECK(t.size() == 1);
  CHECK(lru_order(t) == std::vector<int>{2});
}

TEST_CASE("inserting a present key keeps the flow", "[flow][table]") {
  Table t(2);
  add(t, 1)->note = "kept";
  add(t, 2);
  Flow* f = t.insert(key(1), kT0 + seconds(5), seconds(60), no_evict());
  CHECK(f->note == "kept");
  CHECK(t.size() == 2);
  CHECK(lru_order(t) == std::vector<int>{2, 1});
  CHECK(t.deadline_of(*f) == kT0 + seconds(65));
}

TEST_CASE("a full table evicts the least recently touched flow", "[flow][table]") {
  Table t(3);
  add(t, 1);
  add(t, 2);
  add(t, 3);
  t.touch(*t.find(key(1)), kT0 + seconds(1), seconds(60));
  CHECK(lru_order(t) == std::vector<int>{2, 3, 1});

  std::vector<int> evicted;
  auto record = [&](const FlowKey& k, Flow& f) {
    CHECK(id_of(k) == f.id);
    evicted.push_back(f.id);
  };
  t.insert(key(4), kT0, seconds(60), record)->id = 4;
  CHECK(evicted == std::vector<int>{2});
  CHECK(t.find(key(2)) == nullptr);
  CHECK(t.size() == 3);

  CHECK(t.touch(key(3), kT0 + seconds(2), seconds(60)));  // by key
  CHECK_FALSE(t.touch(key(2), kT0, seconds(60)));
  t.insert(key(5), kT0, seconds(60), record)->id = 5;
  t.insert(key(6), kT0, seconds(60), record)->id = 6;
  CHECK(evicted == std::vector<int>{2, 1, 4});
  CHECK(lru_order(t) == std::vector<int>{3, 5, 6});
}

TEST_CASE("find does not reorder, touch does", "[flow][table]") {
  Table t(4);
  add(t, 1);
  add(t, 2);
  add(t, 3);
  t.find(key(1));
  CHECK(lru_order(t) == std::vector<int>{1, 2, 3});
  Flow* f = t.find(key(2));
  t.touch(*f, kT0 + seconds(10), seconds(5));
  CHECK(lru_order(t) == std::vector<int>{1, 3, 2});
  CHECK(t.deadline_of(*f) == kT0 + seconds(15));
  t.touch(*f, kT0 + seconds(11), seconds(5));  // already the most recent
  CHECK(lru_order(t) == std::vector<int>{1, 3, 2});
  CHECK(t.deadline_of(*f) == kT0 + seconds(16));
}

TEST_CASE("the capacity is never exceeded", "[flow][table]") {
  const size_t capacity = GENERATE(1u, 2u, 16u);
  Table t(capacity);
  size_t evictions = 0;
  for (int n = 1; n <= 1000; ++n) {
    t.insert(key(n), kT0, seconds(60), [&](const FlowKey&, Flow&) { ++evictions; })->id = n;
    CHECK(t.size() <= capacity);
  }
  CHECK(t.size() == capacity);
  CHECK(evictions == 1000 - capacity);
  CHECK(t.find(key(1000)) != nullptr);  // the newest flow is never its own victim
}

TEST_CASE("a capacity of 0 still holds one flow", "[flow][table]") {
  Table t(0);
  CHECK(t.capacity() == 1);
  add(t, 1);
  CHECK(t.size() == 1);
}

TEST_CASE("expiry removes every expired flow, whatever its timeout", "[flow][table]") {
  Table t(16);
  add(t, 1, kT0, seconds(300));  // long-lived, at the least recent end
  add(t, 2, kT0, seconds(10));
  add(t, 3, kT0, seconds(10));
  add(t, 4, kT0, seconds(20));
  std::vector<int> expired;
  auto record = [&](const FlowKey& k, Flow& f) {
    CHECK(id_of(k) == f.id);
    expired.push_back(f.id);
  };
  CHECK(t.expire(kT0 + seconds(9), 100, record) == 0);
  CHECK(t.expire(kT0 + seconds(10), 100, record) == 2);  // deadline <= now expires
  CHECK(expired == std::vector<int>{2, 3});
  CHECK(t.expire(kT0 + seconds(299), 100, record) == 1);
  CHECK(expired == std::vector<int>{2, 3, 4});
  CHECK(lru_order(t) == std::vector<int>{1});
}

TEST_CASE("expiry does bounded work and still reaches flows behind long timeouts",
          "[flow][table]") {
  Table t(200);
  for (int n = 1; n <= 50; ++n) add(t, n, kT0, seconds(3600));  // not expiring
  for (int n = 51; n <= 100; ++n) add(t, n, kT0, seconds(10));  // expired at kT0 + 10s
  const Timestamp now = kT0 + seconds(60);
  size_t calls = 0, removed = 0;
  CHECK_FALSE(t.sweeping());
  while (t.size() > 50) {
    size_t visited = 0;
    removed += t.expire(now, 10, [&](const FlowKey&, Flow& f) {
      CHECK(f.id > 50);
      ++visited;
    });
    CHECK(visited <= 10);
    REQUIRE(++calls <= 11);  // ceil(100 / 10) + 1
    // Cut short before the most recent end: the caller is told to come back soon.
    if (t.size() > 50) CHECK(t.sweeping());
  }
  CHECK(removed == 50);
  CHECK(calls == 10);
  // A fresh sweep finds nothing more and does not loop past the end within a call.
  CHECK(t.expire(now, 1000, [](const FlowKey&, Flow&) { FAIL("nothing left to expire"); }) == 0);
  CHECK_FALSE(t.sweeping());
}

TEST_CASE("the sweep survives erasing and touching the flow it stopped at", "[flow][table]") {
  Table t(16);
  for (int n = 1; n <= 6; ++n) add(t, n, kT0, seconds(10));
  const Timestamp early = kT0 + seconds(5), late = kT0 + seconds(100);
  auto nothing = [](const FlowKey&, Flow&) { FAIL("nothing has expired yet"); };
  CHECK(t.expire(early, 2, nothing) == 0);  // the hand now rests on flow 3
  CHECK(t.erase(key(3)));
  CHECK(t.expire(early, 1, nothing) == 0);  // examines flow 4
  t.touch(key(5), early, seconds(1000));    // the hand's flow moves to the recent end
  std::vector<int> expired;
  auto record = [&](const FlowKey&, Flow& f) { expired.push_back(f.id); };
  t.expire(late, 100, record);  // continues at 6, stops at the recent end (5 is not expired)
  t.expire(late, 100, record);  // a new sweep from the least recent end
  CHECK(expired == std::vector<int>{6, 1, 2, 4});
  CHECK(lru_order(t) == std::vector<int>{5});
}

TEST_CASE("eviction of the flow the sweep stopped at is safe", "[flow][table]") {
  Table t(3);
  add(t, 1, kT0, seconds(10));
  add(t, 2, kT0, seconds(10));
  add(t, 3, kT0, seconds(10));
  t.expire(kT0, 1, [](const FlowKey&, Flow&) {});  // hand on flow 2
  int evicted = 0;
  auto count = [&](const FlowKey&, Flow&) { ++evicted; };
  t.insert(key(4), kT0, seconds(10), count);  // evicts 1
  t.insert(key(5), kT0, seconds(10), count);  // evicts 2, the hand's flow
  CHECK(evicted == 2);
  std::vector<int> expired;
  t.expire(kT0 + seconds(10), 10, [&](const FlowKey& k, Flow&) { expired.push_back(id_of(k)); });
  CHECK(expired == std::vector<int>{3, 4, 5});
  CHECK(t.size() == 0);
}

TEST_CASE("random operations keep the table in step with a plain LRU list", "[flow][table]") {
  const size_t capacity = 8;
  Table t(capacity);
  std::list<int> model;  // least recent first
  uint32_t x = 1;
  auto next = [&] {
    x = x * 1664525 + 1013904223;
    return x >> 16;
  };
  for (int step = 0; step < 20000; ++step) {
    const int n = static_cast<int>(next() % 20);
    const auto in_model = std::find(model.begin(), model.end(), n);
    switch (next() % 4) {
      case 0:
        if (in_model == model.end()) {
          int victim = -1;
          t.insert(key(n), kT0, seconds(1), [&](const FlowKey& k, Flow&) {
             victim = id_of(k);
           })->id = n;
          if (model.size() == capacity) {
            CHECK(victim == model.front());
            model.pop_front();
          } else {
            CHECK(victim == -1);
          }
          model.push_back(n);
        }
        break;
      case 1:
        CHECK(t.touch(key(n), kT0, seconds(1)) == (in_model != model.end()));
        if (in_model != model.end()) model.splice(model.end(), model, in_model);
        break;
      case 2:
        CHECK(t.erase(key(n)) == (in_model != model.end()));
        if (in_model != model.end()) model.erase(in_model);
        break;
      default:
        CHECK((t.find(key(n)) != nullptr) == (in_model != model.end()));
        break;
    }
    REQUIRE(t.size() == model.size());
  }
  CHECK(lru_order(t) == std::vector<int>(model.begin(), model.end()));
}

}  // namespace
}  // namespace sg::flow

TEST_CASE("a full table evicts evictable flows first and passes the others over") {
  struct V {
    bool inspected = false;
  };
  sg::flow::FlowTable<V> t(4);
  const sg::Timestamp now{};
  auto key = [](uint16_t port) {
    sg::flow::FlowKey k{};
    k.lo_port = port;
    k.hi_port = 25;
    return k;
  };
  std::vector<uint16_t> evicted;
  auto on_evict = [&evicted](const sg::flow::FlowKey& k, V&) { evicted.push_back(k.lo_port); };
  auto evictable = [](const V& v) { return !v.inspected; };
  // Two sessions under inspection, the oldest in the table, then a flood of half-open flows.
  for (uint16_t p : {1, 2})
    t.insert(key(p), now, sg::seconds(300), on_evict, evictable)->inspected = true;
  for (uint16_t p = 100; p < 120; ++p) t.insert(key(p), now, sg::seconds(30), on_evict, evictable);
  CHECK(t.size() == 4);
  CHECK(t.find(key(1)) != nullptr);
  CHECK(t.find(key(2)) != nullptr);
  CHECK(evicted.size() == 18);
  CHECK(std::find(evicted.begin(), evicted.end(), 1) == evicted.end());
  // A table of nothing but inspected flows still keeps its capacity: the oldest goes.
  sg::flow::FlowTable<V> full(2);
  for (uint16_t p : {1, 2, 3})
    full.insert(key(p), now, sg::seconds(300), on_evict, evictable)->inspected = true;
  CHECK(full.size() == 2);
  CHECK(full.find(key(3)) != nullptr);
}
