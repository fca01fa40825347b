#!/usr/bin/env bash
# smtpguardctl watch against a daemon in the lab (docs/operations.md, "Troubleshooting"):
#  - a watcher filtered on the lab's client prefix and port 25 sees, for a session through the
#    gateway under asa-default, the banner, the EHLO keyword STARTTLS and the command EXPN masked,
#    each decision line followed by the line before ("- ") and after ("+ ") exactly, and a
#    drop-connection (over-long MAIL line) marked ends-connection;
#  - a watcher filtered on another client prefix sees nothing of it (only its "watching" line);
#  - a watcher on the client's IPv6 prefix sees an IPv6 session's masked EXPN (bracketed
#    endpoints, before and after), the IPv4 watcher nothing of it; once it goes it is forgotten;
#  - a watcher that connects, asks for a 16-record queue and never reads does not stop mail:
#    sessions with 240 masked commands complete (timed, and timed before it came), a mail is delivered, the daemon counts the
#    records it dropped for it (watch_dropped in stats, the watch line of status), and the
#    reading watcher lost nothing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init watch
if ((IT_DAEMON == 0)); then
  it_say "SMTPGUARD_IT_NO_DAEMON=1: nothing to watch; skipped"
  exit 77
fi
CTL_BIN=$SMTPGUARD_BUILD/smtpguardctl
[[ -x $CTL_BIN ]] || it_fatal "smtpguardctl binary $CTL_BIN not found or not executable (set SMTPGUARD_BUILD)"
it_lab_up

