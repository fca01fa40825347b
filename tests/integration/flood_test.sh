#!/usr/bin/env bash
# Exhaustion: a SYN flood of spoofed connections through the gateway while
# legitimate mail goes through it.
#
# smtpguardd --profile modern --max-flows FLOOD_MAX_FLOWS (per worker; the lab
# runs 2 workers, --queues 0-1, fail-closed: no --fail-open, so a full queue
# drops instead of passing SMTP uninspected). sg_syn_flood
# (tests/tools/syn_flood.cpp) in the client namespace sends FLOOD_SYNS TCP
# SYNs to [198.18.2.1]:25 at FLOOD_RATE per second from random sources in
# 198.18.1.2-198.18.1.253 (the client's /24, so they route like the client's
# own traffic) and random ports. Postfix answers each with a SYN-ACK (SYN
# cookies once its SYN queue is full); the gateway queues and inspects those
# too, so each flood connection becomes an established flow in the daemon, then
# nothing more: the spoofed hosts do not exist. (The gateway routes the
# spoofed range via the client, one neighbour; the client's kernel drops what
# is not addressed to it.) Once the flow tables are full (flows_evicted > 0),
# swaks sends mails with HELO through the gateway, one after another while the
# flood runs (FLOOD_SESSIONS at most); each must be delivered, its stored body
# byte-identical, in less than FLOOD_SESSION_MAX_S seconds.
#
# Asserted: every SYN sent (stopped by count, not by the time limit), the
# daemon alive and exiting 0, flows_evicted > 0 when the flood exceeds the
# tables, the legitimate sessions overlapped the flood and were delivered, and
# the daemon's peak resident memory (VmHWM, or the highest 0.2 s sample of
# VmRSS if higher) stays under
#   RSS bound = VmRSS before + workers x max-flows x FLOOD_FLOW_COST
#               + FLOOD_RSS_SLACK
# FLOOD_FLOW_COST (3072 bytes) is about twice what a flood flow costs
# (measured by this test: "B per flow", 1.4-1.5 KB at 238f627);
# FLOOD_RSS_SLACK (64 MiB) covers queue buffers and allocator arenas.
# Reported, not asserted: packets the kernel queue dropped, the gateway's
# conntrack (entries, refusals, early drops), the share of SYNs that became
# flows, the growth of RSS after the tables filled, and an eviction probe: a
# session that said HELO before the flood and stays idle until its worker's
# table has turned over, then sends EXPN (modern masks it). The server's log
# shows whether it arrived masked; "KNOWN ISSUE" when the evicted flow was
# picked up mid-stream as passthrough and EXPN reached the server as is.
#
# The last two lines are the daemon's peak RSS and the legitimate sessions'
# result.
#
# Environment:
#   FLOOD_SYNS        SYNs to send (default 1000000: about 40 s at the default
#                     rate, under a minute for the whole test)
#   FLOOD_RATE        SYNs per second, 0 = as fast as possible (default 25000,
#                     what the daemon keeps up with here: no queue drops; at
#                     full speed most SYNs are lost before they become flows)
#   FLOOD_FAMILY      4 (default) or 6: the flood over IPv6, from
#                     2001:db8:1::2-2001:db8:1::fd to [2001:db8:2::1]
#   FLOOD_MAX_FLOWS   --max-flows (default 65536, the daemon's default)
#   FLOOD_MAX_SECONDS the flood stops after this many seconds whatever it sent
#                     (default 600); stopping by time is a failure
#   FLOOD_SESSIONS    legitimate mails at most while the flood runs (default 5)
#   FLOOD_SESSION_MAX_S  each must take less (default 10 s: not stalled behind
#                     the flood; unloaded they take 0.1-0.3 s)
#   FLOOD_FLOW_COST, FLOOD_RSS_SLACK  the bound above
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FLOOD_SYNS=${FLOOD_SYNS:-1000000}
FLOOD_RATE=${FLOOD_RATE:-25000}
FLOOD_FAMILY=${FLOOD_FAMILY:-4}
FLOOD_MAX_FLOWS=${FLOOD_MAX_FLOWS:-65536}
FLOOD_MAX_SECONDS=${FLOOD_MAX_SECONDS:-600}
FLOOD_SESSIONS=${FLOOD_SESSIONS:-5}
FLOOD_SESSION_MAX_S=${FLOOD_SESSION_MAX_S:-10}
FLOOD_FLOW_COST=${FLOOD_FLOW_COST:-3072}
FLOOD_RSS_SLACK=${FLOOD_RSS_SLACK:-$((64 * 1024 * 1024))}
FLOOD_WORKERS=2 # lib.sh starts the daemon with --queues 0-1
FLOOD_BIN=$SMTPGUARD_BUILD/sg_syn_flood

