#include "config/worker_plan.hpp"

#include <algorithm>

#include "config/options.hpp"

namespace sg::config {
namespace {

std::string range_text(const QueueRange& q) {
  return q.count() == 1 ? std::to_string(q.first)
                        : std::to_string(q.first) + "-" + std::to_string(q.last);
}

std::string workers_text(size_t n) {
  return std::to_string(n) + (n == 1 ? " worker" : " workers");
}

}  // namespace

std::optional<uint16_t> WorkerPlan::cpu_of(size_t index) const {
  if (cpus.empty()) return std::nullopt;
  return cpus[index % cpus.size()];
}

QueueRange resolve_queues(const QueueSpec& spec, size_t affinity_cpus) {
  if (!spec.automatic) return spec.range;
  // An unreadable mask (0 CPUs) still gets one worker: the daemon runs somewhere.
  const size_t k = std::clamp<size_t>(affinity_cpus, 1, kMaxQueues);
  return QueueRange{0, static_cast<uint16_t>(k - 1)};
}

Expected<WorkerPlan, ConfigError> plan_workers(const Options& o,
                                               const std::vector<uint16_t>& affinity_cpus) {
  for (uint16_t cpu : o.worker_cpus) {
    if (std::find(affinity_cpus.begin(), affinity_cpus.end(), cpu) != affinity_cpus.end()) continue;
    const std::string mask =
        affinity_cpus.empty() ? std::string("none readable") : cpu_list_text(affinity_cpus);
    BadValue what{
        "CPU " + std::to_string(cpu) + " is not in the process's affinity mask (" + mask + ")",
        "CPUs of the affinity mask"};
    if (o.worker_cpus_origin.file.empty())
      return unexpected(ConfigError{"", 0, "--worker-cpus", std::move(what)});
    return unexpected(ConfigError{o.worker_cpus_origin.file, o.worker_cpus_origin.line,
                                  "option 'worker-cpus'", std::move(what)});
  }
  WorkerPlan plan;
  plan.queues = resolve_queues(o.queues, affinity_cpus.size());
  plan.cpus = o.worker_cpus;
  const size_t n = plan.workers();
  if (o.queues.automatic) {
    plan.description =
        "queues auto: " + workers_text(n) + " (" + std::to_string(affinity_cpus.size()) +
        (affinity_cpus.size() == 1 ? " CPU" : " CPUs") + " in the affinity mask" +
        (affinity_cpus.size() > kMaxQueues ? ", at most " + std::to_string(kMaxQueues) + " workers"
                                           : std::string()) +
        "), queue " + range_text(plan.queues);
  } else {
    plan.description = "queues " + range_text(plan.queues) + ": " + workers_text(n);
  }
  if (!plan.cpus.empty()) {
    plan.description += "; worker-cpus " + cpu_list_text(plan.cpus) + ":";
    for (size_t i = 0; i < n; ++i) {
      plan.description += (i == 0 ? " queue " : ", queue ") +
                          std::to_string(plan.queues.first + i) + " on CPU " +
                          std::to_string(*plan.cpu_of(i));
    }
  }
  return plan;
}

}  // namespace sg::config
