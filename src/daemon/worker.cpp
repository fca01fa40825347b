#include "daemon/worker.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <thread>
#include <utility>

#include "daemon/cpu_affinity.hpp"

namespace sg::daemon {
namespace {

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
      pipeline_(std::make_unique<core::Pipeline>(config_.pipeline)),
      delivery_(std::make_unique<nfq::VerdictDelivery>(*queue_, *injector_, conntrack_.get(),
                                                       config_.on_decision)) {
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
    pin();
    run(std::move(stop));
    {
      // Under the lock: a thread waiting in flows() or drain() sees it and stops waiting.
      std::lock_guard lock(tasks_mutex_);
      running_.store(false, std::memory_order_release);
    }
    tasks_cv_.notify_all();
  });
}

void Worker::pin() {
  if (!config_.cpu) return;
  if (auto pinned = pin_this_thread(*config_.cpu); !pinned) {
    // Not fatal: an unpinned worker inspects as well, only without the cache locality.
    std::fprintf(stderr, "smtpguardd: queue %u: %s; the worker runs unpinned\n", queue_num_,
                 pinned.error().c_str());
    return;
  }
  pinned_cpu_.store(*config_.cpu, std::memory_order_relaxed);
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
    delivery_->deliver(output_);
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
    flows_tracked_.store(pipeline_->flow_count(), std::memory_order_relaxed);
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
      delivery_->note_netlink_error(ENOBUFS);
      continue;
    }
    if (status == nfq::ReceiveStatus::kError) {
      int err = queue_->last_errno();
      if (err == EBADF || err == ENOTSOCK) {
        std::fprintf(stderr, "smtpguardd: queue %u: receive: %s\n", queue_num_, std::strerror(err));
        failed_.store(true, std::memory_order_relaxed);
      } else {
        delivery_->note_netlink_error(err);
      }
      break;
    }
    now = Clock::now();
  }
  // End of the burst: nothing accepted waits for the next wake-up.
  delivery_->flush();
  return packets;
}

void Worker::on_packet(nfq::QueuedPacket& p, Timestamp now) {
  if (p.packet.empty()) {
    // Nothing to inspect or to tell whose it is (counted by the queue as malformed).
    delivery_->drop(p.id);
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
  delivery_->deliver(output_, p, v, pipeline_->has_held_packets());
}

void Worker::run_timers(Timestamp now) {
  output_.clear();
  pipeline_->on_timer(now, output_);
  delivery_->deliver(output_);
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
    // The rules are disarmed by now, so nothing queues the injections back; they still reach
    // the peers.
    delivery_->deliver(output_);
    if (receive_burst(Clock::now()) == 0 && !pipeline_->has_held_packets()) break;
  }
  delivery_->forget_held();

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

control::FlowListing list_flows(const Workers& workers, size_t max_total, Duration timeout) {
  control::FlowListing l;
  const size_t per_worker = workers.empty() ? 0 : max_total / workers.size();
  for (const auto& w : workers) {
    if (auto f = w->flows(per_worker, timeout)) {
      l.answers.push_back(std::move(*f));
    } else {
      l.missing.push_back(w->queue_num());
    }
  }
  return l;
}

bool settle(const Workers& workers, Duration timeout) {
  const Timestamp deadline = Clock::now() + timeout;
  for (;;) {
    bool settled = true;
    for (const auto& w : workers) {
      if (!w->drain(timeout)) settled = false;
      if (auto k = w->kernel_stats(); k && k->queue_total != 0) settled = false;
      if (w->holds_packets()) settled = false;
    }
    if (settled) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace sg::daemon