FLOOD_PID=""
SAMPLER_PID=""
PROBE_PID=""
PEAK_LINE="peak RSS: not measured"
LEGIT_LINE="legitimate session: not run"

it_init flood
if ((IT_DAEMON == 0)); then
  it_say "no-daemon mode: there is no daemon memory to measure"
  exit 77
fi
[[ -x $FLOOD_BIN ]] || it_fatal "$FLOOD_BIN not found (build the sg_syn_flood target)"
for v in FLOOD_SYNS FLOOD_RATE FLOOD_MAX_FLOWS FLOOD_MAX_SECONDS FLOOD_SESSIONS FLOOD_SESSION_MAX_S FLOOD_FLOW_COST FLOOD_RSS_SLACK; do
  [[ ${!v} =~ ^[0-9]+$ ]] || it_fatal "$v must be a number, not '${!v}'"
done
((FLOOD_SYNS > 0 && FLOOD_SESSIONS > 0)) || it_fatal "FLOOD_SYNS and FLOOD_SESSIONS must be > 0"
case $FLOOD_FAMILY in
  4) FLOOD_DST=198.18.2.1 FLOOD_FROM=198.18.1.2 FLOOD_TO=198.18.1.253 ;;
  6) FLOOD_DST=2001:db8:2::1 FLOOD_FROM=2001:db8:1::2 FLOOD_TO=2001:db8:1::fd ;;
  *) it_fatal "FLOOD_FAMILY is 4 or 6, not '$FLOOD_FAMILY'" ;;
esac

# The flood and the sampler are ours: stopped by pid before lib.sh's trap
# removes the lab (which would end them anyway, being inside the namespace).
_flood_cleanup() {
  local rc=$?
  [[ -n $FLOOD_PID ]] && kill -TERM "$FLOOD_PID" 2>/dev/null
  [[ -n $SAMPLER_PID ]] && kill -TERM "$SAMPLER_PID" 2>/dev/null
  [[ -n $PROBE_PID ]] && kill -TERM "$PROBE_PID" 2>/dev/null
  (exit "$rc") # _it_cleanup takes the exit status from $?
  _it_cleanup
}
trap _flood_cleanup EXIT

mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null; }

# counter NAME: the sum over the workers of a counter from the daemon's
# SIGUSR1 report (0 when absent: zero counters are left out).
counter() {
  awk -v n="$1" '$1 == n && $2 == "=" { v = $3 } END { print v + 0 }' "$COUNTERS_FILE"
}
snapshot_counters() {
  COUNTERS_FILE=$IT_TMP/counters.$1
  it_daemon_counters >"$COUNTERS_FILE"
}

