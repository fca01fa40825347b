#!/bin/sh
# smtpguard for hosts managed with iptables (iptables-nft or legacy): the equivalent of
# nft/smtpguard.nft. Diverts SMTP into NFQUEUE for smtpguardd, IPv4 and IPv6.
#
#   usage: smtpguard-iptables.sh add|disarm|remove
#
# `disarm` only unhooks the SMTPGUARD chains (nothing new is queued). Removing the connmark rules
# can release the namespace's last conntrack user, and unregistering conntrack's hooks drops
# every packet still waiting in a queue: for a stop that loses nothing, disarm, stop smtpguardd
# (it drains), then remove.
#
# Environment (defaults in brackets):
#   SMTPGUARD_QUEUES     queue or range, iptables style          [0:1]
#                        (a fixed example: it must be smtpguardd's own range, whose
#                        default queues = auto is one queue per CPU, 0..K-1; run the daemon
#                        with --queues 0-1, or set e.g. 0:3 for four workers, 0 for one)
#   SMTPGUARD_PORT       SMTP port                                [25]
#   SMTPGUARD_DONE_MARK  smtpguardd's --done-mark bit              [0x00100000]
#                        (a finished connection's SYN, FIN and RST are still queued; a SYN
#                        clears the bit)
#   SMTPGUARD_INJECT_MARK
#                        smtpguardd's --inject-mark (its own packets) [0x00200000]
#   SMTPGUARD_MAPPED_MARK
#                        smtpguardd's --mapped-mark (0: no such rule)  [0x00400000]
#   SMTPGUARD_HOOKS      built-in chains to divert from            [FORWARD]
#                        (FORWARD for a gateway, "INPUT OUTPUT" for the mail server itself)
#   SMTPGUARD_BYPASS     1: pass SMTP uninspected when no daemon    [0]
#                        listens on a queue (fail open, an explicit
#                        choice); 0: drop it (fail closed)
#
# Why the `security` table: its chains run after `filter` (priority 50 with legacy iptables,
# 150 with iptables-nft; `filter` is 0), so a packet the
# host's own rules drop is never queued, and a packet smtpguardd accepts has already passed
# them. (An accepted queued packet resumes at the next table, not the next rule: a rule in
# `filter` would let it skip the operator's later filter rules.)
#
# The verdict's mark is copied to the connection in mangle POSTROUTING, which every forwarded or
# locally sent packet crosses. With INPUT alone (no OUTPUT) the mark is never saved and finished
# connections stay queued (still correct, only slower); divert OUTPUT too.
set -eu

action="${1:-}"
queues="${SMTPGUARD_QUEUES:-0:1}"
port="${SMTPGUARD_PORT:-25}"
mark="${SMTPGUARD_DONE_MARK:-0x00100000}"
inject_mark="${SMTPGUARD_INJECT_MARK:-0x00200000}"
mapped_mark="${SMTPGUARD_MAPPED_MARK:-0x00400000}"
hooks="${SMTPGUARD_HOOKS:-FORWARD}"
bypass="${SMTPGUARD_BYPASS:-0}"
case "$bypass" in
  0 | 1) ;;
  *)
    echo "$0: SMTPGUARD_BYPASS must be 0 (fail closed) or 1 (fail open), not '$bypass'" >&2
    exit 2
    ;;
esac

# Every bit but the done mark: CONNMARK --and-mark with it clears the done bit alone.
keep_mark=$(printf '0x%08x' $((~mark & 0xffffffff)))

case "$queues" in
  *:*) queue_target="--queue-balance $queues" ;;
  *) queue_target="--queue-num $queues" ;;
esac
# Connections whose sequence numbers smtpguardd maps: never --queue-bypass (see below).
mapped_target="$queue_target"
[ "$bypass" = "1" ] && queue_target="$queue_target --queue-bypass"
# Never --queue-cpu-fanout: it spreads by CPU, not by connection.

disarm_one() {
  ipt="$1"
  for hook in FORWARD INPUT OUTPUT; do
    # Bounded: each -D removes one jump; there is never more than one per hook.
    for _ in 1 2 3 4; do
      "$ipt" -w -t security -D "$hook" -p tcp -j SMTPGUARD 2>/dev/null || break
    done
  done
}

