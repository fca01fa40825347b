#include "daemon/worker.hpp"

#include <linux/netfilter.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <utility>

namespace sg::daemon {
namespace {

using core::VerdictKind;

// poll() never sleeps longer than this, so the stop flag is seen within it.
constexpr Duration kMaxPollWait = milliseconds(200);
// Datagrams read per wake-up before timers get a turn and the accept batch is flushed: bounds
// both the latency a batched accept adds and how long a timer can be late under load.
constexpr int kBurstDatagrams = 64;
// on_timer also expires idle flows, which next_deadline() need not announce: run it at least
// this often.
constexpr Duration kTimerInterval = seconds(1);
// Shutdown: the queue counts as empty after this long without a packet (main has removed the
// rules, so only packets already queued can still come), but never waits longer than the cap.
constexpr Duration kDrainQuiet = milliseconds(100);
constexpr Duration kDrainPoll = milliseconds(20);
constexpr Duration kDrainCap = seconds(5);
// At most one log line per second per worker for repeated runtime errors.
constexpr Duration kErrorLogInterval = seconds(1);

int poll_timeout_ms(Timestamp now, Timestamp deadline, Duration cap) {
  if (deadline <= now) return 0;
  Duration wait = std::min<Duration>(deadline - now, cap);
  // Round up: waking a millisecond early would only spin.
  auto ms = std::chrono::ceil<milliseconds>(wait).count();
  return static_cast<int>(std::clamp<long long>(ms, 0, 1000 * 60));
}

}  // namespace

Expected<std::unique_ptr<Worker>, std::string> Worker::create(WorkerConfig config) {
  const uint16_t queue_num = config.queue.queue_num;
  config.queue.conntrack = config.mapped_mark != 0;
  auto queue = nfq::NfQueue::open(config.queue);
  if (!queue) return unexpected(queue.error());
  auto injector = nfq::RawInjector::create(config.inject_mark);
  if (!injector) return unexpected("queue " + std::to_string(queue_num) + ": " + injector.error());
  std::unique_ptr<nfq::ConntrackTuner> conntrack;
  const nfq::ConntrackUpdate update{config.conntrack_tuning, config.mapped_mark};
  if (!update.empty()) {
    // Opening the socket needs no conntrack module; a failure here means no nfnetlink at all.
    auto tuner = nfq::ConntrackTuner::create(update);
    if (!tuner) {
      return unexpected("queue " + std::to_string(queue_num) + ": " + tuner.error() +
                        " (--no-conntrack-tuning --mapped-mark 0 runs without it)");
    }
    conntrack = std::move(*tuner);
  }
  try {
    return std::unique_ptr<Worker>(new Worker(std::move(config), std::move(*queue),
                                              std::move(*injector), std::move(conntrack)));
  } catch (const std::exception& e) {
    return unexpected("queue " + std::to_string(queue_num) + ": pipeline: " + e.what());
  }
}

Worker::Worker(WorkerConfig config, std::unique_ptr<nfq::NfQueue> queue,
               std::unique_ptr<nfq::RawInjector> injector,
               std::unique_ptr<nfq::ConntrackTuner> conntrack)
    : config_(std::move(config)),
      queue_num_(queue->queue_num()),
      receive_buffer_(queue->receive_buffer()),
      reads_ct_mark_(queue->has_conntrack()),
      queue_(std::move(queue)),
      injector_(std::move(injector)),
      conntrack_(std::move(conntrack)),
      pipeline_(std::make_unique<core::Pipeline>(config_.pipeline)) {
  output_.released.reserve(64);
  output_.injected.reserve(8);
  output_.mapped_flows.reserve(4);
  output_.decisions.reserve(8);
}

const nfq::ConntrackCounters& Worker::conntrack_counters() const {
  static const nfq::ConntrackCounters kNone;
  return conntrack_ ? conntrack_->counters() : kNone;
}

Worker::~Worker() {
  // The thread must finish (and verdict everything) before the queue and pipeline go away.
  request_stop();
  join();
}

void Worker::start() {
  last_loop_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  running_.store(true, std::memory_order_release);
  thread_ = std::jthread([this](std::stop_token stop) {
    run(std::move(stop));
    {
      // Under the lock: a thread waiting in flows() or drain() sees it and stops waiting.
      std::lock_guard lock(tasks_mutex_);
      running_.store(false, std::memory_order_release);
    }
    tasks_cv_.notify_all();
  });
}

bool Worker::alive(Timestamp now, Duration max_silence) const {
  return running_.load(std::memory_order_acquire) && !failed() && now - last_loop() <= max_silence;
}

std::optional<WorkerFlows> Worker::flows(size_t max, Duration timeout) {
  std::unique_lock lock(tasks_mutex_);
  if (!running_.load(std::memory_order_acquire)) return std::nullopt;
  const uint64_t generation = flows_done_;
  flows_max_ = max;
  tasks_.fetch_or(kTaskFlows, std::memory_order_release);
  const bool answered = tasks_cv_.wait_for(lock, timeout, [&] {
    return flows_done_ != generation || !running_.load(std::memory_order_acquire);
  });
  if (!answered || flows_done_ == generation) return std::nullopt;
  return std::exchange(flows_, {});
}

bool Worker::drain(Duration timeout) {
  std::unique_lock lock(tasks_mutex_);
  if (!running_.load(std::memory_order_acquire)) return false;
  const uint64_t generation = drains_done_;
  tasks_.fetch_or(kTaskDrain, std::memory_order_release);
  tasks_cv_.wait_for(lock, timeout, [&] {
    return drains_done_ != generation || !running_.load(std::memory_order_acquire);
  });
  return drains_done_ != generation;
}

void Worker::run_tasks() {
  const unsigned tasks = tasks_.exchange(0, std::memory_order_acq_rel);
  if (tasks == 0) return;
  if (tasks & kTaskDrain) {
    output_.clear();
    pipeline_->drain(Clock::now(), output_);
    tune_conntrack();
    verdict_releases();
    flush_batch();
    send_injections();
    deliver_decisions();
  }
  WorkerFlows summary;
  if (tasks & kTaskFlows) {
    size_t max = 0;
    {
      std::lock_guard lock(tasks_mutex_);
      max = flows_max_;
    }
    summary.queue = queue_num_;
    // Copied outside the lock: the asking thread only waits.
    summary.total = pipeline_->summarize_flows(summary.flows, max);
  }
  {
    std::lock_guard lock(tasks_mutex_);
    if (tasks & kTaskFlows) {
      flows_ = std::move(summary);
      ++flows_done_;
    }
    if (tasks & kTaskDrain) ++drains_done_;
  }
  tasks_cv_.notify_all();
}

void Worker::set_policies(std::shared_ptr<const policy::PolicySet> policies) {
  std::lock_guard lock(policies_mutex_);
  pending_policies_ = std::move(policies);
  policies_requested_.fetch_add(1, std::memory_order_release);
}

bool Worker::policies_current() const {
  return !running_.load(std::memory_order_acquire) ||
         policies_installed_.load(std::memory_order_acquire) ==
             policies_requested_.load(std::memory_order_acquire);
}

void Worker::adopt_policies() {
  const uint64_t requested = policies_requested_.load(std::memory_order_acquire);
  if (requested == policies_installed_.load(std::memory_order_relaxed)) return;
  std::shared_ptr<const policy::PolicySet> policies;
  uint64_t generation = 0;
  {
    std::lock_guard lock(policies_mutex_);
    policies = std::move(pending_policies_);
    generation = policies_requested_.load(std::memory_order_relaxed);
  }
  // The old set stays alive as long as a flow's profile is shared from it.
  if (policies) pipeline_->set_policies(std::move(policies));
  policies_installed_.store(generation, std::memory_order_release);
}

void Worker::request_stop() {
  thread_.request_stop();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run(std::stop_token stop) {
  Timestamp last_timer = Clock::now();
  while (!stop.stop_requested() && !failed()) {
    adopt_policies();
    Timestamp now = Clock::now();
    last_loop_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    if (tasks_.load(std::memory_order_relaxed) != 0) run_tasks();
    holds_packets_.store(pipeline_->has_held_packets(), std::memory_order_relaxed);
    Timestamp deadline = std::min(pipeline_->next_deadline(), last_timer + kTimerInterval);
    pollfd pfd{queue_->fd(), POLLIN, 0};
    int ready = poll(&pfd, 1, poll_timeout_ms(now, deadline, kMaxPollWait));
    if (ready < 0 && errno != EINTR) {
      std::fprintf(stderr, "smtpguardd: queue %u: poll: %s\n", queue_num_, std::strerror(errno));
      failed_.store(true, std::memory_order_relaxed);
      break;
    }
    if (ready > 0) receive_burst(Clock::now());
    now = Clock::now();
    if (now >= pipeline_->next_deadline() || now - last_timer >= kTimerInterval) {
      run_timers(now);
      last_timer = now;
    }
  }
  shutdown();
}

size_t Worker::receive_burst(Timestamp now) {
  size_t packets = 0;
  for (int i = 0; i < kBurstDatagrams; ++i) {
    nfq::ReceiveStatus status = queue_->receive([&](nfq::QueuedPacket& p) {
      on_packet(p, now);
      ++packets;
    });
    if (status == nfq::ReceiveStatus::kWouldBlock) break;
    if (status == nfq::ReceiveStatus::kOverrun) {
      // Packets were lost in the kernel (counted there and by the queue); carry on.
      note_error(ENOBUFS);
      continue;
    }
    if (status == nfq::ReceiveStatus::kError) {
      int err = queue_->last_errno();
      if (err == EBADF || err == ENOTSOCK) {
        std::fprintf(stderr, "smtpguardd: queue %u: receive: %s\n", queue_num_, std::strerror(err));
        failed_.store(true, std::memory_order_relaxed);
      } else {
        note_error(err);
      }
      break;
    }
    now = Clock::now();
  }
  // End of the burst: nothing accepted waits for the next wake-up.
  flush_batch();
  return packets;
}

void Worker::on_packet(nfq::QueuedPacket& p, Timestamp now) {
  if (p.packet.empty()) {
    // Nothing to inspect or to tell whose it is (counted by the queue as malformed).
    send_verdict(p.id, NF_DROP, {}, 0, 0);
    return;
  }

  output_.clear();
  core::PacketMeta meta;
  const uint32_t mapped = config_.mapped_mark;
  // From the ct mark when the kernel attaches it (NFQA_CT), else from the packet mark, into
  // which the queue rule of mapped connections copies the bit.
  meta.conntrack_mapped =
      mapped != 0 && ((p.ct_mark & mapped) == mapped || (p.mark & mapped) == mapped);
  meta.checksum_unverified = p.checksum_unverified && !p.checksum_not_ready;
  meta.in_interface = p.in_interface;
  // The daemon cannot inspect what it did not receive: the truncated exception (the pipeline
  // never returns such a packet as a payload; the kernel would cut it).
  meta.truncated = p.truncated;
  core::PacketVerdict v =
      pipeline_->process(p.id, p.packet, p.checksum_not_ready, now, output_, meta);
  // Before any verdict: see tune_conntrack.
  tune_conntrack();
  // Released packets precede this one on the wire.
  const bool released_itself = verdict_releases(&p);

  switch (v.kind) {
    case VerdictKind::kAccept:
      // A batch verdict also accepts every held packet with a smaller id: batch only while the
      // pipeline holds nothing, and never with a mark (a batch cannot carry one per packet).
      if (v.mark == 0 && !pipeline_->has_held_packets()) {
        accept_batched(p.id);
      } else {
        flush_batch();
        send_verdict(p.id, NF_ACCEPT, {}, v.mark, p.mark);
      }
      break;
    case VerdictKind::kAcceptModified:
      flush_batch();
      send_verdict(p.id, NF_ACCEPT, v.bytes, v.mark, p.mark);
      break;
    case VerdictKind::kDrop:
      // A drop may overtake the pending batch: order only matters for packets that leave.
      send_verdict(p.id, NF_DROP, {}, 0, 0);
      break;
    case VerdictKind::kHold:
      // Everything before the held packet leaves now; later accepts go one by one until the
      // pipeline releases it.
      flush_batch();
      // A packet held and released by the same call (its own RST closed the flow) has its
      // verdict already: nothing may wait for it.
      if (p.mark != 0 && !released_itself) held_marks_[p.id] = p.mark;
      break;
  }
  // What the gateway originates (an answer in place of a removed command, a reset) follows the
  // packet that caused it on the wire.
  send_injections();
  deliver_decisions();
}

void Worker::deliver_decisions() {
  if (output_.decisions.empty()) return;
  if (config_.on_decision) {
    for (const core::Decision& d : output_.decisions) {
      // The sink is not to throw; if it does, the packet path goes on without that line.
      try {
        config_.on_decision(d);
      } catch (...) {
      }
    }
  }
  output_.decisions.clear();
}

void Worker::tune_conntrack() {
  // Called right after the pipeline and before the verdicts and injections of the same call.
  // The kernel applies the change inside the netlink send, so the gateway's own segments
  // (conntrack checks them on output) and every later packet of the connection, the endpoints'
  // answers to the rewrite included, meet a liberal entry. (The packet that caused the mapping
  // has passed conntrack already, before the queue.)
  if (output_.mapped_flows.empty()) return;
  if (conntrack_) {
    for (const core::MappedFlow& f : output_.mapped_flows) {
      if (conntrack_->update(f) == nfq::ConntrackResult::kError)
        note_conntrack_error(conntrack_->last_errno());
    }
  }
  output_.mapped_flows.clear();
}

bool Worker::verdict_releases(const nfq::QueuedPacket* current) {
  if (output_.released.empty()) return false;
  bool released_current = false;
  flush_batch();
  for (const core::Release& r : output_.released) {
    uint32_t original_mark = 0;
    if (current && r.packet_id == current->id) {
      original_mark = current->mark;
      released_current = true;
    } else if (auto it = held_marks_.find(r.packet_id); it != held_marks_.end()) {
      original_mark = it->second;
      held_marks_.erase(it);
    }
    switch (r.kind) {
      case VerdictKind::kAcceptModified:
        send_verdict(r.packet_id, NF_ACCEPT, r.bytes, r.mark, original_mark);
        break;
      case VerdictKind::kDrop:
        send_verdict(r.packet_id, NF_DROP, {}, 0, 0);
        break;
      case VerdictKind::kAccept:
      case VerdictKind::kHold:  // not a release kind; passing it is the only safe reading
        send_verdict(r.packet_id, NF_ACCEPT, {}, r.mark, original_mark);
        break;
    }
  }
  output_.released.clear();
  return released_current;
}

void Worker::send_injections() {
  if (output_.injected.empty()) return;
  // An accept still waiting in the batch is a packet of this call or an earlier one: it goes
  // first. The kernel reinjects a verdicted packet inside the netlink send, so once the flush
  // returns, it is ahead of anything sent below.
  flush_batch();
  for (const core::Injection& i : output_.injected) {
    if (!injector_->send(i.bytes)) note_inject_error(injector_->last_errno());
  }
  output_.injected.clear();
}

void Worker::run_timers(Timestamp now) {
  output_.clear();
  pipeline_->on_timer(now, output_);
  tune_conntrack();
  verdict_releases();
  send_injections();
  deliver_decisions();
}

void Worker::accept_batched(uint32_t id) {
  batch_pending_ = true;
  batch_max_id_ = id;
}

void Worker::flush_batch() {
  if (!batch_pending_) return;
  batch_pending_ = false;
  if (int err = queue_->batch_verdict(batch_max_id_, NF_ACCEPT); err != 0) note_error(err);
}

void Worker::send_verdict(uint32_t id, uint32_t verdict, std::span<const uint8_t> payload,
                          uint32_t mark_bits, uint32_t original_mark) {
  // The daemon owns only its mark bits: the rest of skb->mark (policy routing, other tools)
  // is kept as it was when the packet was queued.
  std::optional<uint32_t> mark;
  if (mark_bits != 0) mark = original_mark | mark_bits;
  int err = queue_->verdict(id, verdict, payload, mark);
  // A transient shortage of kernel memory is worth one retry: an unsent verdict leaves the
  // packet queued until shutdown.
  if (err == ENOBUFS || err == ENOMEM || err == EAGAIN)
    err = queue_->verdict(id, verdict, payload, mark);
  if (err != 0) note_error(err);
}

void Worker::note_error(int err) {
  Timestamp now = Clock::now();
  if (now - last_error_log_ < kErrorLogInterval) return;
  last_error_log_ = now;
  std::fprintf(stderr, "smtpguardd: queue %u: netlink: %s (see nfq_* counters)\n", queue_num_,
               std::strerror(err));
}

void Worker::note_inject_error(int err) {
  // Logged separately from netlink errors, so that a burst of one never hides the other.
  Timestamp now = Clock::now();
  if (now - last_inject_log_ < kErrorLogInterval) return;
  last_inject_log_ = now;
  std::fprintf(stderr, "smtpguardd: queue %u: injecting a packet: %s (see inject_* counters)\n",
               queue_num_, std::strerror(err));
}

void Worker::note_conntrack_error(int err) {
  Timestamp now = Clock::now();
  if (now - last_conntrack_log_ < kErrorLogInterval) return;
  last_conntrack_log_ = now;
  std::fprintf(stderr,
               "smtpguardd: queue %u: updating a mapped connection's conntrack entry: %s (see "
               "conntrack_* counters; a `ct state invalid drop` rule may drop its packets, and "
               "without the mapped bit a restarted daemon cannot tell it was mapped)\n",
               queue_num_, std::strerror(err));
}

void Worker::shutdown() {
  // main emptied the rules before asking us to stop: keep verdicting until the queue stays
  // quiet, so that no packet is left for the kernel to drop at unbind.
  const Timestamp start = Clock::now();
  Timestamp quiet_since = start;
  Timestamp last_timer = start;
  for (int round = 0; round < 10000 && !failed(); ++round) {
    Timestamp now = Clock::now();
    if (now - quiet_since >= kDrainQuiet || now - start >= kDrainCap) break;
    pollfd pfd{queue_->fd(), POLLIN, 0};
    int ready = poll(&pfd, 1, poll_timeout_ms(now, now + kDrainPoll, kDrainPoll));
    if (ready > 0 && receive_burst(Clock::now()) > 0) quiet_since = Clock::now();
    now = Clock::now();
    if (now >= pipeline_->next_deadline() || now - last_timer >= kTimerInterval) {
      run_timers(now);
      last_timer = now;
    }
  }

  // Whatever the pipeline still holds is decided now. The kernel handles a verdict inside the
  // send, so a refusal (e.g. ENOENT for an id it no longer has) is already on the socket: one
  // more read counts it, and verdicts anything that slipped in meanwhile.
  for (int round = 0; round < 4; ++round) {
    output_.clear();
    pipeline_->drain(Clock::now(), output_);
    tune_conntrack();
    verdict_releases();
    flush_batch();
    // The rules are disarmed by now, so nothing queues these back; they still reach the peers.
    send_injections();
    deliver_decisions();
    if (receive_burst(Clock::now()) == 0 && !pipeline_->has_held_packets()) break;
  }
  held_marks_.clear();

  final_kernel_stats_ = nfq::read_kernel_stats(queue_num_);
  if (final_kernel_stats_ && final_kernel_stats_->queue_total != 0) {
    std::fprintf(stderr,
                 "smtpguardd: queue %u: %u packets still queued at unbind (the kernel drops "
                 "them)\n",
                 queue_num_, final_kernel_stats_->queue_total);
  } else if (config_.verbose) {
    std::fprintf(stderr, "smtpguardd: queue %u: drained, unbinding\n", queue_num_);
  }
  queue_->close();
  unbound_.store(true, std::memory_order_release);
}

std::optional<nfq::KernelQueueStats> Worker::kernel_stats() const {
  if (unbound_.load(std::memory_order_acquire)) return final_kernel_stats_;
  return nfq::read_kernel_stats(queue_num_);
}

}  // namespace sg::daemon
