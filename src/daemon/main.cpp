// smtpguardd: binds one NFQUEUE per worker, optionally installs the nftables rules, and runs
// until SIGINT/SIGTERM. The order of start and stop is what keeps every packet verdicted:
//   start: event log (and the decision watchers' hub) -> bind queues -> start workers -> install
//          rules -> watch the ruleset -> control socket, metrics -> "ready"
//   stop:  control socket, decision watchers and metrics stop -> stop watching the ruleset -> disarm rules (accept
//          in front, nothing new queued) -> workers drain what is queued -> unbind -> remove the
//          tables -> final counters
// Deleting the tables before the drain would lose held packets: unregistering a hook makes the
// kernel drop every packet still waiting in a queue (see RuleSet::disarm).
//
// SIGHUP reloads: the configuration file is read again with the same command line on top, and
// the new policy set goes to every worker, which installs it between packets for the connections
// that start afterwards (a connection keeps the profile it started with, so no reload breaks
// one). What the file cannot change without a restart (queues, marks, ...) keeps its running
// value; a file that does not validate changes nothing. `smtpguardctl reload` queues a request
// and raises SIGHUP: the reload runs here, on main's thread, and answers it.
//
// With --install-rules the daemon puts its table back when another process deletes or changes it
// (`nft flush ruleset` in a reload of nftables.service): nft/rules_watch.hpp.
//
// Threads: main (signals, ticks, reloads), one per worker (packets), the control socket's and
// the metrics endpoint's (control_commands.hpp), the rules watcher's. Statistics are read from any
// of them: counters are atomics, the profile and policy set are guarded by RunningPolicy.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "config/options.hpp"
#include "config/worker_plan.hpp"
#include "control/control_commands.hpp"
#include "control/control_server.hpp"
#include "control/metrics_http.hpp"
#include "control/sd_notify.hpp"
#include "control/stats_report.hpp"
#include "core/counters.hpp"
#include "daemon/cpu_affinity.hpp"
#include "daemon/worker.hpp"
#include "eventlog/event_log.hpp"
#include "eventlog/watch_hub.hpp"
#include "nft/rules.hpp"
#include "nft/rules_watch.hpp"
#include "policy/profile.hpp"

namespace sg::daemon {
// main wires the configuration (config/) and the control plane (control/) to the workers.
using namespace sg::config;
using namespace sg::control;
using namespace sg::eventlog;
namespace {

// How often the Prometheus file is rewritten.
constexpr Duration kPrometheusFileInterval = seconds(10);
// A worker that has not gone round its loop for this long counts as stuck: no watchdog ping.
constexpr Duration kWorkerSilence = seconds(5);

void log(const std::string& line) {
  std::fprintf(stderr, "smtpguardd: %s\n", line.c_str());
}

// Each line of a multi-line text as a log line.
void log_lines(const std::string& text) {
  for (size_t pos = 0, end = 0; pos < text.size(); pos = end + 1) {
    end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    log(text.substr(pos, end - pos));
  }
}

std::string queue_text(const QueueRange& q) {
  return q.count() == 1 ? std::to_string(q.first)
                        : std::to_string(q.first) + "-" + std::to_string(q.last);
}

std::string policies_text(const policy::PolicySet& set) {
  const size_t n = set.rules().size() + 1;
  return std::to_string(n) + (n == 1 ? " policy" : " policies");
}

std::string version() {
  std::string v = version_text();  // "smtpguardd 0.1.0\n"
  if (const size_t space = v.find(' '); space != std::string::npos) v.erase(0, space + 1);
  while (!v.empty() && v.back() == '\n') v.pop_back();
  return v;
}

// The default profile and the policy set: a reload changes them on main's thread while the
// control and metrics threads read them for the statistics.
class RunningPolicy {
 public:
  RunningPolicy(std::string profile, std::shared_ptr<const policy::PolicySet> policies)
      : profile_(std::move(profile)), policies_(std::move(policies)) {}
  void set(std::string profile, std::shared_ptr<const policy::PolicySet> policies) {
    std::lock_guard lock(mutex_);
    profile_ = std::move(profile);
    policies_ = std::move(policies);
  }
  std::pair<std::string, std::shared_ptr<const policy::PolicySet>> get() const {
    std::lock_guard lock(mutex_);
    return {profile_, policies_};
  }