# The gateway's conntrack statistics, summed over the CPUs: "drop" (a new
# connection refused: table full and nothing to evict) and "early_drop" (an
# unassured entry evicted to make room).
conntrack_drops() {
  local line cols d=0 e=0 i
  {
    read -r -a cols
    while read -r -a line; do
      for i in "${!cols[@]}"; do
        [[ ${cols[i]} == drop ]] && d=$((d + 16#${line[i]}))
        [[ ${cols[i]} == early_drop ]] && e=$((e + 16#${line[i]}))
      done
    done
  } < <(lab_exec gw cat /proc/net/stat/nf_conntrack 2>/dev/null)
  echo "$d $e"
}

# The kernel's view of the queues in the gateway: dropped (queue full) and
# user-dropped (socket buffer full), summed over the queues.
queue_drops() {
  lab_exec gw awk '{ q += $6; u += $7 } END { printf "%d %d\n", q, u }' /proc/net/netfilter/nfnetlink_queue 2>/dev/null || echo "? ?"
}

# The eviction probe: a session that says HELO, then waits idle (up to 50 s,
# under Postfix's 60 s smtpd_timeout) until the file GO exists, then sends
# EXPN (which modern masks) and QUIT. Prints its local port, then each reply.
write_probe() {
  cat >"$IT_TMP/probe.py" <<'PY'
import os, socket, sys, time
host, go, port_file = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.create_connection((host, 25), timeout=60)
open(port_file, "w").write(f"{s.getsockname()[1]}\n")
buf = b""
def reply():
    global buf
    while True:
        while b"\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise SystemExit("closed")
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        line = line.rstrip(b"\r").decode("latin-1")
        if len(line) < 4 or line[3] == " ":
            return line
print("greeting:", reply(), flush=True)
s.sendall(b"HELO probe.example.org\r\n")
print("HELO:", reply(), flush=True)
t0 = time.time()
while not os.path.exists(go) and time.time() - t0 < 50:
    time.sleep(0.2)
print(f"idle: {time.time() - t0:.1f}s", flush=True)
s.sendall(b"EXPN root\r\n")
print("EXPN:", reply(), flush=True)
s.sendall(b"QUIT\r\n")
print("QUIT:", reply(), flush=True)
PY
}

it_lab_up
# SYN cookies on the server (the default, made explicit): with the SYN queue
# full Postfix's kernel still answers every SYN, the legitimate one included.
lab_exec server sysctl -qw net.ipv4.tcp_syncookies=1 || it_fatal "tcp_syncookies"
# The answers to spoofed sources: through the gateway (whose daemon sees them)
# to the client's MAC, where the client's kernel (no forwarding) drops them.
# Without these routes the gateway would resolve one neighbour per spoofed
# address, and the neighbour tables' limits are shared by every namespace.
lab_exec gw ip route add 198.18.1.0/25 via "$LAB_CLIENT4" dev "$LAB_IF_GW_CLIENT" &&
  lab_exec gw ip route add 198.18.1.128/25 via "$LAB_CLIENT4" dev "$LAB_IF_GW_CLIENT" &&
  lab_exec gw ip -6 route add 2001:db8:1::/120 via "$LAB_CLIENT6" dev "$LAB_IF_GW_CLIENT" ||
  it_fatal "routes for the spoofed sources"

# No control socket: this test does not use it, and another daemon running on
# the machine (another lab) may hold the default one.
it_daemon_start modern --max-flows "$FLOOD_MAX_FLOWS" --control-socket none
pid=$IT_DAEMON_PID
rss_before=$(status_kb "$pid" VmRSS)
hwm_before=$(status_kb "$pid" VmHWM)
[[ -n $rss_before ]] || it_fatal "cannot read /proc/$pid/status"
capacity=$((FLOOD_WORKERS * FLOOD_MAX_FLOWS))
bound_kb=$(((rss_before * 1024 + capacity * FLOOD_FLOW_COST + FLOOD_RSS_SLACK) / 1024))
it_say "daemon pid $pid: VmRSS $(mib "$rss_before") before the flood; flow capacity $FLOOD_WORKERS x $FLOOD_MAX_FLOWS = $capacity"
it_say "RSS bound: $(mib "$rss_before") + $capacity flows x $FLOOD_FLOW_COST B + $((FLOOD_RSS_SLACK >> 20)) MiB = $(mib "$bound_kb")"

# Sampler: VmRSS and VmHWM every 0.2 s (seconds since start, kB, kB).
SAMPLES=$IT_TMP/rss.samples
(
  t0=$(date +%s.%N)
  while kill -0 "$pid" 2>/dev/null; do
    r=$(status_kb "$pid" VmRSS) h=$(status_kb "$pid" VmHWM)
    [[ -n $r ]] && printf '%s %s %s\n' "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" "$r" "$h"
    sleep 0.2
  done
) >"$SAMPLES" 2>/dev/null &
SAMPLER_PID=$!

# Legitimate mail: generated once, sent FLOOD_SESSIONS times at most.
body=$IT_TMP/body
$IT_MAILTOOL genbody --seed 5 --size 65536 "$body" || it_fatal "genbody"
sent_sha=$($IT_MAILTOOL sha "$body")

# The probe session: established and inspected before the flood, then idle.
write_probe
PROBE_OUT=$IT_TMP/probe.out
ip netns exec "$(lab_ns client)" timeout 90 "$IT_PY" "$IT_TMP/probe.py" "$LAB_SERVER4" "$IT_TMP/probe.go" \
  "$IT_TMP/probe.port" >"$PROBE_OUT" 2>&1 &
PROBE_PID=$!
for ((i = 0; i < 100; i++)); do
  grep -q '^HELO: 250' "$PROBE_OUT" 2>/dev/null && break
  kill -0 "$PROBE_PID" 2>/dev/null || break
  sleep 0.1
done
grep -q '^HELO: 250' "$PROBE_OUT" || it_fatal "the probe session did not start: $(cat "$PROBE_OUT")"

it_section "$FLOOD_SYNS SYNs from $FLOOD_FROM-$FLOOD_TO to [$FLOOD_DST]:25 at $FLOOD_RATE/s (0: as fast as possible)"
read -r qdrop0 udrop0 < <(queue_drops)
FLOOD_OUT=$IT_TMP/flood.out
flood_t0=$SECONDS
ip netns exec "$(lab_ns client)" "$FLOOD_BIN" --dst "$FLOOD_DST" --dport 25 \
  --src-from "$FLOOD_FROM" --src-to "$FLOOD_TO" --count "$FLOOD_SYNS" --rate "$FLOOD_RATE" \
  --max-seconds "$FLOOD_MAX_SECONDS" --seed 1 >"$FLOOD_OUT" 2>&1 &
FLOOD_PID=$!

# The legitimate sessions start once the tables are full (or, for a flood
# smaller than the tables, a second into it), and go on while the flood runs.
evicting=0 rss_full=""
while kill -0 "$FLOOD_PID" 2>/dev/null; do
  sleep 1
  if ((FLOOD_SYNS <= capacity)); then
    break
  fi
  snapshot_counters wait
  if (($(counter flows_evicted) > 0)); then
    evicting=1
    rss_full=$(status_kb "$pid" VmRSS) created_full=$(counter flows_created)
    it_say "tables full after $((SECONDS - flood_t0)) s: VmRSS $(mib "$rss_full"), flows_created $(counter flows_created)"
    break
  fi
done
flood_running_at_start=0
kill -0 "$FLOOD_PID" 2>/dev/null && flood_running_at_start=1
it_say "legitimate sessions start $((SECONDS - flood_t0)) s into the flood (evicting: $evicting)"

legit_ok=0 legit_n=0 legit_fail=0 legit_during=0 legit_secs="" legit_slowest=0
while ((legit_n < FLOOD_SESSIONS)); do
  ((legit_n > 0)) && ! kill -0 "$FLOOD_PID" 2>/dev/null && break
  legit_n=$((legit_n + 1))
  msgid="flood.$legit_n.$$@client.example.org"
  msg=$IT_TMP/msg.$legit_n
  $IT_MAILTOOL mkmsg --for-swaks --body "$body" --msgid "$msgid" "$msg" || it_fatal "mkmsg"
  t=$(date +%s.%N)
  if it_send_swaks "$LAB_SERVER4" "$msg" "$IT_TMP/swaks.$legit_n.log"; then
    secs=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    legit_slowest=$(awk -v a="$legit_slowest" -v b="$secs" 'BEGIN { print (b > a ? b : a) }')
    kill -0 "$FLOOD_PID" 2>/dev/null && legit_during=$((legit_during + 1))
    got_sha=$(it_delivered_body_sha "$msgid")
    if [[ $got_sha == "$sent_sha" ]]; then
      legit_ok=$((legit_ok + 1))
      legit_secs+="${legit_secs:+ }${secs}s"
      it_pass "legitimate mail $legit_n through the gateway during the flood: delivered byte-identical in ${secs}s"
    else
      legit_fail=$((legit_fail + 1))
      it_fail "legitimate mail $legit_n: stored body byte-identical" "sent $sent_sha" "got   $got_sha"
    fi
  else
    legit_fail=$((legit_fail + 1))
    it_fail "legitimate mail $legit_n through the gateway during the flood (swaks)" "$(tail -n 15 "$IT_TMP/swaks.$legit_n.log")"
  fi
done
read -r qdrop1 udrop1 < <(queue_drops)

# The probe goes on once the flood has evicted 1.2 x capacity flows (its
# worker evicts the least recently touched flow first: the probe's, idle since
# before the flood), or the flood is over.
while kill -0 "$FLOOD_PID" 2>/dev/null; do
  snapshot_counters probe
  (($(counter flows_evicted) * 10 >= capacity * 12)) && break
  sleep 1
done
snapshot_counters probe
probe_evictions=$(counter flows_evicted)
: >"$IT_TMP/probe.go"
wait "$PROBE_PID"
probe_rc=$?
PROBE_PID=""
probe_port=$(cat "$IT_TMP/probe.port" 2>/dev/null)
probe_expn=$(it_server_commands "$probe_port" | grep -m1 -iE '^(EXPN|X+) ' || true)
it_say "eviction probe (port $probe_port, exit $probe_rc): $(tr '\n' ';' <"$PROBE_OUT"); $probe_evictions evictions before its EXPN; the server received: '${probe_expn:-nothing}'"
if [[ $probe_expn == "EXPN root" ]]; then
  PROBE_LINE="KNOWN ISSUE: the idle session was evicted and picked up mid-stream as passthrough: its EXPN reached the server unmasked"
elif [[ -n $probe_expn ]]; then
  PROBE_LINE="the idle session stayed inspected: the server received '$probe_expn'"
else
  PROBE_LINE="no EXPN reached the server (probe exit $probe_rc)"
fi
it_say "eviction probe: $PROBE_LINE"

it_assert_eq "the flood was running when the legitimate sessions started" 1 "$flood_running_at_start"
if awk -v s="$legit_slowest" -v m="$FLOOD_SESSION_MAX_S" 'BEGIN { exit !(s < m) }'; then
  it_pass "no legitimate session stalled: the slowest took ${legit_slowest}s (< ${FLOOD_SESSION_MAX_S}s)"
else
  it_fail "no legitimate session stalled: the slowest took ${legit_slowest}s (< ${FLOOD_SESSION_MAX_S}s)"
fi
if ((legit_during > 0)); then
  it_pass "the flood was still running when a legitimate session had completed ($legit_during of $legit_n)"
else
  it_fail "the flood was still running when a legitimate session had completed" "the flood ended first: raise FLOOD_SYNS or lower FLOOD_RATE"
fi

wait "$FLOOD_PID"
flood_rc=$?
FLOOD_PID=""
flood_line=$(grep 'sg_syn_flood: sent' "$FLOOD_OUT" | tail -n 1)
it_say "${flood_line:-$(cat "$FLOOD_OUT")}"
it_assert_eq "sg_syn_flood exits 0" 0 "$flood_rc"
syns_sent=$(sed -n 's/.*sent \([0-9]*\) SYNs.*/\1/p' <<<"$flood_line")
pps=$(sed -n 's/.*(\([0-9]*\) pps).*/\1/p' <<<"$flood_line")
flood_secs=$(sed -n 's/.* in \([0-9.]*\) s (.*/\1/p' <<<"$flood_line")
it_assert_match "the flood sent all $FLOOD_SYNS SYNs (stopped by count, not by the time limit)" "sent $FLOOD_SYNS SYNs .*stopped by count" "$flood_line"

# Let the queue drain and the SYN-ACK retransmissions settle a little.
sleep 3
read -r qdrop2 udrop2 < <(queue_drops)
snapshot_counters after
created=$(counter flows_created) evicted=$(counter flows_evicted) expired=$(counter flows_expired)
midstream=$(counter flows_midstream) packets=$(counter packets)
it_say "daemon: packets $packets, flows_created $created, flows_evicted $evicted, flows_expired $expired, flows_midstream $midstream"
it_say "kernel queue drops (queue full / socket buffer full): before the flood $qdrop0 / $udrop0, after the sessions $qdrop1 / $udrop1, at the end $qdrop2 / $udrop2"
read -r ct_drop ct_early < <(conntrack_drops)
it_say "gateway conntrack: $(lab_exec gw cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo '?') entries (max $(cat /proc/sys/net/netfilter/nf_conntrack_max 2>/dev/null || echo '?')), new connections refused $ct_drop, unassured entries evicted $ct_early"
if ((${syns_sent:-0} > 0)); then
  it_say "SYNs that became flows in the daemon: $((created * 100 / syns_sent))% ($created of $syns_sent; the rest were lost before the queue, or in it)"
fi
it_daemon_alive
if ((created > 0)); then it_pass "flows_created > 0 ($created)"; else it_fail "flows_created > 0" "0"; fi
if ((${syns_sent:-0} > capacity)); then
  if ((evicted > 0)); then
    it_pass "flows_evicted > 0 with $syns_sent SYNs against $capacity slots ($evicted)"
  else
    it_fail "flows_evicted > 0 with $syns_sent SYNs against $capacity slots" "flows_evicted = 0"
  fi
fi
# The flows the tables hold at the end (flood flows stay, idle after their
# SYN-ACK): at most the capacity.
live=$((created - evicted - expired))
((live > capacity)) && live=$capacity

# Memory. VmHWM is the kernel's own high-water mark of the resident set.
kill -0 "$SAMPLER_PID" 2>/dev/null && kill -TERM "$SAMPLER_PID" 2>/dev/null
wait "$SAMPLER_PID" 2>/dev/null
SAMPLER_PID=""
rss_after=$(status_kb "$pid" VmRSS)
hwm=$(status_kb "$pid" VmHWM)
sampled_peak=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$SAMPLES")
peak=$hwm
((sampled_peak > peak)) && peak=$sampled_peak
it_say "RSS samples: $(wc -l <"$SAMPLES") (every 0.2 s); sampled peak VmRSS $(mib "$sampled_peak"), VmHWM $(mib "$hwm")"
per_flow="?"
if ((live > 0)); then
  per_flow=$(((rss_after - rss_before) * 1024 / live))
fi
it_say "VmRSS before $(mib "$rss_before"), after $(mib "$rss_after") with about $live flows tracked: $per_flow B per flow"
if [[ -n $rss_full ]]; then
  it_say "VmRSS when the tables filled $(mib "$rss_full"); growth from there to the peak: $(mib $((peak - rss_full))) while $((created - ${created_full:-0})) more flows came and went"
fi
if ((peak < bound_kb)); then
  it_pass "peak RSS $(mib "$peak") < bound $(mib "$bound_kb")"
else
  it_fail "peak RSS $(mib "$peak") < bound $(mib "$bound_kb")" "VmHWM before $(mib "$hwm_before"), $live flows, $per_flow B per flow"
fi

it_daemon_stop

PEAK_LINE="flood: peak RSS $(mib "$peak") (bound $(mib "$bound_kb"); before $(mib "$rss_before"), after $(mib "$rss_after")), $syns_sent SYNs in ${flood_secs}s at ${pps} pps, flows_created $created, flows_evicted $evicted"
if ((legit_fail == 0 && legit_ok > 0)); then
  LEGIT_LINE="flood: legitimate session: ok - $legit_ok of $legit_n mails delivered byte-identical during the flood (${legit_secs})"
else
  LEGIT_LINE="flood: legitimate session: FAILED - $legit_ok of $legit_n mails delivered byte-identical"
fi
# it_finish in a subshell (no trap there) for its summary and status; then the
# two result lines come last.
(it_finish)
rc=$?
printf '%s\n%s\n' "$PEAK_LINE" "$LEGIT_LINE"
exit "$rc"