SOCK=$IT_TMP/ctl.sock
ctl() { "$CTL_BIN" --socket "$SOCK" "$@"; }
counter() { sed -n "s/^$1 = //p" "$2" | head -n 1; }
# Background processes of this test, ended by pid in the trap as well as at the end.
WATCH_PIDS=()
stop_watchers() {
  local p
  for p in "${WATCH_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${WATCH_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  WATCH_PIDS=()
}
trap 'rc=$?; stop_watchers; (exit $rc); _it_cleanup' EXIT
# wait_for DESC SECONDS COMMAND...: poll COMMAND every 0.1 s, at most SECONDS.
wait_for() {
  local desc=$1 limit=$2 i
  shift 2
  for ((i = 0; i < limit * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  it_fail "$desc" "not within ${limit}s"
  return 1
}
watchers_now() { ctl status | grep -qE "^watch: $1 watchers? now"; }

direct_banner=$(lab_read_banner server "$LAB_SERVER4" 25) || it_fatal "no banner from the server"
masked_banner=$(it_mask_banner "$direct_banner")
lab_exec server $IT_DIALOGUE "$LAB_SERVER4" 25 -c 'EHLO client.example.org' -c QUIT >"$IT_TMP/ehlo.direct" 2>&1 ||
  it_fatal "direct EHLO failed: $(cat "$IT_TMP/ehlo.direct")"
it_assert_contains_line "precondition: Postfix advertises STARTTLS" "250-STARTTLS" "$IT_TMP/ehlo.direct"

it_daemon_start asa-default --control-socket "$SOCK"

it_section "a watcher on the client's prefix and a watcher on another"
# smtpguardctl itself in the background (not through a function): $! is its pid.
"$CTL_BIN" --socket "$SOCK" watch --client "$LAB_CLIENT_NET4" --port 25 >"$IT_TMP/watch.mine" 2>"$IT_TMP/watch.mine.err" &
WATCH_PIDS+=($!)
"$CTL_BIN" --socket "$SOCK" watch --client 198.18.3.0/24 >"$IT_TMP/watch.other" 2>"$IT_TMP/watch.other.err" &
WATCH_PIDS+=($!)
wait_for "both watchers are attached (status: watch: 2 watchers now)" 10 watchers_now 2 &&
  it_pass "both watchers are attached (status: watch: 2 watchers now)"

printf '%s\n' 'EHLO client.example.org' 'EXPN x' 'QUIT' >"$IT_TMP/session.cmds"
t0=$(date +%s.%N)
lab_exec client $IT_DIALOGUE "$LAB_SERVER4" 25 "$IT_TMP/session.cmds" >"$IT_TMP/session.out" 2>"$IT_TMP/session.err" ||
  it_fail "the session ran to QUIT" "$(cat "$IT_TMP/session.err")"
sed 's/^/    client got | /' "$IT_TMP/session.out"
it_assert_eq "the client sees the masked banner" "$masked_banner" "$(head -n 1 "$IT_TMP/session.out")"
# An over-long MAIL line: asa-default drops the connection (cmd line length > 512).
lab_exec client $IT_DIALOGUE "$LAB_SERVER4" 25 -c 'EHLO client.example.org' \
  -c "MAIL FROM:<$(printf 'a%.0s' {1..600})@example.org>" -c QUIT --timeout 3 >"$IT_TMP/drop.out" 2>&1
wait_for "the watcher received the session's last decision" 5 grep -q 'drop-connection' "$IT_TMP/watch.mine"
t1=$(date +%s.%N)
it_say "two sessions (the second waits 3 s for a reply that never comes) to their decisions on the watcher: $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s"
sed 's/^/    watch | /' "$IT_TMP/watch.mine" | head -n 40

# check_record DESC REGEX [BEFORE AFTER]: a line of the watch output ($WATCH_FILE, by default the
# first watcher's) matches REGEX, and (when given) the two lines after it are exactly BEFORE and
# AFTER.
check_record() {
  local out
  out=$("$IT_PY" - "${WATCH_FILE:-$IT_TMP/watch.mine}" "$@" <<'PY'
import re, sys
lines = open(sys.argv[1], encoding="latin-1").read().split("\n")
pattern = re.compile(sys.argv[3])
want = sys.argv[4:]
for i, line in enumerate(lines):
    if pattern.search(line):
        got = lines[i + 1:i + 1 + len(want)]
        print("ok" if got == want else "after the decision line: %r, expected %r" % (got, want))
        break
else:
    print("no line matches %r" % sys.argv[3])
PY
  )
  if [[ $out == ok ]]; then it_pass "$1"; else it_fail "$1" "$out"; fi
}
ts='^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} '
flow="198\\.18\\.1\\.1:[0-9]+ -> 198\\.18\\.2\\.1:25"
it_assert_eq "the watch begins with what it watches" \
  "watching client=$LAB_CLIENT_NET4 port=25 queue=1024" "$(head -n 1 "$IT_TMP/watch.mine")"
check_record "banner: decision, before and after" \
  "$ts$flow banner_masked action=mask dir=s2c subject=\"greeting\" detail=\"\"\$" \
  "  - $direct_banner\\r\\n" "  + $masked_banner\\r\\n"
check_record "EHLO keyword STARTTLS: decision, before and after" \
  "$ts$flow keyword_masked action=mask dir=s2c subject=\"STARTTLS\" detail=\"\"\$" \
  '  - 250-STARTTLS\r\n' '  + 250-XXXXXXXA\r\n'
check_record "command EXPN: decision, before and after" \
  "$ts$flow command_masked action=mask dir=c2s subject=\"EXPN\" detail=\"\"\$" \
  '  - EXPN x\r\n' '  + XXXXXX\r\n'
check_record "the dropped connection is marked ends-connection" \
  "$ts$flow command_line_length action=drop-connection dir=c2s .* ends-connection\$"
it_assert_eq "the other watcher saw nothing of the session" \
  "watching client=198.18.3.0/24 queue=1024" "$(cat "$IT_TMP/watch.other")"

# run_many TAG: the three sessions of 80 masked commands; prints how many ran to QUIT with every
# EXPN answered 500, and the seconds they took.
{
  echo 'EHLO client.example.org'
  for ((i = 0; i < 80; i++)); do echo 'EXPN x'; done
  echo QUIT
} >"$IT_TMP/many.cmds"
run_many() {
  local ok=0 run t0 t1
  t0=$(date +%s.%N)
  for run in 1 2 3; do
    if lab_exec client timeout 60 $IT_DIALOGUE "$LAB_SERVER4" 25 "$IT_TMP/many.cmds" >"$IT_TMP/many.$1.$run.out" 2>&1 &&
      [[ $(grep -c '^500' "$IT_TMP/many.$1.$run.out") -eq 80 ]]; then
      ok=$((ok + 1))
    fi
  done
  t1=$(date +%s.%N)
  echo "$ok $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")"
}

it_section "IPv6: a watcher on the client's IPv6 prefix"
"$CTL_BIN" --socket "$SOCK" watch --client "$LAB_CLIENT_NET6" >"$IT_TMP/watch.v6" 2>"$IT_TMP/watch.v6.err" &
V6_PID=$!
WATCH_PIDS+=($V6_PID)
wait_for "the IPv6 watcher is attached (3 watchers)" 10 watchers_now 3 && it_pass "the IPv6 watcher is attached (3 watchers)"
lab_exec client $IT_DIALOGUE "$LAB_SERVER6" 25 -c 'EHLO client.example.org' -c 'EXPN v6' -c QUIT \
  >"$IT_TMP/v6.out" 2>"$IT_TMP/v6.err" || it_fail "the IPv6 session ran to QUIT" "$(cat "$IT_TMP/v6.err")"
wait_for "the IPv6 watcher received the session's EXPN" 5 grep -q 'EXPN' "$IT_TMP/watch.v6"
WATCH_FILE=$IT_TMP/watch.v6 check_record "IPv6 command EXPN: bracketed endpoints, before and after" \
  "$ts\\[2001:db8:1::1\\]:[0-9]+ -> \\[2001:db8:2::1\\]:25 command_masked action=mask dir=c2s subject=\"EXPN\" detail=\"\"\$" \
  '  - EXPN v6\r\n' '  + XXXXXXX\r\n'
it_assert_eq "the IPv4 watcher saw nothing of the IPv6 session" 0 "$(grep -c '2001:db8' "$IT_TMP/watch.mine")"
kill "$V6_PID" 2>/dev/null
wait "$V6_PID" 2>/dev/null
wait_for "the IPv6 watcher, gone, is forgotten (2 watchers)" 10 watchers_now 2 && it_pass "the IPv6 watcher, gone, is forgotten (2 watchers)"

it_section "240 masked commands with the two watchers that read"
read -r ok took < <(run_many base)
it_assert_eq "three sessions of 80 masked commands each ran to QUIT (every EXPN answered 500)" 3 "$ok"
it_say "240 masked commands in $took s with two reading watchers"
ctl stats >"$IT_TMP/stats.base" 2>&1
it_assert_eq "watchers that read lose nothing (watch_dropped = 0)" 0 "$(counter watch_dropped "$IT_TMP/stats.base")"

it_section "a watcher that never reads"
# Connects, asks for a 16-record queue, reads the answer never, holds the socket for at most
# 120 s (killed by pid before).
"$IT_PY" -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
s.sendall(b"watch queue=16\n")
time.sleep(120)' "$SOCK" &
WATCH_PIDS+=($!)
wait_for "the stuck watcher is attached (3 watchers)" 10 watchers_now 3 && it_pass "the stuck watcher is attached (3 watchers)"
read -r ok took < <(run_many stuck)
it_assert_eq "with it, three sessions of 80 masked commands each ran to QUIT (every EXPN answered 500)" 3 "$ok"
it_say "240 masked commands in $took s with a stuck watcher"
printf 'Delivered while a watcher was stuck.\n' >"$IT_TMP/body.txt"
it_swaks_delivers "a mail is delivered through the gateway while the watcher is stuck" \
  "$IT_TMP/body.txt" watchmail "$IT_TMP/swaks.log"
ctl stats >"$IT_TMP/stats.after" 2>&1
dropped=$(counter watch_dropped "$IT_TMP/stats.after")
records=$(counter watch_records "$IT_TMP/stats.after")
it_say "watch counters: records $records, dropped $dropped, attached $(counter watch_attached "$IT_TMP/stats.after")"
if [[ -n $dropped ]] && ((dropped > 0)); then
  it_pass "the records the stuck watcher did not take are dropped and counted (watch_dropped = $dropped)"
else
  it_fail "the records the stuck watcher did not take are dropped and counted" "watch_dropped = '$dropped'"
fi
it_assert_match "status shows the drops" "watch: 3 watchers now; [0-9]+ records sent, $dropped dropped" "$(ctl status)"
wait_for "the reading watcher got all 480 commands" 10 \
  bash -c "[[ \$(grep -c 'subject=\"EXPN\"' '$IT_TMP/watch.mine') -ge 481 ]]"
n=$(grep -c 'subject="EXPN"' "$IT_TMP/watch.mine")
it_assert_eq "the reading watcher lost nothing (481 EXPN records)" 481 "$n"
it_assert_eq "the reading watcher was told of no loss" 0 "$(grep -c ' dropped ' "$IT_TMP/watch.mine")"

stop_watchers
wait_for "the watchers that went are forgotten (0 watchers)" 10 watchers_now 0 && it_pass "the watchers that went are forgotten (0 watchers)"
it_daemon_report_and_finish
