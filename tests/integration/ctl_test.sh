#!/usr/bin/env bash
# smtpguardctl against a daemon in the lab (docs/operations.md, "Control socket and smtpguardctl"):
#  - status answers; the socket is a socket with mode 0660; the --prometheus-file is written at
#    start and, with the final counts, at exit;
#  - stats counts a swaks session through the gateway (packets, commands); stats --json parses
#    and carries the counters; prometheus and HTTP /metrics (inside the gateway namespace) show
#    smtpguard_packets_total;
#  - a masked command is logged as a decision line with its event id, and counted in
#    smtpguard_events_total;
#  - flows lists sessions held open (IPv4 and IPv6) with their addresses and profile;
#  - reload with a configuration file switching the profile: a session started afterwards sees
#    the new profile's banner; a reload of an invalid file is refused (exit 1) and changes nothing;
#  - rules show prints the table; rules remove takes the daemon out of the path (a new session
#    sees the server's own banner), rules install puts it back;
#  - once the daemon has stopped, smtpguardctl exits 2 and says it is not running;
#  - status lists each worker with its flows and share; with queues = auto (the default) and
#    worker-cpus a daemon starts one worker per CPU nproc counts in the gateway, pinned, its
#    rules queue the matching range, and a worker-cpus outside the affinity mask is refused.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init ctl
if ((IT_DAEMON == 0)); then
  it_say "SMTPGUARD_IT_NO_DAEMON=1: nothing to talk to; skipped"
  exit 77
fi
CTL_BIN=$SMTPGUARD_BUILD/smtpguardctl
[[ -x $CTL_BIN ]] || it_fatal "smtpguardctl binary $CTL_BIN not found or not executable (set SMTPGUARD_BUILD)"
it_lab_up

SOCK=$IT_TMP/ctl.sock
PORT=9125 # the gateway namespace's own loopback: nothing else listens there
CONF=$IT_TMP/smtpguard.conf
HOLD=("$IT_PY" "$IT_DIR/hold_sessions.py")

ctl() { "$CTL_BIN" --socket "$SOCK" "$@"; }
# worker_lines STATUS: the per-worker lines of smtpguardctl status.
worker_lines() { printf '%s\n' "$1" | grep -E '^  queue [0-9]+: '; }
# check_shares DESC STATUS MIN_FLOWS: the workers' flows add up to at least MIN_FLOWS, and their
# shares (each rounded) to 100 within one point per worker.
check_shares() {
  local lines sum=0 pct=0 n=0 f p
  lines=$(worker_lines "$2")
  while read -r f p; do
    sum=$((sum + f))
    pct=$((pct + p))
    n=$((n + 1))
  done < <(printf '%s\n' "$lines" | sed -nE 's/^  queue [0-9]+: [^,]+, ([0-9]+) flows? now \(([0-9]+)%\)$/\1 \2/p')
  if ((n > 0 && sum >= $3 && pct >= 100 - n && pct <= 100 + n)); then
    it_pass "$1 ($sum flows over $n workers, shares add up to $pct%)"
  else
    it_fail "$1" "flows $sum (at least $3), shares $pct% over $n workers:" "$lines"
  fi
}
# counter NAME FILE: the value of "NAME = value" in FILE (empty if missing).
counter() { sed -n "s/^$1 = //p" "$2" | head -n 1; }
banner() { lab_exec client "${HOLD[@]}" banner --host "$1" --timeout 20 2>&1; }
# write_conf PROFILE [TOP-LEVEL LINES...]: a rule for the lab's server prefixes with PROFILE
# (the command line's --profile sets the default one), replaced by a rename as an editor would.
write_conf() {
  local profile=$1
  shift
  {
    printf '%s\n' "# smtpguardctl test" "$@"
    printf '%s\n' "" "[policy.lab-servers]" "match-server = $LAB_SERVER_NET4, $LAB_SERVER_NET6" \
      "profile = $profile"
  } >"$CONF.tmp" && mv "$CONF.tmp" "$CONF"
}
# http_metrics: GET /metrics from inside the gateway namespace (stdlib only).
http_metrics() {
  lab_exec gw "$IT_PY" -c 'import sys, urllib.request
r = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10)
print("content-type:", r.headers.get("Content-Type"))
sys.stdout.write(r.read().decode())' "$PORT"
}

direct=$(lab_exec server "${HOLD[@]}" banner --host "$LAB_SERVER4" --timeout 20 2>&1)
it_assert_match "precondition: the server's banner, seen directly" '^220 ' "$direct"
masked=$(it_mask_banner "$direct")

