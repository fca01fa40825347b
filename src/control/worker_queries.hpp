#pragma once
// What the control plane asks of the daemon's workers, without knowing them: the daemon answers
// these over its workers (daemon/worker.hpp: list_flows, settle), tests over fakes. So control/
// stays below daemon/: the daemon includes the control plane, never the other way round.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/flow_summary.hpp"
#include "util/time.hpp"

namespace sg::control {

// One worker's answer to `smtpguardctl flows`.
struct WorkerFlows {
  uint16_t queue = 0;
  size_t total = 0;                      // flows in the table
  std::vector<core::FlowSummary> flows;  // at most the number asked for
};

struct FlowListing {
  std::vector<WorkerFlows> answers;
  std::vector<uint16_t> missing;  // queues of the workers that did not answer in time
};

struct WorkerQueries {
  // Every worker's flows, at most `max_total` over all of them (an even share each).
  std::function<FlowListing(size_t max_total, Duration timeout)> flows;
  // Waits until every worker has drained its queue, the kernel queues are empty and nothing is
  // held, or until `timeout`: whether they settled.
  std::function<bool(Duration timeout)> settle;
};

}  // namespace sg::control
