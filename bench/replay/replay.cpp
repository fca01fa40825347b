// replay — what smtpguardd's own work costs per message, without the kernel: SMTP sessions,
// synthesised as the packets of both directions (session_script.hpp), are fed one packet at a
// time through sg::core::Pipeline in-process, as a worker feeds the packets NFQUEUE hands it.
//
//   sg_replay [--kind clean|pipelined|edits|answer] [--profile NAME] [--messages M] [--warmup W]
//             [--body-bytes B] [--threads N] [--json] [--lose K] [--packet-interval-us U]
//
// --lose K leaves out packet K of every session (as if lost before the gateway): a replay the
// checks must refuse (the smoke test's proof that they do).
//
// Each thread builds its own packets and its own Pipeline (configured as smtpguardd configures a
// worker's, with its default options) and shares nothing with the others; the threads start
// together after their warm-up. One message per session (connection), each session on a client
// address and port of its own. Reported: µs per message per thread (wall clock, and the thread's
// CPU time), messages, MB (10^6) of DATA (the message as sent after the 354, up to its final
// ".\r\n") and packets per second of all threads together, and operator-new calls per message
// during the timed part. --kind answer changes the profile: VRFY becomes answer-verb.
// Every packet is copied from the script into a working buffer before it is processed (the
// pipeline rewrites in place): the copy is inside the timed part, as NFQUEUE's is in the daemon.
//
// The run fails (exit 1) if the pipeline did not take the traffic as a gateway in front of a
// working server must: any packet dropped or held, any reset, desync, exception or invalid
// packet, a flow not closed, a command not parsed; for --kind edits, no masked command; for
// --kind answer, no answer, no mapping. So a broken replay cannot report good figures.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "config/options.hpp"
#include "core/pipeline.hpp"
#include "policy/policy_set.hpp"
#include "policy/profile.hpp"
#include "replay/allocation_count.hpp"
#include "replay/session_script.hpp"
#include "smtp/vocabulary.hpp"

using namespace sg;

namespace {

struct Args {
  bench::SessionKind kind = bench::SessionKind::kClean;
  std::string profile = "modern";
  size_t messages = 20000;
  size_t warmup = 20000;
  size_t body_bytes = 10 * 1024;
  size_t threads = 1;
  bool json = false;
  size_t lose = SIZE_MAX;  // packet of each session left out (none)
  Duration packet_interval = std::chrono::microseconds(50);  // see below
};

[[noreturn]] void usage(int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: sg_replay [--kind clean|pipelined|edits|answer] [--profile NAME]\n"
               "                 [--messages M] [--warmup W] [--body-bytes B] [--threads N]\n"
               "                 [--json]"
               " [--lose K] [--packet-interval-us U]\n");
  std::exit(code);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help") usage(0);
    if (k == "--json") {
      a.json = true;
      continue;
    }
    if (i + 1 >= argc) usage(2);
    const std::string v = argv[++i];
    if (k == "--kind") {
      if (v == "clean") {
        a.kind = bench::SessionKind::kClean;
      } else if (v == "pipelined") {
        a.kind = bench::SessionKind::kPipelined;
      } else if (v == "edits") {
        a.kind = bench::SessionKind::kEdits;
      } else if (v == "answer") {
        a.kind = bench::SessionKind::kAnswer;
      } else {
        usage(2);
      }
    } else if (k == "--profile") {
      a.profile = v;
    } else if (k == "--messages") {
      a.messages = std::stoul(v);
    } else if (k == "--warmup") {
      a.warmup = std::stoul(v);
    } else if (k == "--body-bytes") {
      a.body_bytes = std::stoul(v);
    } else if (k == "--packet-interval-us") {
      a.packet_interval = std::chrono::microseconds(std::stoul(v));
    } else if (k == "--lose") {
      a.lose = std::stoul(v);
    } else if (k == "--threads") {
      a.threads = std::stoul(v);
    } else {
      usage(2);
    }
  }
  if (a.messages == 0 || a.threads == 0 || a.threads > 64 || a.body_bytes < 512 ||
      a.body_bytes > (64u << 20)) {
    usage(2);
  }
  return a;
}

// The pipeline's clock is synthetic: it advances by --packet-interval-us per packet, 50 by
// default (a clean session, 29 packets, takes 1.45 ms: 690 sessions a second per worker). A
// closed flow stays in the table for 10 s (core/pipeline_impl.hpp) and the timer expires at most
// 1,024 flows a second (Pipeline::on_timer, run once a second as the worker runs it): at this
// pace expiry keeps up and the table settles at 12,000-17,000 flows; the default warm-up (20,000
// sessions, 29 s of the synthetic clock) gets there before the timed part. Faster, and the table
// grows to max_flows and evicts (a failed check: flows_evicted must stay 0).
constexpr Duration kTimerInterval = std::chrono::seconds(1);  // daemon/worker.cpp

