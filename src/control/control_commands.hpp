#pragma once
// What smtpguardd answers on its control socket (control_server.hpp serves the socket,
// control_protocol.hpp lists the commands): the handlers, and the pieces of state they share with
// main's thread.
//
//   status, stats [json], prometheus   renderings of a statistics snapshot (stats_report.hpp)
//   reload      queues a request, raises SIGHUP; main's thread reloads (as for any SIGHUP) and
//               answers every request queued before it started (ReloadRequests)
//   flows       every worker copies its flow table between packets (Worker::flows)
//   rules show|install|remove   the nftables rules of this daemon (RuleControl)
//   watch [client=P] [server=P] [port=N] [queue=N]   the connection becomes a live stream of
//               decisions (eventlog/watch_hub.hpp); only with a hub
//
// The handlers run on the control server's thread, one at a time.
#include <chrono>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "control/control_protocol.hpp"
#include "control/control_server.hpp"
#include "control/stats_report.hpp"
#include "control/worker_queries.hpp"
#include "eventlog/watch_hub.hpp"
#include "nft/rules.hpp"
#include "util/expected.hpp"
#include "util/time.hpp"

namespace sg::control {

// Reload requests of the control socket, answered by main's thread.
class ReloadRequests {
 public:
  // A request (any thread). After close() the future is ready at once with close()'s reason.
  std::future<Reply> add();
  // Every request waiting (main's thread, when a reload starts): the reload answers them.
  std::vector<std::promise<Reply>> take();
  static void answer(std::vector<std::promise<Reply>>& waiting, const Reply& reply);
  // Answers every waiting request with an error, and every later one too (shutdown).
  void close(const std::string& reason);

 private:
  std::mutex mutex_;
  std::vector<std::promise<Reply>> waiting_;
  std::optional<std::string> closed_;
};

// The daemon's nftables rules, installed at startup (--install-rules) or by `rules install`, and
// removed at exit or by `rules remove`. Thread-safe: main's thread and the control thread share it.
class RuleControl {
 public:
  explicit RuleControl(nft::RuleOptions options) : rules_(std::move(options)) {}

  // Refused (an error) while the rules are installed and armed.
  Expected<nft::InstallReport, std::string> install();
  // Accept in front of the queue rules (see nft::RuleSet::disarm); nothing if not installed.
  Expected<bool, std::string> disarm();
  // Deletes the tables; nothing if not installed.
  Expected<bool, std::string> remove();
  // Installs the tables again if they are installed and armed (someone else deleted or changed
  // them: nft::RulesWatch) and returns their names ("inet smtpguard"); "" when not installed or
  // disarmed, so that nothing is put back after `rules remove` or during shutdown.
  Expected<std::string, std::string> restore();

  bool installed() const;
  // "table inet smtpguard, queue via native nft queue" (+ ", disarmed"), or "not installed".
  std::string state() const;
  // The tables installed ("inet smtpguard"); empty when not installed.
  std::vector<std::string> tables() const;
  // "hooks forward, queues 0-1, port 25, fail-closed, done mark 0x00100000, inject mark ...".
  std::string describe_options() const;

 private:
  mutable std::mutex mutex_;
  nft::RuleSet rules_;
  std::optional<nft::InstallReport> report_;  // set while installed
  bool disarmed_ = false;
};

// The output of a program run to completion (argv[0] looked up in PATH, then /usr/sbin and
// /sbin), at most `max_output` bytes of stdout and of stderr each; killed after `timeout`. The
// child gets an empty signal mask, /dev/null as stdin and no other descriptor of the daemon.
struct ProgramResult {
  int status = 0;      // exit status; 128 + N when killed by signal N; 127: not found
  std::string output;  // stdout
  std::string errors;  // stderr
};
Expected<ProgramResult, std::string> run_program(const std::vector<std::string>& argv,
                                                 Duration timeout, size_t max_output = 1u << 20);

// `smtpguardctl flows`: a header line, then one line per flow,
//   queue=0 client=198.18.1.2:40000 server=198.18.2.2:25 state=established profile=modern
//   c2s_bytes=23 s2c_bytes=312 mapped=yes c2s_delta=-8 s2c_delta=+37 held=0 owed=0 flags=-
//   expires_in=898s
// and a line per worker that did not answer (`missing`: their queue numbers).
std::string render_flows(const std::vector<WorkerFlows>& flows,
                         const std::vector<uint16_t>& missing, Timestamp now);

// What the handlers need from the daemon.
struct ControlContext {
  std::function<StatsSnapshot()> snapshot;
  WorkerQueries workers;  // unset: no workers (flows lists nothing, nothing to settle)
  RuleControl* rules = nullptr;
  ReloadRequests* reloads = nullptr;
  eventlog::WatchHub* watch = nullptr;  // unset: no watch command
  // Makes main's thread reload (raises SIGHUP for the process).
  std::function<void()> request_reload;
  // One line to the daemon's log ("smtpguardd: " is added).
  std::function<void(const std::string&)> log;
  Duration reload_timeout = seconds(8);  // below smtpguardctl's default of 10 s
  Duration worker_timeout = seconds(2);  // for a worker's answer (flows, drain)
  size_t max_flows_listed = 10000;       // over all workers
};

std::vector<ControlCommand> control_commands(const ControlContext& context);

}  // namespace sg::control
