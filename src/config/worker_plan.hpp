#pragma once
// The workers the daemon starts: which queues (--queues, "auto" resolved against the CPUs the
// process may run on) and which CPU each is pinned to (--worker-cpus). Pure: the CPUs of the
// affinity mask are passed in (main reads them with sched_getaffinity), so that the resolution
// is tested without the kernel.
//
// One worker per queue. The rules queue a range A-B, which the kernel balances by a symmetric
// hash of the addresses: every packet of a connection, both directions, reaches the same queue
// and so the same worker (flow state is never shared between workers).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config_file.hpp"
#include "config/option_values.hpp"
#include "util/expected.hpp"

namespace sg::config {

struct Options;

struct WorkerPlan {
  QueueRange queues;
  // The CPU of each worker, in queue order; empty: none pinned.
  std::vector<uint16_t> cpus;
  // For the start log: "queues auto: 2 workers (2 CPUs in the affinity mask)", "queues 0-1: 2
  // workers (as configured)", plus "; worker-cpus 0-3,6: queue 0 on CPU 0, ..." when pinned.
  std::string description;

  size_t workers() const { return queues.count(); }
  // The CPU worker `index` is pinned to; nullopt: not pinned.
  std::optional<uint16_t> cpu_of(size_t index) const;
};

// `automatic` resolved: queues 0..K-1, K = the CPUs in the affinity mask (at least 1, at most
// kMaxQueues). Otherwise the range as given.
QueueRange resolve_queues(const QueueSpec& spec, size_t affinity_cpus);

// The plan for these options on a process whose affinity mask holds `affinity_cpus`. An error
// when --worker-cpus names a CPU outside the mask (the thread could never run there). Worker i
// gets the i-th CPU of the list, from the start again when there are more workers than CPUs.
Expected<WorkerPlan, ConfigError> plan_workers(const Options& o,
                                               const std::vector<uint16_t>& affinity_cpus);

}  // namespace sg::config
