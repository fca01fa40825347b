#include "control/control_commands.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <exception>
#include <thread>

namespace sg::control {
namespace {

std::string hex_mark(uint32_t mark) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08" PRIx32, mark);
  return buf;
}

std::string endpoint(const net::IpAddress& address, uint16_t port) {
  const std::string a = address.to_string();
  return (address.is_v4() ? a : "[" + a + "]") + ":" + std::to_string(port);
}

std::string signed_number(int64_t v) {
  return (v >= 0 ? "+" : "") + std::to_string(v);
}

// Closes a descriptor however the function ends.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// --- the handlers ---

Reply status(const ControlContext& c) {
  std::string out = render_status(c.snapshot());
  if (c.rules) out += "rules: " + c.rules->state() + "\n";
  return Reply::success(std::move(out));
}

Reply stats(const ControlContext& c, std::string_view argument) {
  if (argument.empty()) return Reply::success(render_text(c.snapshot()));
  if (argument == kJson) return Reply::success(render_json(c.snapshot()) + "\n");
  return Reply::error("stats takes no argument but json");
}

Reply reload(const ControlContext& c) {
  std::future<Reply> answer = c.reloads->add();
  if (answer.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    c.log("control: reload requested");
    c.request_reload();
  }
  if (answer.wait_for(c.reload_timeout) != std::future_status::ready) {
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(c.reload_timeout).count();
    return Reply::error("the reload did not finish within " + std::to_string(s) +
                        " s; the daemon's log says how it ends");
  }
  return answer.get();
}

FlowListing list(const ControlContext& c) {
  return c.workers.flows ? c.workers.flows(c.max_flows_listed, c.worker_timeout) : FlowListing{};
}

Reply flows(const ControlContext& c) {
  const FlowListing l = list(c);
  return Reply::success(render_flows(l.answers, l.missing, Clock::now()));
}

// The tables of ours the kernel has, as `nft list table` prints them.
std::string list_tables(const std::vector<std::string>& tables) {
  std::string out;
  for (const std::string& t : tables) {
    const size_t space = t.find(' ');
    auto r =
        run_program({"nft", "list", "table", t.substr(0, space), t.substr(space + 1)}, seconds(5));
    if (!r) {
      out += "(cannot list table " + t + ": " + r.error() + ")\n";
    } else if (r->status == 127) {
      out += "(nft not found: cannot list table " + t + ")\n";
    } else if (r->status != 0) {
      std::string why = r->errors.empty() ? r->output : r->errors;
      while (!why.empty() && why.back() == '\n') why.pop_back();
      out += "(nft list table " + t + " failed, status " + std::to_string(r->status) +
             (why.empty() ? std::string() : ": " + why) + ")\n";
    } else {
      out += r->output;
      if (!out.empty() && out.back() != '\n') out += '\n';
    }
  }
  return out;
}

Reply rules_show(const ControlContext& c) {
  RuleControl& rules = *c.rules;
  std::string out = "rules: " + rules.state() + "\n";
  out += "options: " + rules.describe_options() + "\n";
  std::vector<std::string> tables = rules.tables();
  if (tables.empty()) {
    // Not ours to show as installed, but the operator may have loaded nft/smtpguard.nft: say
    // what the kernel has under our name, if anything.
    auto r = run_program({"nft", "list", "tables"}, seconds(5));
    if (r && r->status == 0) {
      for (const char* t : {"inet smtpguard", "ip smtpguard", "ip6 smtpguard"}) {
        if (r->output.find(std::string("table ") + t + "\n") != std::string::npos)
          tables.emplace_back(t);
      }
    }
    if (tables.empty()) return Reply::success(std::move(out));
    out += "(not installed by this daemon; the kernel has these tables of that name:)\n";
  }
  out += "\n" + list_tables(tables);
  return Reply::success(std::move(out));
}

Reply rules_install(const ControlContext& c) {
  auto report = c.rules->install();
  if (!report) return Reply::error(report.error());
  std::string out;
  for (const std::string& note : report->notes) {
    c.log(note);
    out += note + "\n";
  }
  const std::string line = "rules installed: " + c.rules->state();
  c.log("control: " + line);
  out += line + "\n";
  // Connections tracked from before: if the rules were off while they sent data, the daemon
  // finds a gap in their streams it can never inspect, and forwards nothing after it.
  size_t inspected = 0;
  for (const WorkerFlows& f : list(c).answers) {
    inspected += static_cast<size_t>(
        std::count_if(f.flows.begin(), f.flows.end(), [](const core::FlowSummary& s) {
          return (s.state == "established" || s.state == "closing") && !s.done && !s.reset;
        }));
  }
  if (inspected != 0)
    out += "warning: " + std::to_string(inspected) + " connection" + (inspected == 1 ? "" : "s") +
           " tracked from before; one that sent data while the rules were off stalls (the daemon "
           "never saw those bytes and forwards nothing after them)\n";
  return Reply::success(std::move(out));
}

Reply rules_remove(const ControlContext& c) {
  RuleControl& rules = *c.rules;
  if (!rules.installed())
    return Reply::error(
        "this daemon has no rules installed (started without --install-rules, or removed "
        "already); tables loaded by other means are nft's to remove");
  const std::vector<std::string> tables = rules.tables();
  // As at shutdown (see main.cpp): nothing new is queued once disarmed; what the workers hold
  // and what is still queued is decided before the tables (and their hooks) go, or the kernel
  // would drop it.
  if (auto disarmed = rules.disarm(); !disarmed) return Reply::error(disarmed.error());
  const bool settled = !c.workers.settle || c.workers.settle(c.worker_timeout);
  if (auto removed = rules.remove(); !removed)
    return Reply::error(removed.error() + " (the rules are disarmed: nothing is queued)");
  std::string tables_text;
  for (const std::string& t : tables) tables_text += (tables_text.empty() ? "" : ", ") + t;
  const std::string line = "rules removed: table " + tables_text +
                           "; SMTP passes uninspected until 'smtpguardctl rules install'";
  c.log("control: " + line);
  std::string out = line + "\n";
  if (!settled) out += "warning: the workers did not settle in time; packets may have been lost\n";
  out +=
      "connections whose sequence numbers the daemon mapped were reset; open connections that "
      "send data before a reinstall stall after it\n";
  return Reply::success(std::move(out));
}

Reply rules(const ControlContext& c, std::string_view argument) {
  if (argument == kRulesShow) return rules_show(c);
  if (argument == kRulesInstall) return rules_install(c);
  if (argument == kRulesRemove) return rules_remove(c);
  return Reply::error("rules takes one of show, install, remove");
}

Reply no_argument(std::string_view command, std::string_view argument,
                  const std::function<Reply()>& run) {
  if (!argument.empty()) return Reply::error(std::string(command) + " takes no argument");
  return run();
}

}  // namespace

