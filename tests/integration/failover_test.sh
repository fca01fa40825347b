#!/usr/bin/env bash
# A failover pair (docs/failover.md): two gateways, keepalived VRRP moving the clients' and
# the servers' next hops together (failover/keepalived.conf), conntrackd FT-FW syncing the
# conntrack table with its marks (failover/conntrackd.conf), smtpguardd --profile modern
# --strip-keyword AUTH on both (every EHLO session is resized: mapped). scripts/lab-pair.sh
# builds it on top of the lab.
#
#  - the active gateway (gw1) inspects, and the standby's kernel table holds the connections
#    synced from it (conntrackd) with the mapped bit of the ct mark;
#  - 50 sessions start 0.25 s apart (EHLO and HELO ones, some sending their message in pieces,
#    some pausing between commands); when the 26th starts, gw1 fails hard: every process in it
#    frozen then SIGKILLed, its links down;
#  - every session either completed, with its mail stored byte-identical, or ended in a reset
#    or error the client saw (none stalls); no stored message differs from what was sent;
#  - sessions started after the failover completed inspected by gw2 (AUTH stripped), and gw2
#    met the connections begun on gw1 as the mid-stream exception, the mapped ones recognised by
#    the synced mark (flows_reset_unmappable);
#  - the failover time: from the kill to the end of the first new session inspected by gw2,
#    probed every 100 ms; printed, and at most FAILOVER_MAX_SECONDS (10).
# FAILOVER_MIDSTREAM=pass runs both daemons with --exception-policy-midstream pass: in-flight
# zero-delta sessions may then complete uninspected through gw2 (their mail must still be
# intact), and the mapped ones must still be reset by the synced mark.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/lab-pair.sh
source "$SMTPGUARD_SOURCE/scripts/lab-pair.sh"
it_init failover
((IT_DAEMON)) || it_fatal "the failover test needs the daemon (no SMTPGUARD_IT_NO_DAEMON mode)"
for tool in keepalived conntrackd conntrack; do
  command -v "$tool" >/dev/null || it_fatal "missing tool '$tool' (run scripts/install-deps)"
done
FO_SESSIONS=$IT_DIR/failover_sessions.py
FO_COUNT=${FAILOVER_SESSIONS:-50}
FO_MAX=${FAILOVER_MAX_SECONDS:-10}
FO_MAPPED=$((0x00400000))
FO_MIDSTREAM=${FAILOVER_MIDSTREAM:-reject}
CTL_BIN=$SMTPGUARD_BUILD/smtpguardctl
[[ -x $CTL_BIN ]] || it_fatal "smtpguardctl binary $CTL_BIN not found (set SMTPGUARD_BUILD)"
declare -A FO_PID=()

# fo_daemon_start N: smtpguardd in gateway N, the same options on both; bounded wait for ready.
fo_daemon_start() {
  local n=$1 i
  # `ip netns exec` execs: $! is the daemon's own pid.
  ip netns exec "$(lab_ns "gw$n")" "$IT_DAEMON_BIN" --queues 0-1 --profile modern --strip-keyword AUTH --install-rules \
    --exception-policy-midstream "$FO_MIDSTREAM" --control-socket "$IT_TMP/ctl.gw$n.sock" >"$IT_TMP/daemon.gw$n.out" 2>"$IT_TMP/daemon.gw$n.err" &
  FO_PID[$n]=$!
  for ((i = 0; i < IT_READY_TIMEOUT * 10; i++)); do
    if grep -q 'smtpguardd: ready' "$IT_TMP/daemon.gw$n.err"; then
      it_say "gw$n: $(grep -h 'smtpguardd: ready' "$IT_TMP/daemon.gw$n.err")"
      return 0
    fi
    kill -0 "${FO_PID[$n]}" 2>/dev/null || it_fatal "smtpguardd in gw$n exited: $(tail -n 20 "$IT_TMP/daemon.gw$n.err")"
    sleep 0.1
  done
  it_fatal "smtpguardd in gw$n not ready after ${IT_READY_TIMEOUT}s"
}

# fo_counter N NAME: a counter of gateway N's daemon (smtpguardctl stats).
fo_counter() {
  timeout 5 "$CTL_BIN" --socket "$IT_TMP/ctl.gw$1.sock" stats 2>/dev/null |
    awk -v n="$2" '$1 == n && $2 == "=" { print $3; f = 1 } END { if (!f) print "none" }'
}