write_conf modern
PROM_FILE=$IT_TMP/metrics.prom
it_daemon_start modern --config "$CONF" --control-socket "$SOCK" --prometheus-listen "127.0.0.1:$PORT" \
  --prometheus-file "$PROM_FILE"

it_section "status and the socket"
out=$(ctl status 2>&1)
it_assert_eq "smtpguardctl status exits 0" 0 "$?"
printf '%s\n' "$out" | sed 's/^/    | /'
it_assert_match "status names the version and the daemon's pid" "^smtpguardd [0-9.]+, pid $IT_DAEMON_PID, up " "$out"
it_assert_match "status names the profile, the rule and the queues" \
  $'profile: modern\npolicies: lab-servers=modern\nqueues: 0 1 \\(2 workers\\)' "$out"
it_assert_match "status says the rules are installed" $'\nrules: table (inet|ip) smtpguard' "$out"
it_assert_match "status lists the two workers, unpinned, with their flows and share" \
  $'\n  queue 0: not pinned, [0-9]+ flows? now \\([0-9]+%\\)\n  queue 1: not pinned, [0-9]+ flows? now \\([0-9]+%\\)\n' "$out"
it_check "the control socket is a socket" test -S "$SOCK"
it_assert_eq "the control socket has mode 0660" 660 "$(stat -c %a "$SOCK")"
it_check "the Prometheus file is written at start" grep -q '^smtpguard_packets_total{queue="0"} ' "$PROM_FILE"
out=$(ctl help 2>&1)
it_assert_eq "help lists the daemon's commands" \
  "status|stats [json]|prometheus|reload|flows|rules show|install|remove|watch [client=PREFIX] [server=PREFIX] [port=N] [queue=N]|help" "$(printf '%s' "$out" | paste -sd'|')"

it_section "stats before and after a swaks session"
ctl stats >"$IT_TMP/stats.before" 2>&1
it_assert_eq "smtpguardctl stats exits 0" 0 "$?"
it_assert_match "stats is 'name = value' lines" '^packets = [0-9]+$' "$(head -n 1 "$IT_TMP/stats.before")"
if lab_exec client timeout 60 swaks --ehlo client.example.org --from sender@example.org \
  --to user@example.org --server "$LAB_SERVER4" --timeout 30 >"$IT_TMP/swaks.log" 2>&1; then
  it_pass "swaks sent a mail through the gateway"
else
  it_fail "swaks sent a mail through the gateway" "$(tail -n 15 "$IT_TMP/swaks.log")"
fi
ctl stats >"$IT_TMP/stats.after" 2>&1
for name in packets smtp_commands flows_created; do
  b=$(counter "$name" "$IT_TMP/stats.before")
  a=$(counter "$name" "$IT_TMP/stats.after")
  if [[ -n $a && -n $b ]] && ((a > b)); then
    it_pass "stats: $name went up with the session ($b -> $a)"
  else
    it_fail "stats: $name went up with the session" "before: '$b' after: '$a'"
  fi
done

it_section "stats --json"
if ctl stats --json >"$IT_TMP/stats.json" 2>&1 && "$IT_PY" -m json.tool "$IT_TMP/stats.json" >/dev/null 2>&1; then
  it_pass "stats --json is one JSON document"
else
  it_fail "stats --json is one JSON document" "$(head -c 600 "$IT_TMP/stats.json")"
fi
json_check=$("$IT_PY" - "$IT_TMP/stats.json" "$IT_DAEMON_PID" <<'PY' 2>&1
import json, sys
s = json.load(open(sys.argv[1]))
problems = []
if s.get("pid") != int(sys.argv[2]): problems.append("pid %r" % s.get("pid"))
if s.get("profile") != "modern": problems.append("profile %r" % s.get("profile"))
t = s.get("totals", {})
for name in ("packets", "smtp_commands", "flows_created"):
    if not isinstance(t.get(name), int) or t[name] <= 0: problems.append("totals.%s %r" % (name, t.get(name)))
if [q.get("queue") for q in s.get("queues", [])] != [0, 1]: problems.append("queues")
if s.get("events", {}).get("command_masked", {}).get("id") != 1102: problems.append("events.command_masked")
print("ok" if not problems else "; ".join(problems))
PY
)
it_assert_eq "stats --json has the pid, the profile, non-zero totals, both queues and the events" ok "$json_check"

it_section "a masked command: decision line and event counter"
lab_exec client $IT_DIALOGUE "$LAB_SERVER4" 25 -c 'EHLO client.example.org' \
  -c 'X-LINK2STATE FIRST CHUNK=x' -c QUIT --timeout 20 >"$IT_TMP/masked.out" 2>&1
