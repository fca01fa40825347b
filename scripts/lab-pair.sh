# shellcheck shell=bash
# lab-pair.sh — a failover pair of gateways on top of the lab of lab-lib.sh.
#
# Source lab-lib.sh first and bring a lab up (lab_up); pair_up then turns it into:
#
#   P-client  cl0 198.18.1.1 ── br-cl ──┬── cl 198.18.1.11  P-gw1  srv 198.18.2.11 ──┬── br-srv ── srv0 198.18.2.1  P-server
#                                       └── cl 198.18.1.12  P-gw2  srv 198.18.2.12 ──┘
#                       VIP 198.18.1.254 (client's next hop)       VIP 198.18.2.254 (server's next hop)
#   P-gw1 sync 198.18.3.1 ── P-gw2 sync 198.18.3.2 (conntrackd FT-FW)
#
# The lab's own gateway namespace (P-gw) becomes the switch: its two veth ends lose their
# addresses and join the bridges br-cl and br-srv, forwarding off. The client's and the
# server's routes already point at 198.18.1.254 and 198.18.2.254: those are now the VIPs that
# keepalived (failover/keepalived.conf) moves between gw1 and gw2. IPv4 only.
#
# pair_services_up starts conntrackd and keepalived in both gateways from the shipped
# configurations in failover/, with per-instance paths (pid files, lock, control socket, logs)
# under $LAB_RUN/pair, so nothing of the host's keepalived or conntrackd is used or touched.
# lab_down removes gw1 and gw2 with the rest (every namespace named P-*).
# Every function returns non-zero on failure and never exits the caller.

PAIR_GW4=(198.18.1.11 198.18.1.12)      # gw1, gw2 on the client side
PAIR_GW_SERVER4=(198.18.2.11 198.18.2.12) # on the server side
PAIR_SYNC4=(198.18.3.1 198.18.3.2)
PAIR_VIP_CLIENT4=$LAB_GW_CLIENT4
PAIR_VIP_SERVER4=$LAB_GW_SERVER4
PAIR_FAILOVER_DIR=${SMTPGUARD_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}/failover

# pair_exec 1|2 CMD...: run CMD in gateway 1 or 2.
pair_exec() {
  local n=$1
  shift
  ip netns exec "$(lab_ns "gw$n")" "$@"
}

pair_dir() { printf '%s/pair' "${LAB_RUN:?no lab loaded}"; }

_pair_net_up() {
  local sw c s n ns
  sw=$(lab_ns gw) c=$(lab_ns client) s=$(lab_ns server)
  # The lab's gateway becomes the switch of both segments.
  ip netns exec "$sw" sysctl -qw net.ipv4.ip_forward=0
  ip netns exec "$sw" sysctl -qw net.ipv6.conf.all.forwarding=0
  ip -n "$sw" addr flush dev "$LAB_IF_GW_CLIENT"
  ip -n "$sw" addr flush dev "$LAB_IF_GW_SERVER"
  ip -n "$sw" link add br-cl type bridge
  ip -n "$sw" link add br-srv type bridge
  ip -n "$sw" link set "$LAB_IF_GW_CLIENT" master br-cl
  ip -n "$sw" link set "$LAB_IF_GW_SERVER" master br-srv
  ip -n "$sw" link set br-cl up
  ip -n "$sw" link set br-srv up
  for n in 1 2; do
    ns=$(lab_ns "gw$n")
    mkdir -p "/etc/netns/$ns"
    cp "/etc/netns/$sw/hosts" "/etc/netns/$sw/resolv.conf" "/etc/netns/$ns/"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
    ip link add name cl netns "$ns" type veth peer name "g$n-cl" netns "$sw"
    ip link add name srv netns "$ns" type veth peer name "g$n-srv" netns "$sw"
    ip -n "$sw" link set "g$n-cl" master br-cl
    ip -n "$sw" link set "g$n-srv" master br-srv
    ip -n "$sw" link set "g$n-cl" up
    ip -n "$sw" link set "g$n-srv" up
    ip -n "$ns" addr add "${PAIR_GW4[n - 1]}/24" dev cl
    ip -n "$ns" addr add "${PAIR_GW_SERVER4[n - 1]}/24" dev srv
    ip -n "$ns" link set cl up
    ip -n "$ns" link set srv up
  done
  ip link add name sync netns "$(lab_ns gw1)" type veth peer name sync netns "$(lab_ns gw2)"
  for n in 1 2; do
    ns=$(lab_ns "gw$n")
    ip -n "$ns" addr add "${PAIR_SYNC4[n - 1]}/24" dev sync
    ip -n "$ns" link set sync up
  done
  # The old gateway's MAC is gone: the VIPs' owner answers from now on.
  ip -n "$c" neigh flush all
  ip -n "$s" neigh flush all
}

# pair_up: rebuild the current lab's network as the pair (see the top of this file).
pair_up() {
  local d
  d=$(pair_dir)
  mkdir -p "$d"
  if ! (set -euo pipefail; _pair_net_up) >"$d/net-up.log" 2>&1; then
    lab_log "pair network setup failed:"
    cat "$d/net-up.log" >&2
    return 1
  fi
}