remove_one() {
  ipt="$1"
  disarm_one "$ipt"
  for _ in 1 2 3 4; do
    "$ipt" -w -t mangle -D POSTROUTING -j SMTPGUARD_MARK 2>/dev/null || break
  done
  "$ipt" -w -t security -F SMTPGUARD 2>/dev/null || true
  "$ipt" -w -t security -X SMTPGUARD 2>/dev/null || true
  "$ipt" -w -t mangle -F SMTPGUARD_MARK 2>/dev/null || true
  "$ipt" -w -t mangle -X SMTPGUARD_MARK 2>/dev/null || true
}

add_one() {
  ipt="$1"
  remove_one "$ipt"  # idempotent: re-running replaces
  "$ipt" -w -t security -N SMTPGUARD
  # Packets smtpguardd sends itself (answers, resets) carry its inject mark: queueing them in
  # OUTPUT would hand them back to the daemon.
  "$ipt" -w -t security -A SMTPGUARD -m mark --mark "$inject_mark/$inject_mark" -j ACCEPT
  # A SYN opens a new connection, even when conntrack takes it into the entry of an old one
  # (after a reset, from CLOSE or TIME_WAIT), connmark and all: the old connection's done bit
  # must not let the new one bypass inspection, so the SYN clears it.
  "$ipt" -w -t security -A SMTPGUARD -p tcp --tcp-flags SYN SYN -m connmark --mark "$mark/$mark" \
    -j CONNMARK --and-mark "$keep_mark"
  # Connections smtpguardd finished with (STARTTLS, reset) bypass the queue in the kernel - all
  # but the packets that open or end a connection (SYN, FIN, RST): smtpguardd sees those.
  "$ipt" -w -t security -A SMTPGUARD -p tcp --tcp-flags SYN,RST,FIN NONE \
    -m connmark --mark "$mark/$mark" -j ACCEPT
  # Connections whose sequence numbers smtpguardd maps (it sets the bit in the connmark) are
  # queued without bypass: passed unmapped while no daemon listens they would be corrupted;
  # dropped, they are retransmitted and a new daemon resets them. Same queues, same worker.
  if [ "$mapped_mark" != "0" ]; then
    # The packet mark tells smtpguardd the connection is mapped.
    "$ipt" -w -t security -A SMTPGUARD -m connmark --mark "$mapped_mark/$mapped_mark" \
      -j MARK --or-mark "$mapped_mark"
    # shellcheck disable=SC2086
    "$ipt" -w -t security -A SMTPGUARD -m connmark --mark "$mapped_mark/$mapped_mark" \
      -j NFQUEUE $mapped_target
  fi
  # Both directions; --queue-balance hashes both addresses symmetrically, so a connection
  # stays in one queue (one worker).
  # shellcheck disable=SC2086  # queue_target is a word list on purpose
  "$ipt" -w -t security -A SMTPGUARD -p tcp --dport "$port" -j NFQUEUE $queue_target
  # shellcheck disable=SC2086
  "$ipt" -w -t security -A SMTPGUARD -p tcp --sport "$port" -j NFQUEUE $queue_target
  for hook in $hooks; do
    "$ipt" -w -t security -I "$hook" 1 -p tcp -j SMTPGUARD
  done
  "$ipt" -w -t mangle -N SMTPGUARD_MARK
  "$ipt" -w -t mangle -A SMTPGUARD_MARK -m mark --mark "$mark/$mark" -j CONNMARK --or-mark "$mark"
  "$ipt" -w -t mangle -I POSTROUTING 1 -j SMTPGUARD_MARK
}

case "$action" in
  add)
    add_one iptables
    add_one ip6tables
    ;;
  disarm)
    disarm_one iptables
    disarm_one ip6tables
    ;;
  remove)
    remove_one iptables
    remove_one ip6tables
    ;;
  *)
    echo "usage: $0 add|disarm|remove" >&2
    exit 2
    ;;
esac