it_assert_match "the server refused the masked command" '^500 ' "$(it_reply_lines 2 "$IT_TMP/masked.out" | tail -n 1)"
for ((i = 0; i < 30; i++)); do
  grep -q 'event=command_masked' "$IT_DAEMON_ERR" && break
  sleep 0.1
done
line=$(grep -m1 'event=command_masked' "$IT_DAEMON_ERR")
it_say "decision line: $line"
it_assert_match "the daemon logged the decision with its event id" \
  '^smtpguardd: event=command_masked id=1102 asa=108004 action=mask client=198\.18\.1\.1:[0-9]+ server=198\.18\.2\.1:25 dir=c2s subject="X-LINK2STATE" ' "$line"

it_section "prometheus: smtpguardctl and HTTP /metrics"
ctl prometheus >"$IT_TMP/prom.txt" 2>&1
it_assert_eq "smtpguardctl prometheus exits 0" 0 "$?"
it_assert_match "prometheus has smtpguard_packets_total per queue" \
  'smtpguard_packets_total\{queue="0"\} [0-9]+' "$(grep '^smtpguard_packets_total' "$IT_TMP/prom.txt" | tr '\n' ' ')"
masked_count=$(sed -n 's/^smtpguard_events_total{event="command_masked",id="1102"} //p' "$IT_TMP/prom.txt")
if [[ -n $masked_count ]] && ((masked_count > 0)); then
  it_pass "smtpguard_events_total{event=\"command_masked\"} is non-zero ($masked_count)"
else
  it_fail "smtpguard_events_total{event=\"command_masked\"} is non-zero" "$(grep events_total "$IT_TMP/prom.txt" | head -n 5)"
fi
http_metrics >"$IT_TMP/http.txt" 2>&1
it_assert_eq "GET /metrics from the gateway's loopback answers the exposition format" \
  "content-type: text/plain; version=0.0.4; charset=utf-8" "$(head -n 1 "$IT_TMP/http.txt")"
http_packets=$(grep -c '^smtpguard_packets_total{queue="[01]"} [0-9]' "$IT_TMP/http.txt")
it_assert_eq "HTTP /metrics has smtpguard_packets_total for both queues" 2 "$http_packets"
it_check "HTTP /metrics counts the masked command" \
  grep -qE '^smtpguard_events_total\{event="command_masked",id="1102"\} [1-9]' "$IT_TMP/http.txt"

