#include "nft/rules_watch.hpp"

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <vector>

#include "nft/rules.hpp"

namespace sg::nft {
namespace {

// Socket buffer for the events: `nft flush ruleset` on a large host ruleset announces every
// rule, chain and set it deletes at once.
constexpr int kReceiveBuffer = 4 << 20;

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

// The attributes of an nftables message by type (the types used here are all small).
struct Attributes {
  static constexpr uint16_t kMax = 16;
  std::array<const nlattr*, kMax> by_type{};

  explicit Attributes(const nlmsghdr* nlh) {
    mnl_attr_parse(
        nlh, sizeof(nfgenmsg),
        [](const nlattr* attr, void* data) {
          const uint16_t type = mnl_attr_get_type(attr);
          if (type < kMax) static_cast<Attributes*>(data)->by_type[type] = attr;
          return MNL_CB_OK;
        },
        this);
  }
  std::string text(uint16_t type) const {
    const nlattr* a = type < kMax ? by_type[type] : nullptr;
    if (!a || mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0) return {};
    return mnl_attr_get_str(a);
  }
};

NftEvent parse_event(const nlmsghdr* nlh) {
  NftEvent e;
  if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES) return e;
  if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(nfgenmsg))) return e;
  e.family = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh))->nfgen_family;
  e.portid = nlh->nlmsg_pid;
  switch (NFNL_MSG_TYPE(nlh->nlmsg_type)) {
    case NFT_MSG_NEWTABLE:
    case NFT_MSG_DELTABLE:
      e.object = NftObject::kTable;
      e.deleted = NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_DELTABLE;
      e.table = Attributes(nlh).text(NFTA_TABLE_NAME);
      break;
    case NFT_MSG_NEWCHAIN:
    case NFT_MSG_DELCHAIN:
      e.object = NftObject::kChain;
      e.deleted = NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_DELCHAIN;
      e.table = Attributes(nlh).text(NFTA_CHAIN_TABLE);
      break;
    case NFT_MSG_NEWRULE:
    case NFT_MSG_DELRULE:
      e.object = NftObject::kRule;
      e.deleted = NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_DELRULE;
      e.table = Attributes(nlh).text(NFTA_RULE_TABLE);
      break;
    case NFT_MSG_NEWGEN:
      e.object = NftObject::kGeneration;
      break;
    default:
      break;
  }
  return e;
}

int milliseconds_of(Duration d) {
  return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

}  // namespace

// ---- RestoreSchedule ------------------------------------------------------------------------

bool touches_our_table(const NftEvent& e) {
  if (e.object != NftObject::kTable && e.object != NftObject::kChain &&
      e.object != NftObject::kRule)
    return false;
  if (e.family != NFPROTO_INET && e.family != NFPROTO_IPV4 && e.family != NFPROTO_IPV6)
    return false;
  return e.table == RuleSet::kTableName;
}

void RestoreSchedule::on_object(const NftEvent& e, Timestamp now) {
  if (!touches_our_table(e)) return;
  if (!touched_) touched_since_ = now;
  touched_ = true;
  touched_table_ = touched_table_ || (e.object == NftObject::kTable && e.deleted);
}

void RestoreSchedule::on_generation(bool own) {
  if (touched_ && !own) {
    if (!pending_) {
      since_ = touched_since_;
      table_removed_ = false;
    }
    pending_ = true;
    table_removed_ = table_removed_ || touched_table_;
  }
  touched_ = false;
  touched_table_ = false;
}

void RestoreSchedule::on_overrun(Timestamp now) {
  if (!pending_) {
    since_ = now;
    table_removed_ = false;
  }
  pending_ = true;
}

std::optional<Duration> RestoreSchedule::wait(Timestamp now) const {
  if (!pending_) return std::nullopt;
  if (!not_before_ || now >= *not_before_) return Duration::zero();
  return *not_before_ - now;
}

void RestoreSchedule::restored(Timestamp now) {
  pending_ = false;
  table_removed_ = false;
  not_before_ = now + kMinInterval;
}

void RestoreSchedule::failed(Timestamp now) {
  // Still pending: tried again later, never in a tight loop.
  not_before_ = now + kRetryInterval;
}