# fo_synced_mapped: SMTP connections in gw2's kernel table with the mapped bit. gw2 forwards
# nothing before the failure: they are gw1's, injected by conntrackd (DisableExternalCache On).
fo_synced_mapped() {
  local m c=0
  for m in $(pair_exec 2 conntrack -L -p tcp --dport 25 2>/dev/null | grep -o 'mark=[0-9]*' | cut -d= -f2); do
    ((m & FO_MAPPED)) && c=$((c + 1))
  done
  echo "$c"
}

it_lab_up
pair_up || it_fatal "pair network"
pair_services_up || it_fatal "keepalived and conntrackd"
fo_daemon_start 1
fo_daemon_start 2
it_check "gw1 holds both VIPs" pair_has_vips 1
if pair_has_vips 2; then it_fail "gw2 (standby) holds no VIP"; else it_pass "gw2 (standby) holds no VIP"; fi

it_section "before the failure: gw1 inspects, gw2 holds its connections with the mapped mark"
# Control: the server itself offers AUTH, so its absence at the client is the gateway's doing.
lab_exec server swaks --protocol ESMTP --ehlo server.example.org --quit-after EHLO \
  --server "$LAB_SERVER4" >"$IT_TMP/direct.log" 2>&1
it_assert_match "Postfix offers AUTH when asked directly" '250-AUTH PLAIN LOGIN' "$(cat "$IT_TMP/direct.log")"
printf 'Subject: warm-up\n\nwarm-up' >"$IT_TMP/warm.eml"
it_send_swaks_esmtp "$LAB_SERVER4" "$IT_TMP/warm.eml" "$IT_TMP/warm.log"
it_assert_match "a session through gw1 completes" '<-  221' "$(cat "$IT_TMP/warm.log")"
if grep -q 'AUTH' <(it_swaks_ehlo_reply "$IT_TMP/warm.log"); then
  it_fail "gw1 stripped AUTH from the EHLO reply" "$(it_swaks_ehlo_reply "$IT_TMP/warm.log")"
else
  it_pass "gw1 stripped AUTH from the EHLO reply"
fi
synced=0
for ((i = 0; i < 50; i++)); do
  synced=$(fo_synced_mapped)
  ((synced > 0)) && break
  sleep 0.1
done
it_assert_match "gw2's kernel table holds gw1's connection with the mapped bit ($synced)" '^[1-9]' "$synced"

it_section "$FO_COUNT sessions; gw1 fails hard when the $((FO_COUNT / 2 + 1))th starts"
lab_exec client "$IT_PY" "$FO_SESSIONS" probe --host "$LAB_SERVER4" --kill-file "$IT_TMP/killed" \
  --out "$IT_TMP/probe.out" --interval 0.1 --max 90 >"$IT_TMP/probe.log" 2>&1 &
probe_pid=$!
lab_exec client "$IT_PY" "$FO_SESSIONS" run --host "$LAB_SERVER4" --count "$FO_COUNT" --interval 0.25 \
  --half-file "$IT_TMP/half" --out "$IT_TMP/sessions.out" --timeout 30 >"$IT_TMP/sessions.log" 2>&1 &
run_pid=$!
for ((i = 0; i < 600; i++)); do [[ -e $IT_TMP/half ]] && break; sleep 0.05; done
[[ -e $IT_TMP/half ]] || it_fatal "the sessions did not get half-way: $(cat "$IT_TMP/sessions.log")"
gw1_stripped=$(fo_counter 1 edit_keyword_stripped)
# Right before the kill gw2 must still be the standby, or the failover time measures nothing.
if pair_has_vips 2; then gw2_before=master; else gw2_before=backup; fi
disown "${FO_PID[1]}" # SIGKILLed with the rest of gw1: no job notice
pair_fail 1 >"$IT_TMP/killed.tmp"
mv "$IT_TMP/killed.tmp" "$IT_TMP/killed"
killed=$(cat "$IT_TMP/killed")
unset 'FO_PID[1]'
it_say "gw1 killed at $killed (it had stripped $gw1_stripped EHLO replies)"
it_assert_match "gw1 inspected sessions before the failure" '^[1-9]' "$gw1_stripped"
it_assert_eq "gw2 held no VIP until the kill" backup "$gw2_before"

probe_rc=0
wait "$probe_pid" || probe_rc=$?
failover=$(cut -d' ' -f1 "$IT_TMP/probe.out" 2>/dev/null)
it_assert_eq "a new session completed inspected through gw2 after the failure" 0 "$probe_rc"
it_say "failover time: ${failover:-none} s (kill to the first new session inspected by gw2; $(cut -d' ' -f2 "$IT_TMP/probe.out" 2>/dev/null) probes 100 ms apart)"
if [[ -n $failover ]] && awk -v t="$failover" -v m="$FO_MAX" 'BEGIN { exit !(t <= m) }'; then
  it_pass "failover time $failover s <= $FO_MAX s"
