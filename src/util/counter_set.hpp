#pragma once
// Counters declared once: an X-macro list `LIST(X)` with entries `X(name, "help")` becomes an
// enum, a table of names and help texts, and a set of relaxed atomic counters, e.g.
//
//   #define SG_QUEUE_COUNTERS(X) X(queue_packets, "packets read") ...
//   SG_DECLARE_COUNTERS(QueueCounter, kQueueCounterInfo, SG_QUEUE_COUNTERS)
//   using QueueCounters = CounterSet<QueueCounter>;
//
// Each set is written by one thread (its worker) and read by others (stats): no locks.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sg {

struct CounterInfo {
  std::string_view name;
  std::string_view help;
};

template <typename Enum>
class CounterSet {
 public:
  static constexpr size_t kSize = static_cast<size_t>(Enum::kCount);
  void add(Enum c, uint64_t n = 1) {
    auto& v = values_[static_cast<size_t>(c)];
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get(Enum c) const {
    return values_[static_cast<size_t>(c)].load(std::memory_order_relaxed);
  }

 private:
  std::array<std::atomic<uint64_t>, kSize> values_{};
};

}  // namespace sg

#define SG_COUNTER_ENUM_ITEM(name, help) name,
#define SG_COUNTER_INFO_ITEM(name, help) {#name, help},
#define SG_DECLARE_COUNTERS(Enum, info, LIST)                                             \
  enum class Enum : uint16_t { LIST(SG_COUNTER_ENUM_ITEM) kCount };                       \
  inline constexpr std::array<::sg::CounterInfo, static_cast<size_t>(Enum::kCount)> info{ \
      {LIST(SG_COUNTER_INFO_ITEM)}};