// What one thread measured and what its pipeline did with the traffic.
struct ThreadResult {
  double seconds = 0;      // the timed part
  double cpu_seconds = 0;  // the thread's CPU time in the timed part (CLOCK_THREAD_CPUTIME_ID)
  std::chrono::steady_clock::time_point start, end;
  uint64_t allocations = 0;  // operator new calls in the timed part
  uint64_t packets = 0;      // in the timed part
  size_t sessions = 0;       // warm-up and timed
  size_t packets_per_session = 0;
  size_t packets_processed_per_session = 0;  // without the one --lose leaves out
  size_t data_bytes_per_session = 0;
  size_t commands_per_session = 0;
  // Over warm-up and timed part: the verdicts and the outputs besides them.
  uint64_t accepted = 0, modified = 0, dropped = 0, held = 0;
  uint64_t released = 0, injected = 0, decisions = 0;
  size_t flows_left = 0;
  std::array<uint64_t, core::Counters::kSize> counters{};  // the pipeline's, at the end
  std::string failure;  // why the replay is not to be believed; empty if it is
};

class Replayer {
 public:
  Replayer(const Args& args, const config::Options& daemon,
           std::shared_ptr<const policy::PolicySet> policies, size_t answer_bytes)
      : script_(bench::build_session({args.kind, args.body_bytes, 1448, answer_bytes})),
        lose_(args.lose),
        packet_interval_(args.packet_interval) {
    core::PipelineConfig config;
    config.policies = std::move(policies);
    config.max_flows = daemon.max_flows;
    config.hold_timeout = milliseconds(daemon.hold_timeout_ms);
    config.memory_budget = (size_t{daemon.memory_budget_mib} << 20) / args.threads;
    config.done_mark = daemon.done_mark;
    config.exceptions = daemon.exceptions;
    pipeline_ = std::make_unique<core::Pipeline>(std::move(config));
    for (const auto& p : script_.packets) work_.emplace_back(p.bytes.size());
    // As the daemon's worker reserves its output once.
    out_.released.reserve(64);
    out_.injected.reserve(8);
    out_.mapped_flows.reserve(4);
    out_.decisions.reserve(8);
    now_ = last_timer_ = Clock::now();
  }

  // One session: every packet copied, readdressed for session `index`, processed.
  void session(size_t index, ThreadResult& r) {
    for (size_t k = 0; k < script_.packets.size(); ++k) {
      if (k == lose_) continue;
      const bench::ScriptPacket& p = script_.packets[k];
      std::vector<uint8_t>& buf = work_[k];
      std::memcpy(buf.data(), p.bytes.data(), buf.size());
      bench::readdress(buf, p.from_client, index);
      out_.clear();
      const core::PacketVerdict v = pipeline_->process(next_id_++, buf, false, now_, out_);
      switch (v.kind) {
        case core::VerdictKind::kAccept:
          ++r.accepted;
          break;
        case core::VerdictKind::kAcceptModified:
          ++r.modified;
          break;
        case core::VerdictKind::kDrop:
          ++r.dropped;
          break;
        case core::VerdictKind::kHold:
          ++r.held;
          break;
      }
      r.released += out_.released.size();
      r.injected += out_.injected.size();
      r.decisions += out_.decisions.size();
      now_ += packet_interval_;
    }
    // As the worker's loop: the timer when a deadline has passed, and at least once a second
    // (flow expiry).
    if (now_ >= pipeline_->next_deadline() || now_ - last_timer_ >= kTimerInterval) {
      out_.clear();
      pipeline_->on_timer(now_, out_);
      last_timer_ = now_;
      r.released += out_.released.size();
      r.injected += out_.injected.size();
    }
    ++r.sessions;
  }

  const bench::SessionScript& script() const { return script_; }
  const core::Pipeline& pipeline() const { return *pipeline_; }

 private:
  bench::SessionScript script_;
  size_t lose_;
  Duration packet_interval_;
  std::vector<std::vector<uint8_t>> work_;
  std::unique_ptr<core::Pipeline> pipeline_;
  core::Output out_;
  Timestamp now_, last_timer_;
  uint32_t next_id_ = 1;
};

