// smtpguardd: binds one NFQUEUE per worker, optionally installs the nftables rules, and runs
// until SIGINT/SIGTERM. The order of start and stop is what keeps every packet verdicted:
//   start: bind queues -> start workers -> install rules -> "ready"
//   stop:  disarm rules (accept in front, nothing new queued) -> workers drain what is queued
//          -> unbind -> remove the tables -> final counters
// Deleting the tables before the drain would lose held packets: unregistering a hook makes the
// kernel drop every packet still waiting in a queue (see RuleSet::disarm).
//
// SIGHUP reloads: the configuration file is read again with the same command line on top, and
// the new policy set goes to every worker, which installs it between packets for the connections
// that start afterwards (a connection keeps the profile it started with, so no reload breaks
// one). What the file cannot change without a restart (queues, marks, ...) keeps its running
// value; a file that does not validate changes nothing.
#include <signal.h>
#include <time.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/counters.hpp"
#include "daemon/options.hpp"
#include "daemon/worker.hpp"
#include "nfq/conntrack.hpp"
#include "nfq/queue.hpp"
#include "nft/rules.hpp"
#include "policy/events.hpp"
#include "policy/profile.hpp"

namespace sg::daemon {
namespace {

using Workers = std::vector<std::unique_ptr<Worker>>;

void log(const std::string& line) {
  std::fprintf(stderr, "smtpguardd: %s\n", line.c_str());
}

std::string queue_text(const QueueRange& q) {
  return q.count() == 1 ? std::to_string(q.first)
                        : std::to_string(q.first) + "-" + std::to_string(q.last);
}

// Counters summed over all workers, "name = value" one per line: stable for scripts to grep.
void print_counters(const Workers& workers, const char* why) {
  std::string out = std::string("smtpguardd: counters (") + why + ")\n";
  auto line = [&](std::string_view name, uint64_t value) {
    out.append(name);
    out += " = " + std::to_string(value) + "\n";
  };
  for (size_t i = 0; i < core::kCounterInfo.size(); ++i) {
    uint64_t sum = 0;
    for (const auto& w : workers) sum += w->pipeline_counters().get(static_cast<core::Counter>(i));
    line(core::kCounterInfo[i].name, sum);
  }
  for (size_t i = 0; i < nfq::kQueueCounterInfo.size(); ++i) {
    uint64_t sum = 0;
    for (const auto& w : workers) sum += w->queue_counters().get(static_cast<nfq::QueueCounter>(i));
    line(nfq::kQueueCounterInfo[i].name, sum);
  }
  for (size_t i = 0; i < nfq::kInjectCounterInfo.size(); ++i) {
    uint64_t sum = 0;
    for (const auto& w : workers)
      sum += w->inject_counters().get(static_cast<nfq::InjectCounter>(i));
    line(nfq::kInjectCounterInfo[i].name, sum);
  }
  for (size_t i = 0; i < nfq::kConntrackCounterInfo.size(); ++i) {
    uint64_t sum = 0;
    for (const auto& w : workers)
      sum += w->conntrack_counters().get(static_cast<nfq::ConntrackCounter>(i));
    line(nfq::kConntrackCounterInfo[i].name, sum);
  }
  uint64_t queue_dropped = 0, user_dropped = 0;
  for (const auto& w : workers) {
    if (auto s = w->kernel_stats()) {
      queue_dropped += s->queue_dropped;
      user_dropped += s->user_dropped;
    }
  }
  line("kernel_queue_dropped", queue_dropped);
  line("kernel_user_dropped", user_dropped);
  // One write, so that lines of other threads do not interleave with the block.
  std::fputs(out.c_str(), stderr);
}

std::string endpoint(const net::IpAddress& address, uint16_t port) {
  const std::string a = address.to_string();
  return (address.is_v4() ? a : "[" + a + "]") + ":" + std::to_string(port);
}

// --verbose: one line per policy decision (the event log proper is wired separately).
void print_decision(const core::Decision& d) {
  const policy::EventInfo& e = policy::info(d.event);
  const std::string line =
      "smtpguardd: decision " + std::to_string(e.id) + " " + std::string(e.name) + " " +
      std::string(d.action) + " " + endpoint(d.client, d.client_port) + " -> " +
      endpoint(d.server, d.server_port) +
      (d.dir == smtp::Dir::kClientToServer ? " (client)" : " (server)") +
      (d.subject.empty() ? "" : " " + d.subject) + (d.detail.empty() ? "" : " " + d.detail) + "\n";
  std::fputs(line.c_str(), stderr);
}

std::string policies_text(const policy::PolicySet& set) {
  const size_t n = set.rules().size() + 1;
  return std::to_string(n) + (n == 1 ? " policy" : " policies");
}

Workers start_workers(const Options& o, std::shared_ptr<const policy::PolicySet> policies,
                      std::string& error) {
  Workers workers;
  for (uint32_t q = o.queues.first; q <= o.queues.last; ++q) {
    WorkerConfig config;
    config.queue.queue_num = static_cast<uint16_t>(q);
    config.queue.max_len = o.queue_maxlen;
    config.queue.fail_open = o.fail_open;
    config.pipeline.policies = policies;  // shared and immutable: no copy per worker
    config.pipeline.max_flows = o.max_flows;
    config.pipeline.hold_timeout = milliseconds(o.hold_timeout_ms);
    config.pipeline.done_mark = o.done_mark;
    config.inject_mark = o.inject_mark;
    config.conntrack_tuning = o.conntrack_tuning;
    config.verbose = o.verbose;
    if (o.verbose) config.on_decision = print_decision;
    auto worker = Worker::create(std::move(config));
    if (!worker) {
      error = worker.error();
      return {};  // the queues bound so far are released by the destructors
    }
    if (o.verbose) {
      log("queue " + std::to_string(q) + " bound, socket buffer " +
          std::to_string((*worker)->receive_buffer() / 1024) + " KiB");
      if (!(*worker)->injects_ipv6())
        log("queue " + std::to_string(q) + ": no IPv6 in this kernel, the injector is IPv4 only");
    }
    workers.push_back(std::move(*worker));
  }
  // Start only once every queue is bound, so a failure leaves no thread behind.
  for (auto& w : workers) w->start();
  return workers;
}

void stop_workers(Workers& workers) {
  // All at once, then wait: the drains overlap instead of queueing behind each other.
  for (auto& w : workers) w->request_stop();
  for (auto& w : workers) w->join();
}

// SIGHUP: see the top of this file.
void reload(const Arguments& arguments, Options& running, const Workers& workers) {
  auto loaded = load_configuration(arguments);
  if (!loaded) {
    log("reload failed: " + loaded.error().text() + "; keeping the running configuration");
    return;
  }
  const std::vector<std::string> restart = restart_only_changes(running, loaded->options);
  if (!restart.empty()) {
    std::string names;
    for (const std::string& n : restart) names += (names.empty() ? "" : ", ") + n;
    log("reload: " + names + " changed; " + (restart.size() == 1 ? "it needs" : "they need") +
        " a restart, keeping the running value" + (restart.size() == 1 ? "" : "s"));
  }
  for (const auto& w : workers) w->set_policies(loaded->policies);
  apply_reloadable(running, loaded->options);
  // Each worker installs the set within one poll interval (200 ms); waiting for that makes the
  // log line below mean "connections from now on get it".
  for (int i = 0; i < 100; ++i) {
    bool current = true;
    for (const auto& w : workers) current = current && w->policies_current();
    if (current) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string overrides = describe_overrides(running.overrides);
  log("reload: " + policies_text(*loaded->policies) + ", default profile " + running.profile +
      (overrides.empty() ? "" : ", " + overrides));
}

int run(const Arguments& arguments, Configuration configuration) {
  Options& o = configuration.options;
  // Block the signals before any thread exists: workers inherit the mask, and only this thread
  // takes them, synchronously, with sigtimedwait.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGUSR1, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::string error;
  Workers workers = start_workers(o, configuration.policies, error);
  if (workers.empty()) {
    log(error);
    return 1;
  }

  std::optional<nft::RuleSet> rules;
  if (o.install_rules) {
    nft::RuleOptions ro;
    ro.queue_first = o.queues.first;
    ro.queue_last = o.queues.last;
    ro.port = o.port;
    ro.hooks = o.hooks;
    // Without a daemon (crashed, since a clean stop removes the rules) fail-open passes SMTP
    // uninspected; fail-closed drops it.
    ro.bypass = o.fail_open;
    ro.done_mark = o.done_mark;
    ro.inject_mark = o.inject_mark;
    rules.emplace(ro);
    auto report = rules->install();
    if (!report) {
      log(report.error());
      stop_workers(workers);
      return 1;
    }
    for (const std::string& note : report->notes) log(note);
    std::string tables;
    for (const std::string& t : report->tables) tables += (tables.empty() ? "" : ", ") + t;
    log("rules installed: table " + tables + ", queue via " +
        nft::queue_method_name(report->method));
  }

  // The overrides are spelled as options, so that the line says exactly what runs.
  const std::string overrides = describe_overrides(o.overrides);
  log("configuration " + (o.config_file.empty() ? std::string("none") : o.config_file) + ": " +
      policies_text(*configuration.policies));
  log("ready (queues " + queue_text(o.queues) + ", profile " + o.profile +
      (overrides.empty() ? "" : ", " + overrides) + ")");
  if (o.verbose) {
    std::string summary = describe_configuration(o);
    for (size_t pos = 0, end = 0; pos < summary.size(); pos = end + 1) {
      end = summary.find('\n', pos);
      if (end == std::string::npos) end = summary.size();
      log(summary.substr(pos, end - pos));
    }
  }

  int exit_code = 0;
  const long tick_s = 1;  // how often worker health and the stats interval are checked
  timespec last_stats{};
  clock_gettime(CLOCK_MONOTONIC, &last_stats);
  for (;;) {
    timespec tick{tick_s, 0};
    siginfo_t info{};
    int sig = sigtimedwait(&signals, &info, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      log(std::string("stopping on ") + (sig == SIGINT ? "SIGINT" : "SIGTERM"));
      break;
    }
    if (sig == SIGUSR1) print_counters(workers, "SIGUSR1");
    if (sig == SIGHUP) {
      try {
        reload(arguments, o, workers);
      } catch (const std::exception& e) {
        log(std::string("reload failed: ") + e.what() + "; keeping the running configuration");
      }
    }
    if (sig < 0 && errno != EAGAIN && errno != EINTR) {
      log(std::string("sigtimedwait: ") + std::strerror(errno));
      exit_code = 1;
      break;
    }
    bool failed = false;
    for (const auto& w : workers) failed = failed || w->failed();
    if (failed) {
      log("a worker lost its queue socket, stopping");
      exit_code = 1;
      break;
    }
    if (o.stats_interval_s > 0) {
      timespec now{};
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (now.tv_sec - last_stats.tv_sec >= static_cast<time_t>(o.stats_interval_s)) {
        print_counters(workers, "interval");
        last_stats = now;
      }
    }
  }

  // Rules are emptied first: from then on nothing new is queued and the workers can drain to
  // empty. The tables themselves go only once nothing is queued (see the top of this file).
  if (rules) {
    if (auto disarmed = rules->disarm(); !disarmed) {
      log(disarmed.error());
      exit_code = 1;
    }
  }
  stop_workers(workers);
  if (rules) {
    if (auto removed = rules->remove(); !removed) {
      log(removed.error());
      exit_code = 1;
    } else {
      log("rules removed");
    }
  }
  print_counters(workers, "final");
  log("stopped");
  return exit_code;
}

}  // namespace
}  // namespace sg::daemon

int main(int argc, char** argv) {
  using namespace sg::daemon;
  CommandLine cl = parse_command_line(argc, argv);
  if (!cl.arguments) {
    std::fputs(cl.text.c_str(), cl.exit_code == 0 ? stdout : stderr);
    return cl.exit_code;
  }
  try {
    auto configuration = load_configuration(*cl.arguments);
    if (!configuration) {
      std::fputs(error_message(configuration.error()).c_str(), stderr);
      return exit_code(configuration.error(), cl.arguments->check_config);
    }
    if (cl.arguments->check_config) {
      std::fputs(describe_configuration(configuration->options).c_str(), stdout);
      return 0;
    }
    return run(*cl.arguments, std::move(*configuration));
  } catch (const std::exception& e) {
    // Only startup and reloads can throw (allocation, rule building); the packet path never
    // does.
    std::fprintf(stderr, "smtpguardd: fatal: %s\n", e.what());
    return 1;
  }
}
