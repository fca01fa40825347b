#pragma once
// Statistics as a value: a snapshot of every worker's counters (read once, summed on read), the
// kernel's view of each queue, and the decisions per event; and its renderings for people
// (text, status), scripts (JSON) and Prometheus (text exposition format 0.0.4).
//
// Names and help texts come from the counter tables (core/counters.hpp, nfq/queue.hpp,
// nfq/injector.hpp, nfq/conntrack.hpp) and the event table (policy/events.hpp); nothing here
// restates them. The renderers are pure: the tests pin their output.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/counters.hpp"
#include "eventlog/watch_counters.hpp"
#include "nfq/conntrack.hpp"
#include "nfq/injector.hpp"
#include "nfq/queue.hpp"
#include "nft/rules_watch.hpp"
#include "policy/policy_set.hpp"
#include "util/counter_set.hpp"

namespace sg::control {

template <class Enum>
using CounterValues = std::array<uint64_t, CounterSet<Enum>::kSize>;

template <class Enum>
CounterValues<Enum> read_counters(const CounterSet<Enum>& set) {
  CounterValues<Enum> v{};
  for (size_t i = 0; i < v.size(); ++i) v[i] = set.get(static_cast<Enum>(i));
  return v;
}

// One worker's counters, read at one moment.
struct WorkerStats {
  uint16_t queue = 0;
  CounterValues<core::Counter> pipeline{};
  CounterValues<nfq::QueueCounter> nfq{};
  CounterValues<nfq::InjectCounter> inject{};
  CounterValues<nfq::ConntrackCounter> conntrack{};
  std::optional<nfq::KernelQueueStats> kernel;  // nullopt: not bound / not readable
  uint64_t flows_tracked = 0;                   // flows in its table now (a gauge)
  std::optional<uint16_t> cpu;                  // the CPU it is pinned to; nullopt: not pinned
};

WorkerStats capture_worker(uint16_t queue, const core::Counters& pipeline,
                           const nfq::QueueCounters& nfq, const nfq::InjectCounters& inject,
                           const nfq::ConntrackCounters& conntrack,
                           std::optional<nfq::KernelQueueStats> kernel);

// Every worker's counters, for any range of pointers to objects with queue_num(),
// pipeline_counters(), queue_counters(), inject_counters(), conntrack_counters(),
// kernel_stats(), flows_tracked() and pinned_cpu() (daemon::Worker), appended in the range's
// order.
template <class Workers>
void capture_workers(const Workers& workers, std::vector<WorkerStats>& out) {
  for (const auto& w : workers) {
    out.push_back(capture_worker(w->queue_num(), w->pipeline_counters(), w->queue_counters(),
                                 w->inject_counters(), w->conntrack_counters(), w->kernel_stats()));
    out.back().flows_tracked = w->flows_tracked();
    out.back().cpu = w->pinned_cpu();
  }
}

// A per-destination policy rule and the profile it selects.
struct PolicyName {
  std::string rule;
  std::string profile;
};

// The rules of a policy set, in order ("default" is not listed: it is StatsSnapshot::profile).
std::vector<PolicyName> policy_names(const policy::PolicySet& policies);

struct StatsSnapshot {
  std::string version;
  int64_t pid = 0;
  uint64_t uptime_seconds = 0;
  std::string profile;               // the default profile
  std::vector<PolicyName> policies;  // per-destination rules, in order (often none)
  std::vector<WorkerStats> workers;  // in queue order
  std::array<uint64_t, policy::kEventCount> events{};
  uint64_t log_lines = 0;              // decision and summary lines written
  uint64_t log_suppressed = 0;         // decision lines the rate limit suppressed
  uint64_t log_journal_fallbacks = 0;  // journal entries journald refused: sent to syslog
  // The daemon's rules watcher (nft/rules_watch.hpp): zero without --install-rules.
  CounterValues<nft::RulesWatchCounter> rules{};
  // The decision watchers (eventlog/watch_hub.hpp): attached now, and their counters.
  uint64_t watchers = 0;
  CounterValues<eventlog::WatchCounter> watch{};

  // Sums over the workers.
  uint64_t total(core::Counter c) const;
  uint64_t total(nfq::QueueCounter c) const;
  uint64_t total(nfq::InjectCounter c) const;
  uint64_t total(nfq::ConntrackCounter c) const;
  uint64_t kernel_queue_dropped() const;
  uint64_t kernel_user_dropped() const;
  uint64_t kernel_queue_waiting() const;
  uint64_t decisions() const;      // all events
  uint64_t flows_tracked() const;  // now, all workers
};

// Fills events, log_lines and log_suppressed from the log.

// `name = value`, one a line, summed over the workers: the pipeline, queue, inject and conntrack
// counters in their tables' order, then kernel_queue_dropped, kernel_user_dropped,
// kernel_queue_waiting, event_<name> for every event, log_lines, log_suppressed, the rules
// watcher's counters (rules_restored, ...). (The lines
// smtpguardd has always printed on SIGUSR1 come first, unchanged.)
std::string render_text(const StatsSnapshot& s);
// One JSON object (see stats_report.cpp for the shape; docs/operations.md, "Logging and
// statistics").
std::string render_json(const StatsSnapshot& s);
// Prometheus text exposition format 0.0.4: counters `smtpguard_<name>_total{queue="N"}` per
// worker, kernel queue figures per queue, `smtpguard_events_total{event=,id=}` and a few gauges.
std::string render_prometheus(const StatsSnapshot& s);
// A few lines for `smtpguardctl status`, with one line per worker: its queue, its CPU if
// pinned, the flows it tracks now and their share of all tracked flows.
std::string render_status(const StatsSnapshot& s);

// The Prometheus metric names render_prometheus uses besides the counter tables' (the tests
// check that no two families share a name).
std::vector<std::string> prometheus_extra_families();

}  // namespace sg::control
