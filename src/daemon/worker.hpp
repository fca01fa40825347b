#pragma once
// One worker thread per NFQUEUE: receive, run the pipeline, deliver its output (verdicts,
// injections, decisions: nfq/verdict_delivery.hpp). Owns its queue and its pipeline, shares
// nothing on the packet path; counters are atomics that main sums.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "control/worker_queries.hpp"
#include "core/flow_summary.hpp"
#include "core/pipeline.hpp"
#include "nfq/conntrack.hpp"
#include "nfq/injector.hpp"
#include "nfq/queue.hpp"
#include "nfq/verdict_delivery.hpp"
#include "util/expected.hpp"
#include "util/time.hpp"

namespace sg::daemon {

struct WorkerConfig {
  nfq::QueueOptions queue;
  core::PipelineConfig pipeline;
  uint32_t inject_mark = 0;      // SO_MARK of the raw sockets: the rules let these packets pass
  bool conntrack_tuning = true;  // make the conntrack entries of mapped connections liberal
  // Bit set in the ct mark of every connection the daemon starts mapping, and read back from
  // each queued packet (its ct mark when the kernel attaches conntrack attributes, else its
  // packet mark, into which the queue rule copies the bit): an unknown flow with it is reset,
  // not picked up. 0: neither.
  uint32_t mapped_mark = 0;
  bool verbose = false;
  // The CPU the worker thread is pinned to (--worker-cpus); nullopt: wherever the scheduler
  // puts it. A failure to pin is logged and the worker runs unpinned.
  std::optional<uint16_t> cpu;
  // Each policy decision of the pipeline (core::Output::decisions), called in the worker thread
  // after the packet's verdicts; must not block for long and must not throw. Null: ignored.
  std::function<void(const core::Decision&)> on_decision;
};

// A copy of one worker's flow table (Worker::flows).
using control::WorkerFlows;

class Worker {
 public:
  // Binds the queue, opens the injector's raw sockets and (unless turned off) the conntrack
  // socket in the calling thread, so that startup errors reach main before "ready".
  static Expected<std::unique_ptr<Worker>, std::string> create(WorkerConfig config);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  // Asks the thread to finish: it verdicts what is still queued, drains the pipeline's held
  // packets and unbinds. join() waits for that.
  void request_stop();
  void join();

  // Hands a new policy set to the worker (reload; any thread). The worker thread installs it
  // between packets, within one poll interval: connections that start afterwards get it, those
  // under way keep the profile they started with (core::Pipeline::set_policies).
  void set_policies(std::shared_ptr<const policy::PolicySet> policies);
  // True once the worker thread has installed the last set handed to set_policies (or its
  // thread is not running).
  bool policies_current() const;

  // Asks the worker thread for a summary of its flows (at most `max`) and waits at most
  // `timeout` for it; the thread answers between packets, within one poll interval. Any thread
  // but the worker's. nullopt: the thread is not running or did not answer in time.
  std::optional<WorkerFlows> flows(size_t max, Duration timeout);
  // Asks the worker thread to decide every held packet now and to reset the connections whose
  // sequence numbers it maps (core::Pipeline::drain, as at shutdown), and waits at most `timeout`
  // for it. For removing the rules while running: once they are disarmed, nothing of those
  // connections reaches the daemon any more. False: not running, or no answer in time.
  bool drain(Duration timeout);

  // When the worker thread last went round its loop: at least every poll interval (200 ms) plus
  // the time one burst of packets takes, while it runs.
  Timestamp last_loop() const {
    return Timestamp(Duration(last_loop_.load(std::memory_order_relaxed)));
  }
  // Running, not failed, and round its loop within `max_silence` of `now` (the watchdog).
  bool alive(Timestamp now, Duration max_silence) const;
  // The pipeline held packets at the last loop round.
  bool holds_packets() const { return holds_packets_.load(std::memory_order_relaxed); }
  // The flows the pipeline tracked at the last loop round (smtpguardctl status: each worker's
  // share).
  size_t flows_tracked() const { return flows_tracked_.load(std::memory_order_relaxed); }
  // The CPU the thread is pinned to; nullopt: not pinned (not asked, or pinning failed).
  std::optional<uint16_t> pinned_cpu() const {
    const int cpu = pinned_cpu_.load(std::memory_order_relaxed);
    return cpu < 0 ? std::nullopt : std::optional<uint16_t>(static_cast<uint16_t>(cpu));
  }