// Why the pipeline's handling of `r`'s traffic is not what a working gateway does, or "".
std::string check(const Args& args, const ThreadResult& r) {
  using core::Counter;
  struct {
    const ThreadResult& r;
    uint64_t get(Counter k) const { return r.counters[size_t(k)]; }
  } c{r};
  std::string why;
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok) why += (why.empty() ? "" : "; ") + what;
  };
  const uint64_t sessions = r.sessions;
  // kAnswer: the gateway sends its answer in a segment of its own; the answered command's packet
  // goes on without its payload (a resized packet).
  const uint64_t answered = args.kind == bench::SessionKind::kAnswer ? sessions : 0;
  expect(r.dropped == 0, std::to_string(r.dropped) + " packets dropped");
  expect(r.held == 0, std::to_string(r.held) + " packets held");
  expect(r.injected == answered, std::to_string(r.injected) + " packets injected");
  expect(r.accepted + r.modified == sessions * r.packets_processed_per_session,
         "packets not all accepted");
  for (Counter bad :
       {Counter::packets_invalid, Counter::packets_not_tracked, Counter::flows_evicted,
        Counter::flows_reset, Counter::flows_dropped, Counter::resets_sent, Counter::smtp_desync,
        Counter::budget_drops, Counter::tcp_bad_checksum, Counter::tcp_ack_unsent,
        Counter::segments_out_of_order, Counter::segments_overlap_conflict}) {
    const uint64_t n = c.get(bad);
    expect(n == 0, std::to_string(n) + " " + std::string(core::kCounterInfo[size_t(bad)].name));
  }
  for (size_t i = size_t(Counter::exception_midstream); i < size_t(Counter::kCount); ++i) {
    const uint64_t n = c.get(Counter(i));
    expect(n == 0, std::to_string(n) + " " + std::string(core::kCounterInfo[i].name));
  }
  expect(c.get(Counter::flows_created) == sessions, "flows_created != sessions");
  expect(c.get(Counter::flows_closed) == sessions, "flows_closed != sessions");
  expect(c.get(Counter::smtp_commands) == sessions * r.commands_per_session,
         "smtp_commands " + std::to_string(c.get(Counter::smtp_commands)) +
             " != " + std::to_string(sessions * r.commands_per_session));
  if (args.kind == bench::SessionKind::kAnswer) {
    expect(c.get(Counter::edit_command_answered) == sessions, "a command not answered");
    expect(c.get(Counter::flows_mapped) == sessions, "a flow not mapped");
    expect(c.get(Counter::segments_resized) >= sessions, "no resized packet in some session");
  }
  if (args.kind == bench::SessionKind::kEdits) {
    expect(c.get(Counter::edit_command_masked) >= sessions,
           "no masked command in some session (the profile must mask VRFY or EXPN)");
    expect(r.decisions >= sessions, "fewer decisions than sessions");
    expect(r.modified >= sessions, "fewer modified packets than sessions");
  }
  return why;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