// --- ReloadRequests ---

std::future<Reply> ReloadRequests::add() {
  std::promise<Reply> p;
  std::future<Reply> f = p.get_future();
  std::lock_guard lock(mutex_);
  if (closed_) {
    p.set_value(Reply::error(*closed_));
  } else {
    waiting_.push_back(std::move(p));
  }
  return f;
}

std::vector<std::promise<Reply>> ReloadRequests::take() {
  std::lock_guard lock(mutex_);
  return std::exchange(waiting_, {});
}

void ReloadRequests::answer(std::vector<std::promise<Reply>>& waiting, const Reply& reply) {
  for (auto& p : waiting) p.set_value(reply);
  waiting.clear();
}

void ReloadRequests::close(const std::string& reason) {
  std::vector<std::promise<Reply>> waiting;
  {
    std::lock_guard lock(mutex_);
    closed_ = reason;
    waiting = std::exchange(waiting_, {});
  }
  answer(waiting, Reply::error(reason));
}

// --- RuleControl ---

Expected<nft::InstallReport, std::string> RuleControl::install() {
  std::lock_guard lock(mutex_);
  if (report_ && !disarmed_) {
    std::string tables;
    for (const std::string& t : report_->tables) tables += (tables.empty() ? "" : ", ") + t;
    return unexpected("the rules are installed already (table " + tables +
                      "); 'rules remove' first");
  }
  auto report = rules_.install();
  if (!report) return report;
  report_ = *report;
  disarmed_ = false;
  return report;
}

Expected<bool, std::string> RuleControl::disarm() {
  std::lock_guard lock(mutex_);
  if (!report_) return true;
  auto r = rules_.disarm();
  if (r) disarmed_ = true;
  return r;
}

Expected<bool, std::string> RuleControl::remove() {
  std::lock_guard lock(mutex_);
  if (!report_) return true;
  auto r = rules_.remove();
  if (r) {
    report_.reset();
    disarmed_ = false;
  }
  return r;
}

Expected<std::string, std::string> RuleControl::restore() {
  std::lock_guard lock(mutex_);
  if (!report_ || disarmed_) return std::string();
  auto report = rules_.install();
  if (!report) return unexpected(report.error());
  report_ = *report;
  std::string tables;
  for (const std::string& t : report_->tables) tables += (tables.empty() ? "" : ", ") + t;
  return tables;
}

bool RuleControl::installed() const {
  std::lock_guard lock(mutex_);
  return report_.has_value();
}