  uint16_t queue_num() const { return queue_num_; }
  size_t receive_buffer() const { return receive_buffer_; }
  // True once the thread gave up on its socket (main then shuts the daemon down).
  bool failed() const { return failed_.load(std::memory_order_relaxed); }

  // The kernel's view of the queue: read live while bound, the last reading after unbind.
  std::optional<nfq::KernelQueueStats> kernel_stats() const;

  const core::Counters& pipeline_counters() const { return pipeline_->counters(); }
  const nfq::QueueCounters& queue_counters() const { return queue_->counters(); }
  const nfq::InjectCounters& inject_counters() const { return injector_->counters(); }
  // All zero when conntrack tuning and the mapped mark are off.
  const nfq::ConntrackCounters& conntrack_counters() const;
  bool injects_ipv6() const { return injector_->has_ipv6(); }
  // Queued packets carry their ct mark (see WorkerConfig::mapped_mark).
  bool reads_ct_mark() const { return reads_ct_mark_; }

 private:
  Worker(WorkerConfig config, std::unique_ptr<nfq::NfQueue> queue,
         std::unique_ptr<nfq::RawInjector> injector,
         std::unique_ptr<nfq::ConntrackTuner> conntrack);

  void run(std::stop_token stop);
  // Pins the worker thread to WorkerConfig::cpu, if set (in the worker thread).
  void pin();
  // Reads up to a burst of datagrams, processes their packets; returns how many packets came.
  size_t receive_burst(Timestamp now);
  void on_packet(nfq::QueuedPacket& packet, Timestamp now);
  // Installs a set handed in by set_policies, if there is one.
  void adopt_policies();
  void run_timers(Timestamp now);
  // Runs what flows() and drain() asked for, if anything.
  void run_tasks();
  void shutdown();

  WorkerConfig config_;
  uint16_t queue_num_ = 0;
  size_t receive_buffer_ = 0;
  bool reads_ct_mark_ = false;
  std::unique_ptr<nfq::NfQueue> queue_;
  std::unique_ptr<nfq::RawInjector> injector_;
  // Null with --no-conntrack-tuning and no mapped mark.
  std::unique_ptr<nfq::ConntrackTuner> conntrack_;
  std::unique_ptr<core::Pipeline> pipeline_;
  core::Output output_;  // releases, injections and mapped flows of the current pipeline call
  // Verdicts, injections and decisions of each pipeline call, in their order.
  std::unique_ptr<nfq::VerdictDelivery> delivery_;
  std::atomic<bool> failed_{false};
  std::optional<nfq::KernelQueueStats> final_kernel_stats_;  // published by unbound_
  std::atomic<bool> unbound_{false};
  // Reload: the set main hands in, and how many were handed in / installed.
  std::mutex policies_mutex_;
  std::shared_ptr<const policy::PolicySet> pending_policies_;  // guarded by policies_mutex_
  std::atomic<uint64_t> policies_requested_{0};
  std::atomic<uint64_t> policies_installed_{0};
  std::atomic<bool> running_{false};
  std::atomic<Duration::rep> last_loop_{0};  // Timestamp::time_since_epoch().count()
  std::atomic<bool> holds_packets_{false};
  std::atomic<size_t> flows_tracked_{0};
  std::atomic<int> pinned_cpu_{-1};
  // Tasks other threads hand to the worker thread (flows(), drain()): the bits of tasks_ say
  // what is asked; the thread answers under tasks_mutex_ and bumps the task's generation.
  static constexpr unsigned kTaskFlows = 1;
  static constexpr unsigned kTaskDrain = 2;
  std::atomic<unsigned> tasks_{0};
  std::mutex tasks_mutex_;
  std::condition_variable tasks_cv_;
  size_t flows_max_ = 0;      // guarded by tasks_mutex_
  WorkerFlows flows_;         // guarded by tasks_mutex_
  uint64_t flows_done_ = 0;   // guarded by tasks_mutex_
  uint64_t drains_done_ = 0;  // guarded by tasks_mutex_
  std::jthread thread_;
};

// The workers, one per queue in queue order (main owns them; the control commands read them).
using Workers = std::vector<std::unique_ptr<Worker>>;

// The control plane's questions (control/worker_queries.hpp), answered over the workers.
control::FlowListing list_flows(const Workers& workers, size_t max_total, Duration timeout);
bool settle(const Workers& workers, Duration timeout);

}  // namespace sg::daemon
