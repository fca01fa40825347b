#pragma once
// Keeps the daemon's nftables table in place while it runs. `nft flush ruleset` (the first line
// of Debian's /etc/nftables.conf, so every `systemctl reload nftables`) deletes table inet
// smtpguard under the daemon, and SMTP then passes uninspected. RulesWatch listens to the
// namespace's nftables events (NFNLGRP_NFTABLES) and, when another process's transaction
// deleted or changed a table of ours, has it put back at once through the installer.
//
// The kernel announces each object a transaction touched (NFT_MSG_NEW/DEL TABLE, CHAIN, RULE),
// then the new generation (NFT_MSG_NEWGEN), each stamped with the netlink port of the socket
// that sent the transaction. The daemon's own transactions (the restore itself, `smtpguardctl
// rules install|remove`) come from ports it knows (nft::sent_by_this_process) and are ignored,
// so a restore never triggers another; on top of that,
// restores are at least kMinInterval apart. The daemon starts the watcher after its install and
// stops it before it disarms, so neither is seen.
//
// RestoreSchedule is the decision, pure and tested; RulesWatch is the socket and the thread.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "util/counter_set.hpp"
#include "util/expected.hpp"
#include "util/time.hpp"

namespace sg::nft {

#define SG_RULES_WATCH_COUNTERS(X)                                                            \
  X(rules_changed_under, "transactions of another process that deleted or changed our table") \
  X(rules_restored, "times the daemon's table was put back after it vanished or changed")     \
  X(rules_restore_failed, "attempts to put the daemon's table back that failed")              \
  X(rules_events_lost, "nftables event overruns (ENOBUFS): a change may have been missed")

SG_DECLARE_COUNTERS(RulesWatchCounter, kRulesWatchCounterInfo, SG_RULES_WATCH_COUNTERS)
using RulesWatchCounters = CounterSet<RulesWatchCounter>;

// What one nftables event says, for the objects that matter here.
enum class NftObject : uint8_t {
  kTable,
  kChain,
  kRule,
  kGeneration,  // end of a transaction
  kOther,       // sets, elements, objects, flowtables: not ours to watch
};

struct NftEvent {
  NftObject object = NftObject::kOther;
  bool deleted = false;  // NFT_MSG_DEL*
  uint16_t family = 0;   // NFPROTO_*
  std::string table;     // kTable, kChain, kRule
  uint32_t portid = 0;   // the netlink port of the socket that sent the transaction
};

// The event's object is in a table of ours: "smtpguard" in inet, ip or ip6.
bool touches_our_table(const NftEvent& e);

// When to restore. Events of one transaction arrive before its generation event; only a
// transaction of another process that touched our table calls for a restore.
class RestoreSchedule {
 public:
  static constexpr Duration kMinInterval = milliseconds(100);
  static constexpr Duration kRetryInterval = seconds(1);

  // An object event; `now` is when it was read.
  void on_object(const NftEvent& e, Timestamp now);
  // The transaction's end. `own`: sent by the daemon itself.
  void on_generation(bool own);
  // Events were lost: whatever happened, check by restoring.
  void on_overrun(Timestamp now);

  bool pending() const { return pending_; }
  // Whether the table itself went (else only chains or rules were deleted or added).
  bool table_removed() const { return table_removed_; }
  // When the first event of the pending change was read.
  Timestamp since() const { return since_; }
  // How long until a restore may run; nullopt when none is pending, zero when it is due.
  std::optional<Duration> wait(Timestamp now) const;
  // The restore ran: succeeded, or failed (retried after kRetryInterval).
  void restored(Timestamp now);
  void failed(Timestamp now);
  // The changes of the current transaction that concern us, so far (a test's view).
  bool touched() const { return touched_; }

 private:
  bool touched_ = false;  // in the transaction being announced
  bool touched_table_ = false;
  Timestamp touched_since_{};
  bool pending_ = false;
  bool table_removed_ = false;
  Timestamp since_{};
  std::optional<Timestamp> not_before_;
};

// The watcher's thread calls these. `restore` puts the tables back and returns their names
// ("inet smtpguard"), or an empty string when there is nothing to restore (not installed by this
// daemon, or disarmed); `log` writes one line.
struct RulesWatchHooks {
  std::function<Expected<std::string, std::string>()> restore;
  std::function<void(const std::string&)> log;
};

class RulesWatch {
 public:
  // Opens the event socket in the caller's network namespace and starts the thread.
  static Expected<std::unique_ptr<RulesWatch>, std::string> start(RulesWatchHooks hooks);
  ~RulesWatch();
  RulesWatch(const RulesWatch&) = delete;
  RulesWatch& operator=(const RulesWatch&) = delete;

  // Joins the thread; no restore runs after it returns. Idempotent.
  void stop();
  const RulesWatchCounters& counters() const { return counters_; }

 private:
  RulesWatch(int socket_fd, int wake_fd, RulesWatchHooks hooks);
  void run();
  void read_events(Timestamp now);
  void restore();

  int fd_ = -1;
  int wake_fd_ = -1;
  RulesWatchHooks hooks_;
  RestoreSchedule schedule_;
  RulesWatchCounters counters_;
  bool failing_ = false;  // the last restore failed: further failures are not logged again
  std::thread thread_;
};

}  // namespace sg::nft