# _pair_configs N: gateway N's keepalived.conf, conntrackd.conf and notify script, from the
# shipped files with this instance's paths (and, for gw2, node B's priority and addresses).
_pair_configs() {
  local n=$1 d
  d=$(pair_dir)/gw$n
  mkdir -p "$d"
  cp "$PAIR_FAILOVER_DIR/conntrackd-notify.sh" "$d/notify.sh"
  chmod 755 "$d/notify.sh"
  local src=${PAIR_SYNC4[0]} dst=${PAIR_SYNC4[1]}
  ((n == 2)) && src=${PAIR_SYNC4[1]} dst=${PAIR_SYNC4[0]}
  # Addresses only in the UDP block (the Address Ignore list keeps both).
  sed -e "/^\s*UDP {/,/^\s*}/{s|^\(\s*IPv4_address\) .*|\1 $src|;s|^\(\s*IPv4_Destination_Address\) .*|\1 $dst|}" \
    -e "s|^\(\s*LogFile\) /var/log/conntrackd.log|\1 $d/conntrackd.log|" \
    -e "s|^\(\s*LockFile\) /var/lock/conntrackd.lock|\1 $d/conntrackd.lock|" \
    -e "s|^\(\s*Path\) /var/run/conntrackd.ctl|\1 $d/conntrackd.ctl|" \
    "$PAIR_FAILOVER_DIR/conntrackd.conf" >"$d/conntrackd.conf"
  local prio=150
  ((n == 2)) && prio=100
  sed -e "s|/etc/keepalived/conntrackd-notify.sh|$d/notify.sh|" \
    -e "s|/etc/conntrackd/conntrackd.conf|$d/conntrackd.conf|" \
    -e "s|router_id smtpguard-a|router_id smtpguard-gw$n|" \
    -e "s|priority 150|priority $prio|" \
    "$PAIR_FAILOVER_DIR/keepalived.conf" >"$d/keepalived.conf"
  # Each substitution must have happened (a changed shipped file must not go unnoticed).
  if ! grep -q "LockFile $d/conntrackd.lock" "$d/conntrackd.conf" ||
    ! grep -q "Path $d/conntrackd.ctl" "$d/conntrackd.conf" ||
    ! grep -q "IPv4_Destination_Address $dst" "$d/conntrackd.conf" ||
    ! grep -q "IPv4_address $src" "$d/conntrackd.conf" ||
    [[ $(grep -cE "^\s*priority $prio$" "$d/keepalived.conf") != 2 ]] ||
    [[ $(grep -c "$d/notify.sh" "$d/keepalived.conf") != 3 ]]; then
    lab_log "pair: the shipped configurations in $PAIR_FAILOVER_DIR no longer match lab-pair.sh"
    return 1
  fi
}

# pair_conntrackd_start N: conntrackd in gateway N (bounded wait for its control socket).
pair_conntrackd_start() {
  local n=$1 d i
  d=$(pair_dir)/gw$n
  ip netns exec "$(lab_ns "gw$n")" conntrackd -C "$d/conntrackd.conf" >"$d/conntrackd.out" 2>&1 &
  disown $! # ended by pair_fail or lab_down, by pid; no job notice from the kill
  for ((i = 0; i < 50; i++)); do
    pair_exec "$n" conntrackd -C "$d/conntrackd.conf" -s >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  lab_log "conntrackd in gw$n did not come up:"
  cat "$d/conntrackd.out" "$d/conntrackd.log" >&2 2>/dev/null
  return 1
}

# pair_keepalived_start N: keepalived in gateway N, in the foreground of a background job,
# with its own pid files; logs to $d/keepalived.log.
pair_keepalived_start() {
  local n=$1 d
  d=$(pair_dir)/gw$n
  ip netns exec "$(lab_ns "gw$n")" keepalived --dont-fork --log-console --log-detail --no-syslog \
    -f "$d/keepalived.conf" -p "$d/keepalived.pid" -r "$d/keepalived-vrrp.pid" \
    -c "$d/keepalived-checkers.pid" >"$d/keepalived.log" 2>&1 &
  disown $!
}

# pair_has_vips N: gateway N holds both VIPs.
pair_has_vips() {
  local a
  a=$(pair_exec "$1" ip -4 -o addr show 2>/dev/null)
  [[ $a == *" $PAIR_VIP_CLIENT4/24 "* && $a == *" $PAIR_VIP_SERVER4/24 "* ]]
}

# pair_wait_master N TIMEOUT: until gateway N holds both VIPs (bounded).
pair_wait_master() {
  local n=$1 deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    pair_has_vips "$n" && return 0
    sleep 0.1
  done
  lab_log "gw$n does not hold both VIPs after $2s"
  tail -n 20 "$(pair_dir)/gw$n/keepalived.log" >&2
  return 1
}

# pair_services_up: conntrackd on both, keepalived on gw1 until it is MASTER, then on gw2
# (which stays BACKUP: nopreempt, and gw1 is there first).
pair_services_up() {
  _pair_configs 1 && _pair_configs 2 || return 1
  pair_conntrackd_start 1 && pair_conntrackd_start 2 || return 1
  pair_keepalived_start 1
  pair_wait_master 1 15 || return 1
  pair_keepalived_start 2
}

# pair_fail N: a hard failure of gateway N: every process in it is frozen (SIGSTOP) then killed
# (SIGKILL): nothing is cleaned up, no VRRP goodbye; then its links go down. Prints the time of
# the failure (seconds since the epoch, when all were frozen).
# Freezing first matters: killed one by one, keepalived's VRRP child outlives its parent by a
# moment, gets the SIGTERM its parent-death signal sends and says goodbye (a priority-0
# advert), and the peer takes over at once: a graceful failover, not a failure.
pair_fail() {
  local n=$1 ns pids
  ns=$(lab_ns "gw$n")
  pids=$(ip netns pids "$ns" 2>/dev/null)
  # shellcheck disable=SC2086
  [[ -z $pids ]] || kill -STOP $pids 2>/dev/null
  date +%s.%N
  # shellcheck disable=SC2086
  [[ -z $pids ]] || kill -KILL $pids 2>/dev/null
  ip -n "$ns" link set cl down
  ip -n "$ns" link set srv down
  ip -n "$ns" link set sync down
}
