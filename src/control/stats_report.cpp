#include "control/stats_report.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <span>
#include <string_view>

namespace sg::control {
namespace {

// Families render_prometheus adds to the counter tables, with their help texts.
struct Family {
  std::string_view name;
  std::string_view type;
  std::string_view help;
};
constexpr Family kInfo{"smtpguard_info", "gauge", "version and default profile of the daemon"};
constexpr Family kPolicyInfo{"smtpguard_policy_info", "gauge",
                             "per-destination policy rules and the profile each selects"};
constexpr Family kUptime{"smtpguard_uptime_seconds", "gauge", "seconds since the daemon started"};
constexpr Family kWorkers{"smtpguard_workers", "gauge", "worker threads (one per queue)"};
constexpr Family kFlowsTracked{"smtpguard_flows_tracked", "gauge", "flows each worker tracks now"};
constexpr Family kKernelQueueDropped{
    "smtpguard_kernel_queue_dropped_total", "counter",
    "packets the kernel dropped because the queue was full (nfnetlink_queue)"};
constexpr Family kKernelUserDropped{
    "smtpguard_kernel_user_dropped_total", "counter",
    "packets the kernel dropped because the socket buffer was full (nfnetlink_queue)"};
constexpr Family kKernelWaiting{"smtpguard_kernel_queue_waiting", "gauge",
                                "packets waiting in the queue for a verdict"};
constexpr Family kEvents{"smtpguard_events_total", "counter",
                         "policy decisions by event (ids: docs/operations.md, policy/events.hpp)"};
constexpr Family kLogLines{"smtpguard_log_lines_total", "counter",
                           "decision and suppression-summary lines logged"};
constexpr Family kLogSuppressed{"smtpguard_log_suppressed_total", "counter",
                                "decision lines suppressed by the log rate limit"};
constexpr Family kLogJournalFallbacks{
    "smtpguard_log_journal_fallbacks_total", "counter",
    "log lines journald did not take (its socket full), written to syslog instead"};
constexpr std::array kExtraFamilies{kInfo,
                                    kPolicyInfo,
                                    kUptime,
                                    kWorkers,
                                    kFlowsTracked,
                                    kKernelQueueDropped,
                                    kKernelUserDropped,
                                    kKernelWaiting,
                                    kEvents,
                                    kLogLines,
                                    kLogSuppressed,
                                    kLogJournalFallbacks};

template <class Enum>
uint64_t sum(const std::vector<WorkerStats>& workers, CounterValues<Enum> WorkerStats::*member,
             Enum c) {
  uint64_t total = 0;
  for (const WorkerStats& w : workers) total += (w.*member)[static_cast<size_t>(c)];
  return total;
}

std::string number(uint64_t v) {
  return std::to_string(v);
}

// --- JSON ---

// Objects keep the order members were added in (the counter tables' order).
using Json = nlohmann::ordered_json;

template <class Enum, size_t N>
Json json_counters(const std::array<CounterInfo, N>& info, const CounterValues<Enum>& values) {
  Json out = Json::object();
  for (size_t i = 0; i < N; ++i) out[std::string(info[i].name)] = values[i];
  return out;
}

template <class Enum, size_t N>
void json_totals(Json& out, const StatsSnapshot& s, const std::array<CounterInfo, N>& info) {
  for (size_t i = 0; i < N; ++i) out[std::string(info[i].name)] = s.total(static_cast<Enum>(i));
}

// --- Prometheus ---

// HELP text: backslash and newline escaped.
std::string prom_help(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Label value: backslash, double quote and newline escaped.
std::string prom_label(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void prom_header(std::string& out, std::string_view name, std::string_view type,
                 std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += prom_help(help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void prom_header(std::string& out, const Family& f) {
  prom_header(out, f.name, f.type, f.help);
}

void prom_sample(std::string& out, std::string_view name, std::string_view labels, uint64_t value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += number(value);
  out += '\n';
}

std::string queue_label(const WorkerStats& w) {
  return "queue=\"" + std::to_string(w.queue) + "\"";
}

template <class Enum, size_t N>
void prom_counters(std::string& out, const StatsSnapshot& s, const std::array<CounterInfo, N>& info,
                   CounterValues<Enum> WorkerStats::*member) {
  for (size_t i = 0; i < N; ++i) {
    const std::string name = "smtpguard_" + std::string(info[i].name) + "_total";
    prom_header(out, name, "counter", info[i].help);
    for (const WorkerStats& w : s.workers) prom_sample(out, name, queue_label(w), (w.*member)[i]);
  }
}

std::string duration_text(uint64_t seconds) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%llud %02llu:%02llu:%02llu",
                static_cast<unsigned long long>(seconds / 86400),
                static_cast<unsigned long long>(seconds / 3600 % 24),
                static_cast<unsigned long long>(seconds / 60 % 60),
                static_cast<unsigned long long>(seconds % 60));
  return buf;
}

}  // namespace

WorkerStats capture_worker(uint16_t queue, const core::Counters& pipeline,
                           const nfq::QueueCounters& nfq, const nfq::InjectCounters& inject,
                           const nfq::ConntrackCounters& conntrack,
                           std::optional<nfq::KernelQueueStats> kernel) {
  WorkerStats w;
  w.queue = queue;
  w.pipeline = read_counters(pipeline);
  w.nfq = read_counters(nfq);
  w.inject = read_counters(inject);
  w.conntrack = read_counters(conntrack);
  w.kernel = kernel;
  return w;
}

std::vector<PolicyName> policy_names(const policy::PolicySet& policies) {
  std::vector<PolicyName> names;
  for (const policy::PolicyRule& r : policies.rules())
    names.push_back({r.name, r.profile ? r.profile->name : std::string()});
  return names;
}

uint64_t StatsSnapshot::total(core::Counter c) const {
  return sum(workers, &WorkerStats::pipeline, c);
}
uint64_t StatsSnapshot::total(nfq::QueueCounter c) const {
  return sum(workers, &WorkerStats::nfq, c);
}
uint64_t StatsSnapshot::total(nfq::InjectCounter c) const {
  return sum(workers, &WorkerStats::inject, c);
}
uint64_t StatsSnapshot::total(nfq::ConntrackCounter c) const {
  return sum(workers, &WorkerStats::conntrack, c);
}
namespace {
// A kernel queue figure summed over the workers that could read theirs.
template <class Field>
uint64_t sum_kernel(const std::vector<WorkerStats>& workers, Field field) {
  uint64_t n = 0;
  for (const WorkerStats& w : workers) n += w.kernel ? (*w.kernel).*field : 0;
  return n;
}
}  // namespace

uint64_t StatsSnapshot::kernel_queue_dropped() const {
  return sum_kernel(workers, &nfq::KernelQueueStats::queue_dropped);
}
uint64_t StatsSnapshot::kernel_user_dropped() const {
  return sum_kernel(workers, &nfq::KernelQueueStats::user_dropped);
}
uint64_t StatsSnapshot::kernel_queue_waiting() const {
  return sum_kernel(workers, &nfq::KernelQueueStats::queue_total);
}
uint64_t StatsSnapshot::decisions() const {
  uint64_t n = 0;
  for (uint64_t e : events) n += e;
  return n;
}

uint64_t StatsSnapshot::flows_tracked() const {
  uint64_t n = 0;
  for (const WorkerStats& w : workers) n += w.flows_tracked;
  return n;
}

std::string render_text(const StatsSnapshot& s) {
  std::string out;
  auto line = [&](std::string_view name, uint64_t value) {
    out.append(name);
    out += " = " + number(value) + "\n";
  };
  for (size_t i = 0; i < core::kCounterInfo.size(); ++i)
    line(core::kCounterInfo[i].name, s.total(static_cast<core::Counter>(i)));
  for (size_t i = 0; i < nfq::kQueueCounterInfo.size(); ++i)
    line(nfq::kQueueCounterInfo[i].name, s.total(static_cast<nfq::QueueCounter>(i)));
  for (size_t i = 0; i < nfq::kInjectCounterInfo.size(); ++i)
    line(nfq::kInjectCounterInfo[i].name, s.total(static_cast<nfq::InjectCounter>(i)));
  for (size_t i = 0; i < nfq::kConntrackCounterInfo.size(); ++i)
    line(nfq::kConntrackCounterInfo[i].name, s.total(static_cast<nfq::ConntrackCounter>(i)));
  line("kernel_queue_dropped", s.kernel_queue_dropped());
  line("kernel_user_dropped", s.kernel_user_dropped());
  line("kernel_queue_waiting", s.kernel_queue_waiting());
  for (size_t i = 0; i < policy::kEventCount; ++i)
    line("event_" + std::string(policy::kEventInfo[i].name), s.events[i]);
  line("log_lines", s.log_lines);
  line("log_suppressed", s.log_suppressed);
  line("log_journal_fallbacks", s.log_journal_fallbacks);
  for (size_t i = 0; i < nft::kRulesWatchCounterInfo.size(); ++i)
    line(nft::kRulesWatchCounterInfo[i].name, s.rules[i]);
  line("watchers", s.watchers);
  for (size_t i = 0; i < eventlog::kWatchCounterInfo.size(); ++i)
    line(eventlog::kWatchCounterInfo[i].name, s.watch[i]);
  return out;
}

// {
//   "version": "0.1.0", "pid": 1234, "uptime_seconds": 12, "profile": "modern",
//   "policies": [{"rule": "mx1", "profile": "asa-default"}],
//   "totals": {"packets": 10, ... every counter of the four tables, summed},
//   "kernel": {"queue_dropped": 0, "user_dropped": 0, "queue_waiting": 0},
//   "events": {"banner_masked": {"id": 1001, "asa": 0, "count": 0}, ...},
//   "log": {"lines": 4, "suppressed": 0, "journal_fallbacks": 0},
//   "rules": {"rules_changed_under": 0, "rules_restored": 0, ...},
//   "watch": {"watchers": 1, "watch_attached": 3, ..., "watch_dropped": 0},
//   "queues": [{"queue": 0, "cpu": 0 or null, "flows_tracked": 3, "counters": {...},
//               "kernel": {...} or null}, ...]
// }
std::string render_json(const StatsSnapshot& s) {
  Json j = Json::object();
  j["version"] = s.version;
  j["pid"] = s.pid;
  j["uptime_seconds"] = s.uptime_seconds;
  j["profile"] = s.profile;
  j["policies"] = Json::array();
  for (const PolicyName& p : s.policies)
    j["policies"].push_back({{"rule", p.rule}, {"profile", p.profile}});
  Json& totals = j["totals"] = Json::object();
  json_totals<core::Counter>(totals, s, core::kCounterInfo);
  json_totals<nfq::QueueCounter>(totals, s, nfq::kQueueCounterInfo);
  json_totals<nfq::InjectCounter>(totals, s, nfq::kInjectCounterInfo);
  json_totals<nfq::ConntrackCounter>(totals, s, nfq::kConntrackCounterInfo);
  j["kernel"] = {{"queue_dropped", s.kernel_queue_dropped()},
                 {"user_dropped", s.kernel_user_dropped()},
                 {"queue_waiting", s.kernel_queue_waiting()}};
  Json& events = j["events"] = Json::object();
  for (size_t i = 0; i < policy::kEventCount; ++i) {
    const policy::EventInfo& e = policy::kEventInfo[i];
    events[std::string(e.name)] = {{"id", e.id}, {"asa", e.asa_id}, {"count", s.events[i]}};
  }
  j["log"] = {{"lines", s.log_lines},
              {"suppressed", s.log_suppressed},
              {"journal_fallbacks", s.log_journal_fallbacks}};
  j["rules"] = json_counters<nft::RulesWatchCounter>(nft::kRulesWatchCounterInfo, s.rules);
  Json watch = Json::object();
  watch["watchers"] = s.watchers;
  watch.update(json_counters<eventlog::WatchCounter>(eventlog::kWatchCounterInfo, s.watch));
  j["watch"] = std::move(watch);
  Json& queues = j["queues"] = Json::array();
  for (const WorkerStats& w : s.workers) {
    Json q = Json::object();
    q["queue"] = w.queue;
    q["cpu"] = w.cpu ? Json(*w.cpu) : Json(nullptr);
    q["flows_tracked"] = w.flows_tracked;
    Json counters = json_counters<core::Counter>(core::kCounterInfo, w.pipeline);
    counters.update(json_counters<nfq::QueueCounter>(nfq::kQueueCounterInfo, w.nfq));
    counters.update(json_counters<nfq::InjectCounter>(nfq::kInjectCounterInfo, w.inject));
    counters.update(json_counters<nfq::ConntrackCounter>(nfq::kConntrackCounterInfo, w.conntrack));
    q["counters"] = std::move(counters);
    if (w.kernel) {
      q["kernel"] = {{"queue_waiting", w.kernel->queue_total},
                     {"queue_dropped", w.kernel->queue_dropped},
                     {"user_dropped", w.kernel->user_dropped},
                     {"id_sequence", w.kernel->id_sequence},
                     {"peer_portid", w.kernel->peer_portid}};
    } else {
      q["kernel"] = nullptr;
    }
    queues.push_back(std::move(q));
  }
  // Names and versions come from the configuration: bytes that are not UTF-8 become U+FFFD
  // rather than an exception.
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string render_prometheus(const StatsSnapshot& s) {
  std::string out;
  prom_header(out, kInfo);
  prom_sample(out, kInfo.name,
              "version=\"" + prom_label(s.version) + "\",profile=\"" + prom_label(s.profile) + "\"",
              1);
  if (!s.policies.empty()) {
    prom_header(out, kPolicyInfo);
    for (const PolicyName& p : s.policies) {
      prom_sample(out, kPolicyInfo.name,
                  "rule=\"" + prom_label(p.rule) + "\",profile=\"" + prom_label(p.profile) + "\"",
                  1);
    }
  }
  prom_header(out, kUptime);
  prom_sample(out, kUptime.name, "", s.uptime_seconds);
  prom_header(out, kWorkers);
  prom_sample(out, kWorkers.name, "", s.workers.size());

  prom_header(out, kFlowsTracked);
  for (const WorkerStats& w : s.workers)
    prom_sample(out, kFlowsTracked.name, queue_label(w), w.flows_tracked);

  prom_counters<core::Counter>(out, s, core::kCounterInfo, &WorkerStats::pipeline);
  prom_counters<nfq::QueueCounter>(out, s, nfq::kQueueCounterInfo, &WorkerStats::nfq);
  prom_counters<nfq::InjectCounter>(out, s, nfq::kInjectCounterInfo, &WorkerStats::inject);
  prom_counters<nfq::ConntrackCounter>(out, s, nfq::kConntrackCounterInfo, &WorkerStats::conntrack);

  // Queues whose kernel figures could not be read have no sample (rather than a false 0).
  prom_header(out, kKernelQueueDropped);
  for (const WorkerStats& w : s.workers)
    if (w.kernel)
      prom_sample(out, kKernelQueueDropped.name, queue_label(w), w.kernel->queue_dropped);
  prom_header(out, kKernelUserDropped);
  for (const WorkerStats& w : s.workers)
    if (w.kernel) prom_sample(out, kKernelUserDropped.name, queue_label(w), w.kernel->user_dropped);
  prom_header(out, kKernelWaiting);
  for (const WorkerStats& w : s.workers)
    if (w.kernel) prom_sample(out, kKernelWaiting.name, queue_label(w), w.kernel->queue_total);

  prom_header(out, kEvents);
  for (size_t i = 0; i < policy::kEventCount; ++i) {
    const policy::EventInfo& e = policy::kEventInfo[i];
    prom_sample(out, kEvents.name,
                "event=\"" + std::string(e.name) + "\",id=\"" + std::to_string(e.id) + "\"",
                s.events[i]);
  }
  prom_header(out, kLogLines);
  prom_sample(out, kLogLines.name, "", s.log_lines);
  prom_header(out, kLogSuppressed);
  prom_sample(out, kLogSuppressed.name, "", s.log_suppressed);
  prom_header(out, kLogJournalFallbacks);
  prom_sample(out, kLogJournalFallbacks.name, "", s.log_journal_fallbacks);
  // The daemon's own counters: one sample each, no queue label.
  for (size_t i = 0; i < nft::kRulesWatchCounterInfo.size(); ++i) {
    const std::string name =
        "smtpguard_" + std::string(nft::kRulesWatchCounterInfo[i].name) + "_total";
    prom_header(out, name, "counter", nft::kRulesWatchCounterInfo[i].help);
    prom_sample(out, name, "", s.rules[i]);
  }
  for (size_t i = 0; i < eventlog::kWatchCounterInfo.size(); ++i) {
    const std::string name =
        "smtpguard_" + std::string(eventlog::kWatchCounterInfo[i].name) + "_total";
    prom_header(out, name, "counter", eventlog::kWatchCounterInfo[i].help);
    prom_sample(out, name, "", s.watch[i]);
  }
  return out;
}

std::string render_status(const StatsSnapshot& s) {
  using core::Counter;
  std::string out = "smtpguardd " + s.version + ", pid " + std::to_string(s.pid) + ", up " +
                    duration_text(s.uptime_seconds) + "\n";
  out += "profile: " + s.profile + "\n";
  if (!s.policies.empty()) {
    out += "policies:";
    for (const PolicyName& p : s.policies) out += " " + p.rule + "=" + p.profile;
    out += "\n";
  }
  out += "queues:";
  for (const WorkerStats& w : s.workers) out += " " + std::to_string(w.queue);
  out += " (" + std::to_string(s.workers.size()) +
         (s.workers.size() == 1 ? " worker)\n" : " workers)\n");
  const uint64_t tracked = s.flows_tracked();
  for (const WorkerStats& w : s.workers) {
    // Rounded to the nearest percent; the shares of a few flows need not add up to 100.
    const uint64_t share = tracked == 0 ? 0 : (w.flows_tracked * 100 + tracked / 2) / tracked;
    out += "  queue " + std::to_string(w.queue) + ": " +
           (w.cpu ? "cpu " + std::to_string(*w.cpu) : std::string("not pinned")) + ", " +
           number(w.flows_tracked) + (w.flows_tracked == 1 ? " flow" : " flows") + " now (" +
           number(share) + "%)\n";
  }
  out += "packets: " + number(s.total(Counter::packets)) + " (" + number(s.total(Counter::bytes)) +
         " bytes); accepted " + number(s.total(Counter::verdict_accept)) + ", modified " +
         number(s.total(Counter::verdict_modified)) + ", dropped " +
         number(s.total(Counter::verdict_drop)) + ", held " + number(s.total(Counter::holds)) +
         "\n";
  // "now" is what the workers' lines above share out; the rest count since the start.
  out += "flows: " + number(tracked) + " now; since start " +
         number(s.total(Counter::flows_created)) + " tracked, " +
         number(s.total(Counter::flows_mapped)) + " mapped, " +
         number(s.total(Counter::flows_reset)) + " reset, " +
         number(s.total(Counter::flows_evicted)) + " evicted\n";
  out += "decisions: " + number(s.decisions()) + " (log: " + number(s.log_lines) + " lines, " +
         number(s.log_suppressed) + " suppressed" +
         (s.log_journal_fallbacks == 0
              ? std::string()
              : ", " + number(s.log_journal_fallbacks) + " to syslog as the journal was full") +
         ")\n";
  out += "watch: " + number(s.watchers) + (s.watchers == 1 ? " watcher" : " watchers") + " now; " +
         number(s.watch[static_cast<size_t>(eventlog::WatchCounter::watch_records)]) +
         " records sent, " +
         number(s.watch[static_cast<size_t>(eventlog::WatchCounter::watch_dropped)]) + " dropped\n";
  out += "kernel: " + number(s.kernel_queue_dropped()) + " dropped (queue full), " +
         number(s.kernel_user_dropped()) + " dropped (socket buffer), " +
         number(s.kernel_queue_waiting()) + " waiting\n";
  return out;
}

std::vector<std::string> prometheus_extra_families() {
  std::vector<std::string> names;
  for (const Family& f : kExtraFamilies) names.emplace_back(f.name);
  return names;
}

}  // namespace sg::control