else
  it_fail "failover time ${failover:-none} s <= $FO_MAX s"
fi
wait "$run_pid" || it_fail "the session driver exits 0" "$(cat "$IT_TMP/sessions.log")"
it_check "gw2 holds both VIPs" pair_has_vips 2
it_say "gw1 killed at $(date -d "@$killed" +%T.%N | cut -c1-12); gw2's keepalived:"
grep -E 'MASTER|BACKUP|advertisement timeout|priority 0' "$(pair_dir)/gw2/keepalived.log" | sed 's/^/    | /'

it_section "every session completed intact or ended in an error the client saw"
sed 's/^/    | /' "$IT_TMP/sessions.out"
n_ok=$(awk '$3 == "ok"' "$IT_TMP/sessions.out" | wc -l)
n_reset=$(awk '$3 == "reset"' "$IT_TMP/sessions.out" | wc -l)
n_stall=$(awk '$3 == "timeout"' "$IT_TMP/sessions.out" | wc -l)
it_say "$n_ok completed, $n_reset reset or refused (seen by the client), $n_stall stalled"
it_assert_eq "all $FO_COUNT sessions accounted for" "$FO_COUNT" "$((n_ok + n_reset + n_stall))"
it_assert_eq "no session stalled until its timeout" 0 "$n_stall"
it_assert_match "the failure hit sessions in flight (some were reset)" '^[1-9]' "$n_reset"
it_assert_eq "no session saw AUTH (each was inspected by one gateway or reset)" 0 \
  "$(awk '$4 == "auth"' "$IT_TMP/sessions.out" | wc -l)"
before=$(awk -v k="$killed" '$3 == "ok" && $8 < k' "$IT_TMP/sessions.out" | wc -l)
after=$(awk -v k="$killed" '$3 == "ok" && $4 == "stripped" && $7 > k' "$IT_TMP/sessions.out" | wc -l)
it_assert_match "sessions completed through gw1 before the failure ($before)" '^[1-9]' "$before"
it_assert_match "EHLO sessions begun after the failure completed inspected by gw2 ($after)" '^[1-9]' "$after"

# Whatever reached the Maildir (a reset session's mail too, had its end of data got through)
# must be the body sent; every completed session's mail must be there.
"$IT_PY" "$FO_SESSIONS" judge --sessions "$IT_TMP/sessions.out" --maildir "$LAB_MAILDIR" --wait 30 >"$IT_TMP/judge.out"
sed 's/^/    | /' "$IT_TMP/judge.out"
judged() { awk -v k="$1" '$1 == k && $2 == "=" { print $3 }' "$IT_TMP/judge.out"; }
it_assert_eq "every completed session's mail is stored byte-identical" "$n_ok" "$(judged ok_intact)"
it_assert_eq "no completed session's mail is missing" 0 "$(judged ok_missing)"
it_assert_eq "no corrupted delivery among the $(judged stored) stored" 0 "$(judged corrupted)"

it_section "gw2 inspected the new sessions and reset the ones begun on gw1"
it_say "gw2 counters:"
timeout 5 "$CTL_BIN" --socket "$IT_TMP/ctl.gw2.sock" stats 2>/dev/null |
  grep -E '^(edit_keyword_stripped|flows_reset_unmappable|exception_midstream|flows_created) ' | sed 's/^/    | /'
it_assert_match "gw2 stripped AUTH in new sessions" '^[1-9]' "$(fo_counter 2 edit_keyword_stripped)"
it_assert_match "gw2 recognised mapped connections by the synced mark (flows_reset_unmappable)" \
  '^[1-9]' "$(fo_counter 2 flows_reset_unmappable)"

it_section "gw2's daemon stops cleanly"
if kill -0 "${FO_PID[2]}" 2>/dev/null; then it_pass "smtpguardd in gw2 still running"; else it_fail "smtpguardd in gw2 still running"; fi
kill -TERM "${FO_PID[2]}"
rc=0
for ((i = 0; i < IT_STOP_TIMEOUT * 10; i++)); do kill -0 "${FO_PID[2]}" 2>/dev/null || break; sleep 0.1; done
wait "${FO_PID[2]}" || rc=$?
it_assert_eq "smtpguardd in gw2 exits 0 on SIGTERM" 0 "$rc"
it_finish
