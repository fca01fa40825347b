#include "control/stats_report.hpp"

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
                                    kLogSuppressed};

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

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

// Writes indented JSON: one member or element per line, two spaces per level.
class JsonWriter {
 public:
  void open(std::string_view key, char bracket) {
    prefix(key);
    out_ += bracket;
    first_.push_back(true);
  }
  void close(char bracket) {
    const bool empty = first_.back();
    first_.pop_back();
    if (!empty) newline();
    out_ += bracket;
  }
  void value(std::string_view key, uint64_t v) {
    prefix(key);
    out_ += number(v);
  }
  void value(std::string_view key, std::string_view v) {
    prefix(key);
    out_ += json_string(v);
  }
  void null(std::string_view key) {
    prefix(key);
    out_ += "null";
  }
  std::string finish() { return std::move(out_) + "\n"; }

 private:
  // A key is written inside objects; array elements pass an empty key.
  void prefix(std::string_view key) {
    if (!first_.empty()) {
      if (!first_.back()) out_ += ',';
      first_.back() = false;
      newline();
    }
    if (!key.empty()) out_ += json_string(key) + ": ";
  }
  void newline() {
    out_ += '\n';
    out_.append(2 * first_.size(), ' ');
  }
  std::string out_;
  std::vector<bool> first_;
};

template <class Enum, size_t N>
void json_counters(JsonWriter& j, const std::array<CounterInfo, N>& info,
                   const CounterValues<Enum>& values) {
  for (size_t i = 0; i < N; ++i) j.value(info[i].name, values[i]);
}

template <class Enum, size_t N>
void json_totals(JsonWriter& j, const StatsSnapshot& s, const std::array<CounterInfo, N>& info) {
  for (size_t i = 0; i < N; ++i) j.value(info[i].name, s.total(static_cast<Enum>(i)));
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
//   "log": {"lines": 4, "suppressed": 0},
//   "rules": {"rules_changed_under": 0, "rules_restored": 0, ...},
//   "watch": {"watchers": 1, "watch_attached": 3, ..., "watch_dropped": 0},
//   "queues": [{"queue": 0, "cpu": 0 or null, "flows_tracked": 3, "counters": {...},
//               "kernel": {...} or null}, ...]
// }
std::string render_json(const StatsSnapshot& s) {
  JsonWriter j;
  j.open("", '{');
  j.value("version", s.version);
  j.value("pid", static_cast<uint64_t>(s.pid));
  j.value("uptime_seconds", s.uptime_seconds);
  j.value("profile", s.profile);
  j.open("policies", '[');
  for (const PolicyName& p : s.policies) {
    j.open("", '{');
    j.value("rule", p.rule);
    j.value("profile", p.profile);
    j.close('}');
  }
  j.close(']');
  j.open("totals", '{');
  json_totals<core::Counter>(j, s, core::kCounterInfo);
  json_totals<nfq::QueueCounter>(j, s, nfq::kQueueCounterInfo);
  json_totals<nfq::InjectCounter>(j, s, nfq::kInjectCounterInfo);
  json_totals<nfq::ConntrackCounter>(j, s, nfq::kConntrackCounterInfo);
  j.close('}');
  j.open("kernel", '{');
  j.value("queue_dropped", s.kernel_queue_dropped());
  j.value("user_dropped", s.kernel_user_dropped());
  j.value("queue_waiting", s.kernel_queue_waiting());
  j.close('}');
  j.open("events", '{');
  for (size_t i = 0; i < policy::kEventCount; ++i) {
    const policy::EventInfo& e = policy::kEventInfo[i];
    j.open(e.name, '{');
    j.value("id", e.id);
    j.value("asa", e.asa_id);
    j.value("count", s.events[i]);
    j.close('}');
  }
  j.close('}');
  j.open("log", '{');
  j.value("lines", s.log_lines);
  j.value("suppressed", s.log_suppressed);
  j.close('}');
  j.open("rules", '{');
  for (size_t i = 0; i < nft::kRulesWatchCounterInfo.size(); ++i)
    j.value(nft::kRulesWatchCounterInfo[i].name, s.rules[i]);
  j.close('}');
  j.open("watch", '{');
  j.value("watchers", s.watchers);
  for (size_t i = 0; i < eventlog::kWatchCounterInfo.size(); ++i)
    j.value(eventlog::kWatchCounterInfo[i].name, s.watch[i]);
  j.close('}');
  j.open("queues", '[');
  for (const WorkerStats& w : s.workers) {
    j.open("", '{');
    j.value("queue", w.queue);
    if (w.cpu) {
      j.value("cpu", uint64_t{*w.cpu});
    } else {
      j.null("cpu");
    }
    j.value("flows_tracked", w.flows_tracked);
    j.open("counters", '{');
    json_counters<core::Counter>(j, core::kCounterInfo, w.pipeline);
    json_counters<nfq::QueueCounter>(j, nfq::kQueueCounterInfo, w.nfq);
    json_counters<nfq::InjectCounter>(j, nfq::kInjectCounterInfo, w.inject);
    json_counters<nfq::ConntrackCounter>(j, nfq::kConntrackCounterInfo, w.conntrack);
    j.close('}');
    if (w.kernel) {
      j.open("kernel", '{');
      j.value("queue_waiting", w.kernel->queue_total);
      j.value("queue_dropped", w.kernel->queue_dropped);
      j.value("user_dropped", w.kernel->user_dropped);
      j.value("id_sequence", w.kernel->id_sequence);
      j.value("peer_portid", w.kernel->peer_portid);
      j.close('}');
    } else {
      j.null("kernel");
    }
    j.close('}');
  }
  j.close(']');
  j.close('}');
  return j.finish();
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
         number(s.log_suppressed) + " suppressed)\n";
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