std::string RuleControl::state() const {
  std::lock_guard lock(mutex_);
  if (!report_) return "not installed";
  std::string tables;
  for (const std::string& t : report_->tables) tables += (tables.empty() ? "" : ", ") + t;
  return "table " + tables + ", queue via " + nft::queue_method_name(report_->method) +
         (disarmed_ ? ", disarmed (nothing is queued)" : "");
}

std::vector<std::string> RuleControl::tables() const {
  std::lock_guard lock(mutex_);
  return report_ ? report_->tables : std::vector<std::string>{};
}

std::string RuleControl::describe_options() const {
  const nft::RuleOptions& o = rules_.options();  // never changes
  std::string hooks;
  for (nft::Hook h : o.hooks) hooks += (hooks.empty() ? "" : ",") + std::string(nft::hook_name(h));
  const std::string queues = o.queue_first == o.queue_last ? std::to_string(o.queue_first)
                                                           : std::to_string(o.queue_first) + "-" +
                                                                 std::to_string(o.queue_last);
  return "hooks " + hooks + ", queues " + queues + ", port " + std::to_string(o.port) + ", " +
         (o.bypass ? "fail-open" : "fail-closed") + ", done mark " + hex_mark(o.done_mark) +
         ", inject mark " + hex_mark(o.inject_mark) + ", mapped mark " +
         (o.mapped_mark != 0 ? hex_mark(o.mapped_mark) : std::string("off"));
}

// --- run_program ---