// ---- RulesWatch -----------------------------------------------------------------------------

Expected<std::unique_ptr<RulesWatch>, std::string> RulesWatch::start(RulesWatchHooks hooks) {
  const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
  if (fd < 0) return unexpected(errno_text("rules watch: netlink socket"));
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  int group = NFNLGRP_NFTABLES;
  const int buffer = kReceiveBuffer;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0 ||
      ::setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
    std::string error = errno_text("rules watch: subscribing to nftables events");
    ::close(fd);
    return unexpected(std::move(error));
  }
  // Beyond rmem_max with the privilege to (the daemon runs as root), else as large as allowed.
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof(buffer)) < 0)
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
  const int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    std::string error = errno_text("rules watch: eventfd");
    ::close(fd);
    return unexpected(std::move(error));
  }
  std::unique_ptr<RulesWatch> watch(new RulesWatch(fd, wake, std::move(hooks)));
  watch->thread_ = std::thread([w = watch.get()] { w->run(); });
  return watch;
}

RulesWatch::RulesWatch(int socket_fd, int wake_fd, RulesWatchHooks hooks)
    : fd_(socket_fd), wake_fd_(wake_fd), hooks_(std::move(hooks)) {}

RulesWatch::~RulesWatch() {
  stop();
  if (fd_ >= 0) ::close(fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void RulesWatch::stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  thread_.join();
}

void RulesWatch::run() {
  for (;;) {
    const Timestamp now = Clock::now();
    int timeout = -1;
    if (auto wait = schedule_.wait(now)) {
      if (*wait == Duration::zero()) {
        restore();
        continue;
      }
      timeout = std::max(1, milliseconds_of(*wait));
    }
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) {
      hooks_.log(errno_text("rules watch: poll") + "; no longer watching the ruleset");
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents != 0) read_events(Clock::now());
  }
}

void RulesWatch::read_events(Timestamp now) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
  // Bounded: what is queued now, not what keeps arriving during a long flush.
  for (int round = 0; round < 256; ++round) {
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        // The socket overflowed: a change of our table may be among the lost events.
        counters_.add(RulesWatchCounter::rules_events_lost);
        schedule_.on_overrun(now);
        continue;
      }
      return;  // EAGAIN: all read
    }
    int remaining = static_cast<int>(n);
    for (auto* m = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(m, remaining);
         m = mnl_nlmsg_next(m, &remaining)) {
      const NftEvent e = parse_event(m);
      if (e.object == NftObject::kGeneration) {
        const bool was_pending = schedule_.pending();
        const bool touched = schedule_.touched();
        const bool own = sent_by_this_process(e.portid);
        schedule_.on_generation(own);
        if (touched && !own && !was_pending) counters_.add(RulesWatchCounter::rules_changed_under);
      } else {
        schedule_.on_object(e, now);
      }
    }
  }
}

void RulesWatch::restore() {
  const bool removed = schedule_.table_removed();
  const Timestamp since = schedule_.since();
  // The installer builds its messages with allocations that may throw; on this thread that is a
  // failed attempt, not the end of the daemon.
  Expected<std::string, std::string> restored = std::string();
  try {
    restored = hooks_.restore();
  } catch (const std::exception& e) {
    restored = unexpected(std::string(e.what()));
  }
  const Timestamp done = Clock::now();
  if (!restored) {
    counters_.add(RulesWatchCounter::rules_restore_failed);
    schedule_.failed(done);
    if (!failing_)
      hooks_.log("rules: putting the table back failed: " + restored.error() +
                 "; retrying every second, SMTP is not inspected meanwhile");
    failing_ = true;
    return;
  }
  schedule_.restored(done);
  failing_ = false;
  if (restored->empty()) return;  // nothing of ours to restore: `rules remove`, or disarmed
  counters_.add(RulesWatchCounter::rules_restored);
  hooks_.log("rules: table " + *restored + " was " +
             (removed ? "removed under the daemon (nft flush ruleset?)"
                      : "changed under the daemon (chains or rules deleted or added)") +
             "; reinstalled in " + std::to_string(milliseconds_of(done - since)) + " ms");
}

}  // namespace sg::nft