it_section "flows: sessions held open"
pids=()
for addr in "$LAB_SERVER4" "$LAB_SERVER6"; do
  tag=${addr//[:.]/_}
  rm -f "$IT_TMP/hold.$tag.port"
  lab_exec client $IT_DIALOGUE "$addr" 25 -c 'EHLO client.example.org' -c '<pause 6>' -c QUIT \
    --timeout 20 --port-file "$IT_TMP/hold.$tag.port" >"$IT_TMP/hold.$tag.out" 2>&1 &
  pids+=($!)
done
for ((i = 0; i < 100; i++)); do
  [[ -s $IT_TMP/hold.${LAB_SERVER4//[:.]/_}.port && -s $IT_TMP/hold.${LAB_SERVER6//[:.]/_}.port ]] && break
  sleep 0.1
done
sleep 1 # both sessions through EHLO
ctl flows >"$IT_TMP/flows.txt" 2>&1
it_assert_eq "smtpguardctl flows exits 0" 0 "$?"
sed 's/^/    | /' "$IT_TMP/flows.txt"
it_assert_match "flows starts with the count per queue" '^[0-9]+ flows? tracked \(queue 0: [0-9]+, queue 1: [0-9]+\)' "$(head -n 1 "$IT_TMP/flows.txt")"
port4=$(cat "$IT_TMP/hold.${LAB_SERVER4//[:.]/_}.port" 2>/dev/null)
port6=$(cat "$IT_TMP/hold.${LAB_SERVER6//[:.]/_}.port" 2>/dev/null)
it_assert_match "flows lists the held IPv4 session with its addresses, state and profile" \
  "^queue=[01] client=198\\.18\\.1\\.1:$port4 server=198\\.18\\.2\\.1:25 state=established profile=modern c2s_bytes=[1-9][0-9]* s2c_bytes=[1-9][0-9]* mapped=no c2s_delta=\\+0 s2c_delta=\\+0 held=0 " \
  "$(grep "client=198\\.18\\.1\\.1:$port4 " "$IT_TMP/flows.txt")"
it_assert_match "flows lists the held IPv6 session" \
  "^queue=[01] client=\\[2001:db8:1::1\\]:$port6 server=\\[2001:db8:2::1\\]:25 state=established profile=modern " \
  "$(grep -F "client=[2001:db8:1::1]:$port6 " "$IT_TMP/flows.txt")"
out=$(ctl status 2>&1)
worker_lines "$out" | sed 's/^/    | /'
check_shares "status: the workers' flows include both held sessions, their shares add up" "$out" 2
for p in "${pids[@]}"; do
  wait "$p"
  it_assert_eq "a held session completed (dialogue.py exit 0)" 0 "$?"
done

it_section "reload through smtpguardctl"
it_assert_eq "before the reload a new session sees the server's banner" "$direct" "$(banner "$LAB_SERVER4")"
write_conf pix-mailguard
out=$(ctl reload 2>&1)
it_assert_eq "smtpguardctl reload exits 0" 0 "$?"
it_assert_eq "reload answers what the daemon logged" "reload: 2 policies, default profile modern" "$out"
it_assert_eq "the daemon logged the reload once" 1 \
  "$(grep -cxF "smtpguardd: reload: 2 policies, default profile modern" "$IT_DAEMON_ERR")"
it_assert_eq "a session started after the reload sees pix-mailguard's masked banner" "$masked" "$(banner "$LAB_SERVER4")"
it_assert_match "status shows the rule's new profile" $'\npolicies: lab-servers=pix-mailguard\n' "$(ctl status 2>&1)"
write_conf pix-mailguard "log-rate = x"
out=$(ctl reload 2>&1)
it_assert_eq "a reload of an invalid file exits 1" 1 "$?"
it_assert_match "... and says why, with the file and line" \
  "^smtpguardctl: the daemon refused: reload failed: $CONF:2: .*keeping the running configuration$" "$out"
it_assert_eq "... and the running profile stays" "$masked" "$(banner "$LAB_SERVER4")"

it_section "rules show, remove, install"
ctl rules show >"$IT_TMP/rules.txt" 2>&1
it_assert_eq "smtpguardctl rules show exits 0" 0 "$?"
sed 's/^/    | /' "$IT_TMP/rules.txt"
it_assert_match "rules show names the table and how it queues" '^rules: table (inet|ip) smtpguard.*, queue via ' "$(head -n 1 "$IT_TMP/rules.txt")"
it_assert_match "rules show says the options" '^options: hooks forward, queues 0-1, port 25, fail-closed' "$(sed -n 2p "$IT_TMP/rules.txt")"
it_check "rules show prints the table as nft lists it" grep -qE '^table (inet|ip) smtpguard \{' "$IT_TMP/rules.txt"
it_check "... with its queue rules" grep -qE 'tcp dport 25 .*queue num 0-1' "$IT_TMP/rules.txt"
out=$(ctl rules install 2>&1)
it_assert_eq "rules install while installed exits 1" 1 "$?"
it_assert_match "... and says so" 'the rules are installed already' "$out"
out=$(ctl rules remove 2>&1)
it_assert_eq "rules remove exits 0" 0 "$?"
printf '%s\n' "$out" | sed 's/^/    | /'
it_assert_match "... and says what it removed" '^rules removed: table (inet|ip) smtpguard' "$out"
it_assert_eq "no smtpguard table left in the gateway" "" "$(lab_exec gw nft list tables 2>/dev/null | grep smtpguard)"
it_assert_eq "without the rules a new session sees the server's banner (not inspected)" "$direct" "$(banner "$LAB_SERVER4")"
it_assert_match "status says the rules are not installed" $'\nrules: not installed' "$(ctl status 2>&1)"
out=$(ctl rules remove 2>&1)
it_assert_eq "rules remove when not installed exits 1" 1 "$?"
out=$(ctl rules install 2>&1)
it_assert_eq "rules install exits 0" 0 "$?"
printf '%s\n' "$out" | sed 's/^/    | /'
it_assert_match "... and says what it installed" 'rules installed: table (inet|ip) smtpguard' "$out"
it_assert_eq "with the rules back a new session sees the masked banner again" "$masked" "$(banner "$LAB_SERVER4")"

it_section "a stopped daemon"
it_daemon_alive
it_daemon_stop
it_check "the daemon removed its socket" test ! -e "$SOCK"
it_check "the Prometheus file written at exit has the final counts" \
  grep -qE '^smtpguard_packets_total\{queue="[01]"\} [1-9]' "$PROM_FILE"
out=$(ctl status 2>&1)
rc=$?
it_assert_eq "smtpguardctl against a stopped daemon exits 2" 2 "$rc"
it_assert_match "... and says it is not running" "^smtpguardctl: no control socket at $SOCK: smtpguardd is not running" "$out"

it_section "queues = auto: one worker per CPU, pinned with worker-cpus"
# What the daemon will see: nproc counts the CPUs of the affinity mask, as sched_getaffinity.
ncpu=$(lab_exec gw nproc)
cpus_allowed=$(lab_exec gw awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)
first_cpu=$(printf '%s\n' "$cpus_allowed" | grep -oE '^[0-9]+')
it_assert_match "precondition: nproc and the affinity mask in the gateway ($ncpu; $cpus_allowed)" \
  '^[1-9][0-9]*:[0-9]+$' "$ncpu:$first_cpu"
workers=$((ncpu > 64 ? 64 : ncpu))
range=0
((workers > 1)) && range="0-$((workers - 1))"
it_say "expecting $workers workers, queue $range, all on CPU $first_cpu"

write_conf modern "queues = auto" "worker-cpus = $first_cpu"
bad=$(lab_exec gw "$IT_DAEMON_BIN" --check-config --config "$CONF" --worker-cpus 1023 2>&1)
rc=$?
it_assert_eq "a worker-cpus outside the affinity mask fails --check-config (exit 1)" 1 "$rc"
it_assert_match "... and says which CPU and what the mask holds" \
  "^smtpguardd: --worker-cpus: CPU 1023 is not in the process's affinity mask \\($cpus_allowed\\)" "$bad"
bad=$(lab_exec gw "$IT_DAEMON_BIN" --config "$CONF" --control-socket none --worker-cpus 0-x 2>&1)
it_assert_eq "a worker-cpus that does not parse: the daemon does not start (exit 2)" 2 "$?"
it_assert_match "... and says what it takes" "^smtpguardd: --worker-cpus: got '0-x' \\(allowed: .*CPU numbers and ranges" "$bad"

IT_QUEUES='' it_daemon_start modern --config "$CONF" --control-socket "$SOCK"
want="smtpguardd: queues auto: $workers worker$( ((workers > 1)) && echo s) ($ncpu CPU$( ((ncpu > 1)) && echo s) in the affinity mask$( ((ncpu > 64)) && echo ', at most 64 workers')), queue $range; worker-cpus $first_cpu: queue 0 on CPU $first_cpu"
it_assert_eq "the start log says how many workers and why" "$want" \
  "$(grep -m1 '^smtpguardd: queues auto: ' "$IT_DAEMON_ERR" | cut -c1-${#want})"
it_check "... and the ready line names the queues" grep -qF "smtpguardd: ready (queues $range, " "$IT_DAEMON_ERR"
# stderr apart: libxtables warns about the xt NFQUEUE fallback in the middle of a rule's line.
rules=$(lab_exec gw nft list ruleset 2>/dev/null)
it_assert_eq "the installed rules queue port 25 both ways to exactly queue $range" \
  "dport $range;sport $range" \
  "$(printf '%s\n' "$rules" | sed -nE 's/.*tcp (dport|sport) 25 .*queue (flags bypass )?(to |num )?([0-9]+(-[0-9]+)?).*/\1 \4/p' | sort -u | paste -sd ';')"
it_check "... never by CPU (no fanout)" bash -c '! grep -q fanout <<<"$1"' _ "$rules"
it_assert_eq "a session goes through the auto workers (modern leaves the banner alone)" \
  "$direct" "$(banner "$LAB_SERVER4")"
sleep 0.5 # a worker publishes its flow count once a loop round (at most 200 ms)
out=$(ctl status 2>&1)
it_assert_eq "smtpguardctl status exits 0" 0 "$?"
printf '%s\n' "$out" | sed 's/^/    | /'
it_assert_match "status counts the workers" $'\nqueues: [0-9 ]+ \\('"$workers"$' workers?\\)\n' "$out"
it_assert_eq "status has one line per worker, each pinned to CPU $first_cpu" "$workers" \
  "$(worker_lines "$out" | grep -cE "^  queue [0-9]+: cpu $first_cpu, [0-9]+ flows? now \([0-9]+%\)$")"
it_assert_eq "... for queues 0 to $((workers - 1))" "$(seq -s ' ' 0 $((workers - 1)))" \
  "$(worker_lines "$out" | sed -nE 's/^  queue ([0-9]+):.*/\1/p' | paste -sd ' ')"
check_shares "status: the session's flow is counted, the shares add up" "$out" 1
it_daemon_stop
it_finish