Expected<ProgramResult, std::string> run_program(const std::vector<std::string>& argv,
                                                 Duration timeout, size_t max_output) {
  if (argv.empty()) return unexpected(std::string("no program"));
  // Everything the child needs is prepared before fork(): in a threaded process the child may
  // only make async-signal-safe calls.
  std::vector<std::string> paths;
  if (argv[0].find('/') != std::string::npos) {
    paths.push_back(argv[0]);
  } else {
    const char* env = ::getenv("PATH");
    std::string path_list = env ? env : "";
    path_list += ":/usr/sbin:/sbin:/usr/bin:/bin";
    for (size_t pos = 0; pos <= path_list.size();) {
      size_t end = path_list.find(':', pos);
      if (end == std::string::npos) end = path_list.size();
      if (end > pos) paths.push_back(path_list.substr(pos, end - pos) + "/" + argv[0]);
      pos = end + 1;
    }
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  int out_fds[2], err_fds[2];
  if (::pipe2(out_fds, O_CLOEXEC) != 0)
    return unexpected(std::string("pipe: ") + std::strerror(errno));
  Fd out_read{out_fds[0]}, out_write{out_fds[1]};
  if (::pipe2(err_fds, O_CLOEXEC) != 0)
    return unexpected(std::string("pipe: ") + std::strerror(errno));
  Fd err_read{err_fds[0]}, err_write{err_fds[1]};
  const pid_t pid = ::fork();
  if (pid < 0) return unexpected(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // The daemon blocks its signals in every thread and ignores SIGPIPE: undo both.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::dup2(out_fds[1], STDOUT_FILENO);
    ::dup2(err_fds[1], STDERR_FILENO);
    // No descriptor of the daemon (queue and netlink sockets) reaches the program.
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    for (const std::string& p : paths) ::execv(p.c_str(), args.data());
    ::_exit(127);
  }
  ::close(out_write.fd);
  out_write.fd = -1;
  ::close(err_write.fd);
  err_write.fd = -1;

  ProgramResult result;
  const Timestamp deadline = Clock::now() + timeout;
  bool timed_out = false;
  pollfd pfds[2] = {{out_read.fd, POLLIN, 0}, {err_read.fd, POLLIN, 0}};
  std::string* sinks[2] = {&result.output, &result.errors};
  while (pfds[0].fd >= 0 || pfds[1].fd >= 0) {
    const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    const int ready = ::poll(pfds, 2, static_cast<int>(left));
    if (ready <= 0) continue;  // EINTR, or the deadline check above ends it
    for (int i = 0; i < 2; ++i) {
      if (pfds[i].fd < 0 || pfds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = ::read(pfds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        pfds[i].fd = -1;  // end of that output (poll ignores negative descriptors)
        continue;
      }
      std::string& sink = *sinks[i];
      const size_t room = max_output - std::min(max_output, sink.size());
      sink.append(buf, std::min(room, static_cast<size_t>(n)));
    }
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) return unexpected(std::string("timed out: ") + argv[0] + " killed");
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// --- render_flows ---

std::string render_flows(const std::vector<WorkerFlows>& flows,
                         const std::vector<uint16_t>& missing, Timestamp now) {
  size_t total = 0, shown = 0;
  bool midstream = false;
  std::string per_queue;
  for (const WorkerFlows& w : flows) {
    total += w.total;
    shown += w.flows.size();
    per_queue += (per_queue.empty() ? "" : ", ") + std::string("queue ") + std::to_string(w.queue) +
                 ": " + std::to_string(w.total);
  }
  std::string out = std::to_string(total) + (total == 1 ? " flow" : " flows") + " tracked";
  if (!per_queue.empty()) out += " (" + per_queue + ")";
  if (shown < total) out += ", the " + std::to_string(shown) + " least recently active shown";
  out += "\n";
  for (const WorkerFlows& w : flows) {
    for (const core::FlowSummary& f : w.flows) {
      midstream = midstream || !f.roles_known;
      std::string flags;
      auto flag = [&flags](bool on, const char* name) {
        if (on) flags += (flags.empty() ? "" : ",") + std::string(name);
      };
      flag(!f.roles_known, "midstream");
      flag(f.done, "done");
      flag(f.reset, "reset");
      const auto left = std::chrono::ceil<std::chrono::seconds>(f.expires - now).count();
      out += "queue=" + std::to_string(w.queue) + " client=" + endpoint(f.client, f.client_port) +
             " server=" + endpoint(f.server, f.server_port) + " state=" + std::string(f.state) +
             " profile=" + (f.profile.empty() ? "-" : f.profile) +
             " c2s_bytes=" + std::to_string(f.bytes_c2s) +
             " s2c_bytes=" + std::to_string(f.bytes_s2c) + " mapped=" + (f.mapped ? "yes" : "no") +
             " c2s_delta=" + signed_number(f.delta_c2s) +
             " s2c_delta=" + signed_number(f.delta_s2c) +
             " held=" + std::to_string(f.held_packets) + " owed=" + std::to_string(f.owed_replies) +
             " flags=" + (flags.empty() ? "-" : flags) +
             " expires_in=" + std::to_string(std::max<int64_t>(0, left)) + "s\n";
    }
  }
  for (uint16_t q : missing)
    out += "queue " + std::to_string(q) + ": no answer from its worker (stopping or stuck)\n";
  if (midstream)
    out +=
        "midstream: picked up without its handshake; client and server are the two ends in "
        "address order, and the flow is passed uninspected\n";
  return out;
}

// --- the command table ---

namespace {

// `watch`: the reply says what is watched; the connection then goes to the hub.
StreamingReply watch(const ControlContext& c, std::string_view argument) {
  auto filter = eventlog::parse_watch_filter(argument);
  if (!filter) return {Reply::error("watch: " + filter.error()), nullptr};
  if (c.watch->watchers() >= eventlog::WatchHub::kMaxWatchers)
    return {Reply::error("watch: " + std::to_string(eventlog::WatchHub::kMaxWatchers) +
                         " watchers already"),
            nullptr};
  eventlog::WatchHub* hub = c.watch;
  const std::string what = filter->to_string();
  if (c.log) c.log("control: watch " + what);
  return {Reply::success("watching " + what + "\n"),
          [hub, f = std::move(*filter)](int fd) { hub->attach(fd, f); }};
}

}  // namespace

std::vector<ControlCommand> control_commands(const ControlContext& context) {
  // The table's handlers hold a copy of the context (its pointers outlive the server).
  auto c = std::make_shared<const ControlContext>(context);
  std::vector<ControlCommand> commands;
  commands.push_back({std::string(kStatus), "status", [c](std::string_view a) {
                        return no_argument(kStatus, a, [&] { return status(*c); });
                      }});
  commands.push_back(
      {std::string(kStats), "stats [json]", [c](std::string_view a) { return stats(*c, a); }});
  commands.push_back({std::string(kPrometheus), "prometheus", [c](std::string_view a) {
                        return no_argument(kPrometheus, a, [&] {
                          return Reply::success(render_prometheus(c->snapshot()));
                        });
                      }});
  commands.push_back({std::string(kReload), "reload", [c](std::string_view a) {
                        return no_argument(kReload, a, [&] { return reload(*c); });
                      }});
  commands.push_back({std::string(kFlows), "flows", [c](std::string_view a) {
                        return no_argument(kFlows, a, [&] { return flows(*c); });
                      }});
  commands.push_back({std::string(kRules), "rules show|install|remove",
                      [c](std::string_view a) { return rules(*c, a); }});
  if (c->watch) {
    commands.push_back({std::string(kWatch),
                        "watch [client=PREFIX] [server=PREFIX] [port=N] [queue=N]", nullptr,
                        [c](std::string_view a) { return watch(*c, a); }});
  }
  return commands;
}

}  // namespace sg::control