ThreadResult run_thread(const Args& args, const config::Options& daemon,
                        const std::shared_ptr<const policy::PolicySet>& policies,
                        size_t answer_bytes, size_t thread_index, std::latch& start) {
  ThreadResult r;
  Replayer replayer(args, daemon, policies, answer_bytes);
  r.packets_per_session = replayer.script().packets.size();
  r.packets_processed_per_session = r.packets_per_session - (args.lose < r.packets_per_session);
  r.data_bytes_per_session = replayer.script().data_bytes;
  r.commands_per_session = replayer.script().commands;
  // Sessions of different threads use different client ports: nothing in common, even in
  // what a reader of the figures could suspect.
  size_t index = thread_index * (args.warmup + args.messages);
  for (size_t i = 0; i < args.warmup; ++i) replayer.session(index++, r);
  start.arrive_and_wait();
  const uint64_t allocations_before = bench::thread_allocations();
  const double cpu_before = thread_cpu_seconds();
  r.start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < args.messages; ++i) replayer.session(index++, r);
  r.end = std::chrono::steady_clock::now();
  r.cpu_seconds = thread_cpu_seconds() - cpu_before;
  r.allocations = bench::thread_allocations() - allocations_before;
  r.seconds = std::chrono::duration<double>(r.end - r.start).count();
  r.packets = args.messages * r.packets_processed_per_session;
  r.flows_left = replayer.pipeline().flow_count();
  for (size_t i = 0; i < core::Counters::kSize; ++i) {
    r.counters[i] = replayer.pipeline().counters().get(core::Counter(i));
  }
  r.failure = check(args, r);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  std::shared_ptr<const policy::Profile> profile = policy::builtin_profile(args.profile);
  if (!profile) {
    std::fprintf(stderr, "sg_replay: unknown profile %s\n", args.profile.c_str());
    return 2;
  }
  size_t answer_bytes = 0;
  if (args.kind == bench::SessionKind::kAnswer) {
    // The profile with answer-verb VRFY (smtpguard.conf: verb VRFY answer).
    auto answering = std::make_shared<policy::Profile>(*profile);
    answering->verbs[size_t(smtp::Verb::kVrfy)] = policy::CommandAction::kAnswer;
    answer_bytes = answering->reply_for(smtp::Verb::kVrfy).size() + 2;
    profile = std::move(answering);
  }
  const std::string profile_label =
      args.profile + (args.kind == bench::SessionKind::kAnswer ? "+answer-vrfy" : "");
  const config::Options daemon;  // smtpguardd's defaults
  const auto policies = policy::single_policy(profile);

  std::vector<ThreadResult> results(args.threads);
  std::latch start(static_cast<std::ptrdiff_t>(args.threads));
  {
    std::vector<std::jthread> threads;
    for (size_t t = 0; t < args.threads; ++t) {
      threads.emplace_back(
          [&, t] { results[t] = run_thread(args, daemon, policies, answer_bytes, t, start); });
    }
  }

  std::string failure;
  auto first_start = results[0].start;
  auto last_end = results[0].end;
  double seconds_sum = 0, cpu_seconds_sum = 0;
  uint64_t allocations = 0;
  for (size_t t = 0; t < results.size(); ++t) {
    const ThreadResult& r = results[t];
    if (!r.failure.empty()) failure += "thread " + std::to_string(t) + ": " + r.failure + "\n";
    first_start = std::min(first_start, r.start);
    last_end = std::max(last_end, r.end);
    seconds_sum += r.seconds;
    cpu_seconds_sum += r.cpu_seconds;
    allocations += r.allocations;
  }
  const ThreadResult& r0 = results[0];
  const double wall = std::chrono::duration<double>(last_end - first_start).count();
  const double total_messages = double(args.messages) * double(args.threads);
  const double us_per_message = seconds_sum / total_messages * 1e6;  // per thread's message
  // CPU time per message does not count the time a thread waited for a core: on a shared
  // machine, the steadier figure (and, if the threads share nothing, the same for 1 and N).
  const double cpu_us_per_message = cpu_seconds_sum / total_messages * 1e6;
  const double msg_per_s = total_messages / wall;
  const double data_mb_s = msg_per_s * double(r0.data_bytes_per_session) / 1e6;
  const double packets_per_s = msg_per_s * double(r0.packets_processed_per_session);
  const double allocations_per_message = double(allocations) / total_messages;

  if (args.json) {
    std::printf(
        "{\"kind\": \"%s\", \"profile\": \"%s\", \"threads\": %zu, \"messages_per_thread\": %zu, "
        "\"warmup_per_thread\": %zu, \"body_bytes\": %zu, \"data_bytes_per_message\": %zu, "
        "\"packets_per_message\": %zu, \"wall_seconds\": %.6f, \"us_per_message\": %.3f, "
        "\"cpu_us_per_message\": %.3f, "
        "\"messages_per_s\": %.1f, \"data_mb_s\": %.1f, \"packets_per_s\": %.0f, "
        "\"allocations_per_message\": %.3f, \"modified_packets\": %llu, \"decisions\": %llu, "
        "\"flows_left\": %zu, \"ok\": %s}\n",
        std::string(bench::to_string(args.kind)).c_str(), profile_label.c_str(), args.threads,
        args.messages, args.warmup, args.body_bytes, r0.data_bytes_per_session,
        r0.packets_per_session, wall, us_per_message, cpu_us_per_message, msg_per_s, data_mb_s,
        packets_per_s, allocations_per_message, static_cast<unsigned long long>(r0.modified),
        static_cast<unsigned long long>(r0.decisions), r0.flows_left,
        failure.empty() ? "true" : "false");
  } else {
    std::printf(
        "kind %s, profile %s, %zu thread(s) x %zu messages (+%zu warm-up), %zu bytes of DATA "
        "and %zu packets per message\n"
        "  %.2f us per message (per thread; %.2f us of CPU), %.0f messages/s, %.1f MB/s of DATA, "
        "%.0f packets/s "
        "(all threads)\n"
        "  %.3f allocations per message (timed part)\n",
        std::string(bench::to_string(args.kind)).c_str(), profile_label.c_str(), args.threads,
        args.messages, args.warmup, r0.data_bytes_per_session, r0.packets_per_session,
        us_per_message, cpu_us_per_message, msg_per_s, data_mb_s, packets_per_s,
        allocations_per_message);
  }
  if (!failure.empty()) {
    std::fprintf(stderr, "sg_replay: the pipeline did not take the traffic:\n%s", failure.c_str());
    return 1;
  }
  return 0;
}