 private:
  mutable std::mutex mutex_;
  std::string profile_;
  std::shared_ptr<const policy::PolicySet> policies_;
};

Workers start_workers(const Options& o, const WorkerPlan& plan,
                      std::shared_ptr<const policy::PolicySet> policies,
                      const std::shared_ptr<EventLog>& events, const std::atomic<bool>* watched,
                      std::string& error) {
  Workers workers;
  for (size_t i = 0; i < plan.workers(); ++i) {
    const uint32_t q = plan.queues.first + i;
    WorkerConfig config;
    config.queue.queue_num = static_cast<uint16_t>(q);
    config.cpu = plan.cpu_of(i);
    config.queue.max_len = o.queue_maxlen;
    config.queue.fail_open = o.fail_open;
    config.pipeline.policies = policies;  // shared and immutable: no copy per worker
    config.pipeline.max_flows = o.max_flows;
    config.pipeline.hold_timeout = milliseconds(o.hold_timeout_ms);
    config.pipeline.memory_budget = (size_t{o.memory_budget_mib} << 20) / plan.workers();
    config.pipeline.done_mark = o.done_mark;
    config.pipeline.exceptions = o.exceptions;
    config.pipeline.watched = watched;
    config.inject_mark = o.inject_mark;
    config.mapped_mark = o.mapped_mark;
    config.conntrack_tuning = o.conntrack_tuning;
    config.verbose = o.verbose;
    // The event log outlives the workers (they hold it too): every decision is counted there and
    // logged within the rate limit.
    config.on_decision = [ev = events](const core::Decision& d) { ev->log(d, Clock::now()); };
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

// The queue range is the plan's: with several queues the rule balances them by a symmetric hash
// of the addresses (nft/chain_rules.cpp), one queue is a plain `queue num N`.
nft::RuleOptions rule_options(const Options& o, const WorkerPlan& plan) {
  nft::RuleOptions ro;
  ro.queue_first = plan.queues.first;
  ro.queue_last = plan.queues.last;
  ro.port = o.port;
  ro.hooks = o.hooks;
  // Without a daemon (crashed, since a clean stop removes the rules) fail-open passes SMTP
  // uninspected; fail-closed drops it.
  ro.bypass = o.fail_open;
  ro.done_mark = o.done_mark;
  ro.inject_mark = o.inject_mark;
  ro.mapped_mark = o.mapped_mark;
  return ro;
}

// What a reload did: logged line by line, and the answer to `smtpguardctl reload`.
struct ReloadOutcome {
  bool ok = false;
  std::string text;  // lines without the "smtpguardd: " prefix, no trailing newline
};

// SIGHUP: see the top of this file.
ReloadOutcome reload(const Arguments& arguments, Options& running, const Workers& workers,
                     RunningPolicy& shared) {
  auto loaded = load_configuration(arguments);
  if (!loaded)
    return {false,
            "reload failed: " + loaded.error().text() + "; keeping the running configuration"};
  ReloadOutcome outcome{true, {}};
  const std::vector<std::string> restart = restart_only_changes(running, loaded->options);
  if (!restart.empty()) {
    std::string names;
    for (const std::string& n : restart) names += (names.empty() ? "" : ", ") + n;
    outcome.text +=
        "reload: " + names + " changed; " + (restart.size() == 1 ? "it needs" : "they need") +
        " a restart, keeping the running value" + (restart.size() == 1 ? "" : "s") + "\n";
  }
  for (const auto& w : workers) w->set_policies(loaded->policies);
  apply_reloadable(running, loaded->options);
  shared.set(running.profile, loaded->policies);
  // Each worker installs the set within one poll interval (200 ms); waiting for that makes the
  // log line below mean "connections from now on get it".
  for (int i = 0; i < 100; ++i) {
    bool current = true;
    for (const auto& w : workers) current = current && w->policies_current();
    if (current) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string overrides = describe_overrides(running.overrides);
  outcome.text += "reload: " + policies_text(*loaded->policies) + ", default profile " +
                  running.profile + (overrides.empty() ? "" : ", " + overrides);
  return outcome;
}

class Daemon {
 public:
  Daemon(const Arguments& arguments, Configuration configuration, WorkerPlan plan)
      : arguments_(arguments),
        o_(std::move(configuration.options)),
        plan_(std::move(plan)),
        initial_policies_(std::move(configuration.policies)),
        policy_(o_.profile, initial_policies_),
        rules_(rule_options(o_, plan_)),
        notifier_(SystemdNotifier::from_environment()) {}

  int run();

 private:
  // Each false return has been logged.
  bool start_workers_and_rules();
  bool start_servers();
  int loop();
  void on_reload();
  void tick(Timestamp now);
  int stop(int exit_code);

  StatsSnapshot snapshot() const;
  void print_counters(const char* why) const;
  void write_prometheus_file();
  bool workers_alive(Timestamp now) const;
  std::string status_line() const;
  void notify(const Expected<bool, std::string>& sent);

  const Arguments& arguments_;
  Options o_;              // the running options: a reload changes some (main's thread only)
  const WorkerPlan plan_;  // the queues and CPUs of the workers, fixed until a restart
  std::shared_ptr<const policy::PolicySet> initial_policies_;
  RunningPolicy policy_;
  const Timestamp started_ = Clock::now();
  std::unique_ptr<eventlog::WatchHub> watch_;  // with a control socket; outlives the log's use
  std::shared_ptr<EventLog> events_;
  Workers workers_;
  RuleControl rules_;
  std::unique_ptr<nft::RulesWatch> rules_watch_;  // with --install-rules only
  ReloadRequests reloads_;
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<MetricsHttpServer> metrics_;
  SystemdNotifier notifier_;
  bool notify_failed_ = false;  // logged once
  Timestamp last_stats_{};
  Timestamp last_prometheus_file_{};
  std::string prometheus_file_error_;  // the last one logged: repeats are not
};

StatsSnapshot Daemon::snapshot() const {
  StatsSnapshot s;
  s.version = version();
  s.pid = ::getpid();
  s.uptime_seconds = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count());
  auto [profile, policies] = policy_.get();
  s.profile = std::move(profile);
  if (policies) s.policies = policy_names(*policies);
  capture_workers(workers_, s.workers);
  capture_events(*events_, s);
  if (rules_watch_) s.rules = read_counters(rules_watch_->counters());
  if (watch_) {
    s.watchers = watch_->watchers();
    for (size_t i = 0; i < s.watch.size(); ++i)
      s.watch[i] = watch_->get(static_cast<eventlog::WatchCounter>(i));
  }
  return s;
}

// Every counter summed over the workers, "name = value" one per line: stable for scripts to grep
// (render_text keeps the lines smtpguardd has always printed first).
void Daemon::print_counters(const char* why) const {
  const std::string out =
      std::string("smtpguardd: counters (") + why + ")\n" + render_text(snapshot());
  // One write, so that lines of other threads do not interleave with the block.
  std::fputs(out.c_str(), stderr);
}

void Daemon::write_prometheus_file() {
  if (o_.prometheus_file.empty()) return;
  auto written = write_file_atomically(o_.prometheus_file, render_prometheus(snapshot()));
  if (written) {
    if (!prometheus_file_error_.empty()) log("prometheus file " + o_.prometheus_file + " written");
    prometheus_file_error_.clear();
  } else if (written.error() != prometheus_file_error_) {
    prometheus_file_error_ = written.error();
    log(written.error());
  }
}

bool Daemon::workers_alive(Timestamp now) const {
  return std::all_of(workers_.begin(), workers_.end(),
                     [now](const auto& w) { return w->alive(now, kWorkerSilence); });
}

std::string Daemon::status_line() const {
  const StatsSnapshot s = snapshot();
  return "inspecting queues " + queue_text(plan_.queues) + ", profile " + s.profile + ": " +
         std::to_string(s.total(core::Counter::packets)) + " packets, " +
         std::to_string(s.total(core::Counter::flows_created)) + " flows, " +
         std::to_string(s.decisions()) + " decisions";
}

void Daemon::notify(const Expected<bool, std::string>& sent) {
  if (sent || notify_failed_) return;
  notify_failed_ = true;  // once: the daemon inspects whatever systemd thinks
  log("sd_notify: " + sent.error());
}

bool Daemon::start_workers_and_rules() {
  // The log before the workers: they log into it, and it must outlive them.
  // Under systemd (stderr is the journal stream it set up) with syslog on, the lines go to the
  // journal with fields of their own, and not to stderr as well.
  const bool journal =
      o_.syslog && eventlog::journal_stream_is_stderr(std::getenv("JOURNAL_STREAM"));
  const EventLogOptions lo{o_.syslog, !o_.syslog || std::getenv("JOURNAL_STREAM") == nullptr,
                           o_.log_rate, 0};
  events_ = std::make_shared<EventLog>(lo);
  log(plan_.description);
  if (journal) {
    auto socket = eventlog::JournalSocket::open();
    if (socket) {
      events_->attach_journal(std::move(*socket));
      log("event log: journal entries with MESSAGE_ID and SMTPGUARD_* fields");
    } else {
      log("event log: " + socket.error() + "; syslog lines without journal fields");
    }
  }
  if (!o_.event_json.empty()) {
    auto file = JsonEventFile::open(o_.event_json);
    if (!file) {
      log(file.error());
      return false;
    }
    events_->attach_json(std::move(*file));
  }
  if (!o_.control_socket.empty()) {
    // `smtpguardctl watch`: started before the workers, which publish into it through the log.
    auto hub = eventlog::WatchHub::start();
    if (!hub) {
      log("watch: " + hub.error());
      return false;
    }
    watch_ = std::move(*hub);
    events_->attach_watch(watch_.get());
  }
  std::string error;
  workers_ = start_workers(o_, plan_, initial_policies_, events_,
                           watch_ ? &watch_->watched() : nullptr, error);
  if (workers_.empty()) {
    log(error);
    return false;
  }
  if (o_.verbose && o_.mapped_mark != 0 && !workers_.front()->reads_ct_mark()) {
    log("the kernel attaches no conntrack data to queued packets (no "
        "CONFIG_NETFILTER_NETLINK_GLUE_CT): the mapped bit is read from the packet mark, which "
        "the queue rule of mapped connections sets");
  }
  if (o_.fail_open) {
    // FAIL_OPEN is a property of a whole queue: when it is full, the kernel accepts the packets
    // of mapped connections as well, which reach their receiver at unmapped offsets.
    log("warning: --fail-open: when a queue overflows, packets of connections whose sequence "
        "numbers are mapped pass unmapped and those connections are corrupted (docs/limits.md, "
        "Known "
        "limits)");
  }
  for (size_t i = 0; i < policy::kExceptionCount; ++i) {
    const auto e = static_cast<policy::Exception>(i);
    if (o_.exceptions.of(e) == policy::ExceptionAction::kPass)
      log("warning: exception-policy-" + std::string(policy::info(e).key) +
          " = pass: connections in this state pass uninspected (" +
          std::string(policy::info(e).meaning) + ")");
  }
  if (o_.install_rules) {
    auto report = rules_.install();
    if (!report) {
      log(report.error());
      return false;
    }
    for (const std::string& note : report->notes) log(note);
    std::string tables;
    for (const std::string& t : report->tables) tables += (tables.empty() ? "" : ", ") + t;
    log("rules installed: table " + tables + ", queue via " +
        nft::queue_method_name(report->method));
    // After the install, so that it is not taken for someone else's change.
    nft::RulesWatchHooks hooks;
    hooks.restore = [this] { return rules_.restore(); };
    hooks.log = [](const std::string& line) { log(line); };
    auto watch = nft::RulesWatch::start(std::move(hooks));
    if (!watch) {
      log(watch.error());
      return false;
    }
    rules_watch_ = std::move(*watch);
  }
  return true;
}

bool Daemon::start_servers() {
  if (!o_.control_socket.empty()) {
    ControlContext c;
    c.snapshot = [this] { return snapshot(); };
    c.workers.flows = [this](size_t max_total, Duration timeout) {
      return list_flows(workers_, max_total, timeout);
    };
    c.workers.settle = [this](Duration timeout) { return settle(workers_, timeout); };
    c.rules = &rules_;
    c.reloads = &reloads_;
    // To the process, not this thread: main's thread takes it in sigtimedwait.
    c.request_reload = [] { ::kill(::getpid(), SIGHUP); };
    c.log = [](const std::string& line) { log(line); };
    c.watch = watch_.get();
    ControlServerOptions co;
    co.path = o_.control_socket;
    auto server = ControlServer::start(co, control_commands(c));
    if (!server) {
      log(server.error() + " (--control-socket PATH elsewhere, or none)");
      return false;
    }
    control_ = std::move(*server);
    log("control socket " + control_->path());
  }
  if (!o_.prometheus_listen.empty()) {
    MetricsHttpOptions mo;
    mo.listen = o_.prometheus_listen;
    auto server = MetricsHttpServer::start(mo, [this] { return render_prometheus(snapshot()); });
    if (!server) {
      log(server.error());
      return false;
    }
    metrics_ = std::move(*server);
    log("metrics on http://" + to_string(metrics_->address()) + "/metrics");
  }
  return true;
}

int Daemon::run() {
  if (!start_workers_and_rules()) {
    if (workers_.empty()) return 1;  // nothing started
    return stop(1);
  }
  if (!start_servers()) return stop(1);
  write_prometheus_file();  // readers find the file once the daemon says it is ready
  last_prometheus_file_ = Clock::now();

  // The overrides are spelled as options, so that the line says exactly what runs.
  const std::string overrides = describe_overrides(o_.overrides);
  log("configuration " + (o_.config_file.empty() ? std::string("none") : o_.config_file) + ": " +
      policies_text(*initial_policies_));
  log("ready (queues " + queue_text(plan_.queues) + ", profile " + o_.profile +
      (overrides.empty() ? "" : ", " + overrides) + ")");
  if (o_.verbose) log_lines(describe_configuration(o_));
  notify(notifier_.ready(status_line()));
  return stop(loop());
}

int Daemon::loop() {
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGUSR1, SIGHUP}) sigaddset(&signals, s);
  // How often worker health, the log's suppression summary, the statistics interval and the
  // service manager are looked after; the watchdog may want it more often.
  Duration interval = seconds(1);
  if (auto w = notifier_.watchdog_interval())
    interval = std::clamp<Duration>(*w, milliseconds(100), interval);
  const auto tick_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(interval).count();
  last_stats_ = Clock::now();
  for (;;) {
    timespec ts{static_cast<time_t>(tick_ns / 1000000000), static_cast<long>(tick_ns % 1000000000)};
    siginfo_t info{};
    const int sig = sigtimedwait(&signals, &info, &ts);
    if (sig == SIGINT || sig == SIGTERM) {
      log(std::string("stopping on ") + (sig == SIGINT ? "SIGINT" : "SIGTERM"));
      return 0;
    }
    if (sig == SIGUSR1) print_counters("SIGUSR1");
    if (sig == SIGHUP) on_reload();
    if (sig < 0 && errno != EAGAIN && errno != EINTR) {
      log(std::string("sigtimedwait: ") + std::strerror(errno));
      return 1;
    }
    if (std::any_of(workers_.begin(), workers_.end(), [](const auto& w) { return w->failed(); })) {
      log("a worker lost its queue socket, stopping");
      return 1;
    }
    tick(Clock::now());
  }
}

void Daemon::tick(Timestamp now) {
  // A flood that stopped still gets its summary line within a second.
  events_->flush(now);
  if (o_.stats_interval_s > 0 && now - last_stats_ >= seconds(o_.stats_interval_s)) {
    print_counters("interval");
    last_stats_ = now;
  }
  if (now - last_prometheus_file_ >= kPrometheusFileInterval) {
    write_prometheus_file();
    last_prometheus_file_ = now;
  }
  if (notifier_.enabled()) {
    notify(notifier_.status(status_line()));
    // Only while every worker goes round its loop: a stuck worker gets the daemon restarted.
    if (notifier_.watchdog_interval() && workers_alive(now)) notify(notifier_.watchdog());
  }
}

void Daemon::on_reload() {
  // The requests queued before this reload starts are answered by it; later ones raise SIGHUP
  // again and get a reload of their own, which reads the file as it is by then.
  auto waiting = reloads_.take();
  notify(notifier_.reloading());
  ReloadOutcome outcome;
  try {
    outcome = reload(arguments_, o_, workers_, policy_);
  } catch (const std::exception& e) {
    outcome = {false,
               std::string("reload failed: ") + e.what() + "; keeping the running configuration"};
  }
  log_lines(outcome.text);
  // logrotate moved the JSON event file and sent SIGHUP: write to a new one at the same path.
  if (events_) {
    if (auto reopened = events_->reopen_json(); !reopened) log(reopened.error());
  }
  notify(notifier_.ready(status_line()));
  ReloadRequests::answer(waiting, outcome.ok ? control::Reply::success(outcome.text + "\n")
                                             : control::Reply::error(outcome.text));
}

int Daemon::stop(int exit_code) {
  notify(notifier_.stopping());
  // Nobody waits for a reload any more, and no command runs while the workers go.
  reloads_.close("the daemon is stopping");
  if (control_) control_->stop();
  if (watch_) watch_->stop();  // the watchers see their stream end; workers publish into nothing
  if (metrics_) metrics_->stop();
  // Rules are emptied first: from then on nothing new is queued and the workers can drain to
  // empty. The tables themselves go only once nothing is queued (see the top of this file).
  const bool had_rules = rules_.installed();
  // Before the disarm: the table must not be put back while it is taken down.
  if (rules_watch_) rules_watch_->stop();
  if (auto disarmed = rules_.disarm(); !disarmed) {
    log(disarmed.error());
    exit_code = 1;
  }
  stop_workers(workers_);
  events_->flush(Clock::now());
  if (had_rules) {
    if (auto removed = rules_.remove(); !removed) {
      log(removed.error());
      exit_code = 1;
    } else {
      log("rules removed");
    }
  }
  write_prometheus_file();
  print_counters("final");
  log("stopped");
  return exit_code;
}

int run(const Arguments& arguments, Configuration configuration, WorkerPlan plan) {
  // Block the signals before any thread exists: workers and servers inherit the mask, and only
  // main's thread takes them, synchronously, with sigtimedwait.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGUSR1, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  Daemon d(arguments, std::move(configuration), std::move(plan));
  return d.run();
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
    // Before any thread exists: the mask read here is the process's.
    auto plan = plan_workers(configuration->options, affinity_cpus());
    if (!plan) {
      std::fputs(error_message(plan.error()).c_str(), stderr);
      return exit_code(plan.error(), cl.arguments->check_config);
    }
    if (cl.arguments->check_config) {
      std::fputs(describe_configuration(configuration->options).c_str(), stdout);
      std::fputs(("workers: " + plan->description + "\n").c_str(), stdout);
      return 0;
    }
    return run(*cl.arguments, std::move(*configuration), std::move(*plan));
  } catch (const std::exception& e) {
    // Only startup and reloads can throw (allocation, rule building); the packet path never
    // does.
    std::fprintf(stderr, "smtpguardd: fatal: %s\n", e.what());
    return 1;
  }
}
