# shellcheck shell=bash
# Shared helpers of the integration tests (sourced by tests/integration/*_test.sh).
#
# A test does:
#   source "$(dirname "$0")/lib.sh"
#   it_init mail_v4            # root check, temp dir, trap, daemon binary
#   it_lab_up                  # private namespaces + Postfix (scripts/lab-lib.sh)
#   it_daemon_start pix-mailguard
#   ... it_check / it_assert_eq / it_assert_match ...
#   it_daemon_stop             # SIGTERM, exit code 0, rules gone
#   it_finish                  # exit 0 if every check passed, 1 otherwise
#
# The EXIT trap stops the daemon and removes the lab whatever happens.
#
# Environment:
#   SMTPGUARD_BUILD    build dir holding smtpguardd (ctest sets it)
#   SMTPGUARD_SOURCE   source dir (ctest sets it)
#   SMTPGUARD_IT_NO_DAEMON=1
#                      developer mode: run everything through plain kernel
#                      forwarding, assert the unrewritten behaviour instead, and
#                      exit 77 (skipped) on success so this never counts as a pass
#   SMTPGUARD_IT_READY_TIMEOUT  seconds to wait for "smtpguardd: ready" (15)
#   SMTPGUARD_LAB_KEEP=1        keep the run dir (maillog, Maildir) for inspection

set -uo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export LC_ALL=C

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SMTPGUARD_SOURCE=${SMTPGUARD_SOURCE:-$(cd "$IT_DIR/../.." && pwd)}
SMTPGUARD_BUILD=${SMTPGUARD_BUILD:-$SMTPGUARD_SOURCE/build}
IT_PY=/usr/bin/python3 # Debian's python: the one with python3-aiosmtpd
IT_MAILTOOL="$IT_PY $IT_DIR/mailtool.py"
IT_DIALOGUE="$IT_PY $IT_DIR/dialogue.py"
IT_READY_TIMEOUT=${SMTPGUARD_IT_READY_TIMEOUT:-15}
IT_STOP_TIMEOUT=10

# shellcheck source=scripts/lab-lib.sh
source "$SMTPGUARD_SOURCE/scripts/lab-lib.sh"

IT_PASSED=0
IT_FAILED=0
IT_DAEMON=1 # 0 in SMTPGUARD_IT_NO_DAEMON mode
IT_DAEMON_PID=""
IT_DAEMON_N=0
IT_TMP=""
IT_NAME=""

it_say() { printf '%s: %s\n' "${IT_NAME:-it}" "$*"; }
it_section() { printf '\n== %s: %s\n' "${IT_NAME:-it}" "$*"; }

# Fatal: setup is broken, the test cannot go on.
it_fatal() {
  printf '%s: FATAL: %s\n' "${IT_NAME:-it}" "$*" >&2
  IT_FAILED=$((IT_FAILED + 1))
  exit 1
}

it_pass() {
  IT_PASSED=$((IT_PASSED + 1))
  printf '%s: ok   - %s\n' "$IT_NAME" "$1"
}

it_fail() {
  IT_FAILED=$((IT_FAILED + 1))
  printf '%s: FAIL - %s\n' "$IT_NAME" "$1" >&2
  shift
  local l
  for l in "$@"; do printf '    %s\n' "$l" >&2; done
}

# it_check DESC CMD...: pass if CMD succeeds.
it_check() {
  local desc=$1
  shift
  local out
  if out=$("$@" 2>&1); then
    it_pass "$desc"
  else
    it_fail "$desc" "command: $*" "output: $(printf '%s' "$out" | tail -n 15)"
  fi
}

# it_assert_eq DESC EXPECTED ACTUAL
it_assert_eq() {
  if [[ $2 == "$3" ]]; then
    it_pass "$1"
  else
    it_fail "$1" "expected: $(printf '%q' "$2")" "actual:   $(printf '%q' "$3")"
  fi
}

# it_assert_match DESC REGEX ACTUAL (bash =~, extended regex)
it_assert_match() {
  if [[ $3 =~ $2 ]]; then
    it_pass "$1"
  else
    it_fail "$1" "expected to match: $2" "actual: $(printf '%q' "$3")"
  fi
}

# it_assert_contains_line DESC LINE FILE: FILE has LINE as a whole line.
it_assert_contains_line() {
  if grep -qxF -- "$2" "$3"; then
    it_pass "$1"
  else
    it_fail "$1" "no line $(printf '%q' "$2") in $3:" "$(sed 's/^/| /' "$3" | head -n 40)"
  fi
}

# it_assert_no_line_matching DESC REGEX FILE
it_assert_no_line_matching() {
  if grep -qE -- "$2" "$3"; then
    it_fail "$1" "unexpected line(s) matching $2 in $3:" "$(grep -E -- "$2" "$3" | head -n 10)"
  else
    it_pass "$1"
  fi
}

# require_root: skip (77) when not root — but under CI a skipped integration
# suite would hide everything, so there it is a failure.
require_root() {
  [[ $EUID -eq 0 ]] && return 0
  if [[ ${CI:-} == true ]]; then
    echo "${IT_NAME:-it}: FAIL: integration tests need root (CI=true)" >&2
    exit 1
  fi
  echo "${IT_NAME:-it}: SKIP: integration tests need root" >&2
  exit 77
}

_it_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $IT_DAEMON_PID ]] && kill -0 "$IT_DAEMON_PID" 2>/dev/null; then
    kill -TERM "$IT_DAEMON_PID" 2>/dev/null
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$IT_DAEMON_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$IT_DAEMON_PID" 2>/dev/null
  fi
  if [[ -n ${LAB_PREFIX:-} ]]; then
    if [[ $rc -ne 0 && $rc -ne 77 && -n ${LAB_MAILLOG:-} && -r ${LAB_MAILLOG:-} ]]; then
      echo "--- last lines of the server's maillog ($LAB_MAILLOG):" >&2
      grep -vE 'match_host(name|addr)|smtp_stream_setup|watchdog_pat' "$LAB_MAILLOG" | tail -n 25 >&2
    fi
    lab_down "$LAB_PREFIX" >/dev/null 2>&1
  fi
  if [[ -n $IT_TMP && -d $IT_TMP ]]; then
    if [[ -z ${SMTPGUARD_LAB_KEEP:-} ]]; then
      rm -rf "$IT_TMP"
    else
      : >"$IT_TMP/.kept"
      [[ -n ${IT_KEPT_SAID:-} ]] || echo "${IT_NAME:-it}: kept $IT_TMP (SMTPGUARD_LAB_KEEP)" >&2
    fi
  fi
  exit "$rc"
}

# it_init NAME: common start of every test.
it_init() {
  IT_NAME=$1
  require_root
  # Temp dirs of runs killed before their trap ran (name carries the pid).
  local d
  for d in /tmp/sgit-*.*.*; do
    [[ -d $d && $d =~ \.([0-9]+)\.[A-Za-z0-9]{6}$ ]] || continue
    [[ -e $d/.kept ]] && continue # SMTPGUARD_LAB_KEEP: the user removes it
    kill -0 "${BASH_REMATCH[1]}" 2>/dev/null || rm -rf "$d"
  done
  IT_TMP=$(mktemp -d "/tmp/sgit-$IT_NAME.$$.XXXXXX") || it_fatal "mktemp"
  chmod 755 "$IT_TMP"
  trap _it_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  IT_T0=$SECONDS
  if [[ ${SMTPGUARD_IT_NO_DAEMON:-} == 1 ]]; then
    # It ends as "skipped": under CI that would hide every check.
    [[ ${CI:-} == true ]] && it_fatal "SMTPGUARD_IT_NO_DAEMON=1 is a developer mode, not for CI=true"
    IT_DAEMON=0
    it_say "SMTPGUARD_IT_NO_DAEMON=1: plain forwarding, checking the unrewritten behaviour (result: skipped)"
  else
    IT_DAEMON_BIN=$SMTPGUARD_BUILD/smtpguardd
    [[ -x $IT_DAEMON_BIN ]] || it_fatal "daemon binary $IT_DAEMON_BIN not found or not executable (set SMTPGUARD_BUILD)"
  fi
  local tool
  for tool in ip postfix postconf saslpasswd2 swaks openssl ethtool "$IT_PY"; do
    command -v "$tool" >/dev/null || it_fatal "missing tool '$tool' (run scripts/install-deps)"
  done
}

# it_vrfy_session NAME: one session from the client through the gateway: EHLO, HELO, MAIL, RCPT,
# VRFY postmaster, QUIT (pix-mailguard masks the EHLO and the VRFY, and the banner); the client's
# local port into $IT_TMP/NAME.port, its transcript into $IT_TMP/NAME.out.
it_vrfy_session() {
  printf '%s\n' 'EHLO client.example.org' 'HELO helo.example.org' 'MAIL FROM:<sender@example.org>' \
    'RCPT TO:<user@example.org>' 'VRFY postmaster' 'QUIT' >"$IT_TMP/$1.cmds"
  lab_exec client $IT_DIALOGUE "$LAB_SERVER4" 25 "$IT_TMP/$1.cmds" --timeout 20 \
    --port-file "$IT_TMP/$1.port" >"$IT_TMP/$1.out" 2>&1 || it_fail "session $1 ran" "$(cat "$IT_TMP/$1.out")"
}

# it_lab_up: a lab private to this test run.
it_lab_up() {
  local short=${IT_NAME//[^A-Za-z0-9]/}
  lab_reap_stale
  LAB_OWNER_PID=$$
  lab_up "sgt${short:0:12}$$" || it_fatal "lab up failed"
  it_say "lab $LAB_PREFIX up (run dir $LAB_RUN)"
}

# it_daemon_start PROFILE [EXTRA ARGS...]: smtpguardd in the gateway namespace;
# wait (bounded) for its "smtpguardd: ready" line. Sets IT_DAEMON_PID and
# IT_DAEMON_ERR (its stderr file). A no-op in no-daemon mode.
# The tests state the queues they need: --queues 0-1 (two workers, whatever the
# machine's CPUs) unless IT_QUEUES says otherwise; IT_QUEUES= (empty) passes no
# --queues, so the daemon takes its configuration file's or its default (auto).
it_daemon_start() {
  local profile=$1
  shift
  if ((IT_DAEMON == 0)); then
    it_say "(no daemon: would start smtpguardd --profile $profile $*)"
    return 0
  fi
  [[ -z $IT_DAEMON_PID ]] || it_fatal "it_daemon_start: a daemon is running already"
  IT_DAEMON_N=$((IT_DAEMON_N + 1))
  IT_DAEMON_OUT=$IT_TMP/daemon.$IT_DAEMON_N.out
  IT_DAEMON_ERR=$IT_TMP/daemon.$IT_DAEMON_N.err
  # `ip netns exec` execs: $! is the daemon's own pid.
  # A control socket of its own unless the test names one: two labs on one host (another
  # engineer's tests, a benchmark) must not collide on the default path.
  local ctl=()
  [[ " $* " == *" --control-socket "* ]] || ctl=(--control-socket "$IT_TMP/ctl.$IT_DAEMON_N.sock")
  local queues=(--queues "${IT_QUEUES-0-1}")
  [[ -n ${IT_QUEUES-0-1} ]] || queues=()
  ip netns exec "$(lab_ns gw)" "$IT_DAEMON_BIN" "${queues[@]}" --profile "$profile" --install-rules "${ctl[@]}" "$@" \
    >"$IT_DAEMON_OUT" 2>"$IT_DAEMON_ERR" &
  IT_DAEMON_PID=$!
  local deadline=$((SECONDS + IT_READY_TIMEOUT))
  while ((SECONDS < deadline)); do
    if grep -q 'smtpguardd: ready' "$IT_DAEMON_ERR" "$IT_DAEMON_OUT" 2>/dev/null; then
      it_say "smtpguardd --profile $profile${*:+ $*} ready (pid $IT_DAEMON_PID): $(grep -h 'smtpguardd: ready' "$IT_DAEMON_ERR" "$IT_DAEMON_OUT" | head -n 1)"
      return 0
    fi
    if ! kill -0 "$IT_DAEMON_PID" 2>/dev/null; then
      wait "$IT_DAEMON_PID"
      local rc=$?
      IT_DAEMON_PID=""
      it_fatal "smtpguardd exited with status $rc before it was ready; stderr:
$(tail -n 30 "$IT_DAEMON_ERR")"
    fi
    sleep 0.1
  done
  it_fatal "smtpguardd not ready after ${IT_READY_TIMEOUT}s; stderr:
$(tail -n 30 "$IT_DAEMON_ERR")"
}

# it_daemon_stop: SIGTERM; the daemon must exit 0 within IT_STOP_TIMEOUT and
# leave no queue rule behind. Prints its last stderr lines (counter summary).
it_daemon_stop() {
  ((IT_DAEMON == 0)) && return 0
  [[ -n $IT_DAEMON_PID ]] || it_fatal "it_daemon_stop: no daemon running"
  kill -TERM "$IT_DAEMON_PID" 2>/dev/null
  local i
  for ((i = 0; i < IT_STOP_TIMEOUT * 10; i++)); do
    kill -0 "$IT_DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$IT_DAEMON_PID" 2>/dev/null; then
    kill -KILL "$IT_DAEMON_PID" 2>/dev/null
    wait "$IT_DAEMON_PID" 2>/dev/null
    IT_DAEMON_PID=""
    it_fail "smtpguardd exits within ${IT_STOP_TIMEOUT}s of SIGTERM" "it did not; killed" "$(tail -n 20 "$IT_DAEMON_ERR")"
    return 1
  fi
  wait "$IT_DAEMON_PID"
  IT_DAEMON_RC=$?
  IT_DAEMON_PID=""
  it_say "smtpguardd stderr at exit (last lines):"
  tail -n 40 "$IT_DAEMON_ERR" | sed "s/^/    | /"
  it_assert_eq "smtpguardd exits 0 on SIGTERM" 0 "$IT_DAEMON_RC"
  local rules
  rules=$(lab_exec gw nft list ruleset 2>/dev/null | grep -iE 'queue' || true)
  it_assert_eq "no queue rule left in the gateway after the daemon exits" "" "$rules"
}

# it_daemon_alive: the daemon is still running (did not crash mid-test).
it_daemon_alive() {
  ((IT_DAEMON == 0)) && return 0
  if [[ -n $IT_DAEMON_PID ]] && kill -0 "$IT_DAEMON_PID" 2>/dev/null; then
    it_pass "smtpguardd still running"
  else
    it_fail "smtpguardd still running" "it died; stderr:" "$(tail -n 20 "$IT_DAEMON_ERR" 2>/dev/null)"
  fi
}

# it_finish: summary line and exit status (0 all passed, 1 a failure,
# 77 success in no-daemon mode).
# The end of a test whose last daemon is still running: its non-zero counters, then the alive
# check, the stop and the verdict.
it_daemon_report_and_finish() {
  if ((IT_DAEMON)); then
    it_say "daemon counters:"
    it_daemon_counters | sed 's/^/    | /'
  fi
  it_daemon_alive
  it_daemon_stop
  it_finish
}

it_finish() {
  it_say "$IT_PASSED passed, $IT_FAILED failed ($((SECONDS - IT_T0))s)"
  if ((IT_FAILED > 0)); then exit 1; fi
  if ((IT_PASSED == 0)); then
    echo "$IT_NAME: FAIL: no check ran" >&2
    exit 1
  fi
  if ((IT_DAEMON == 0)); then
    it_say "no-daemon mode: reporting as skipped"
    exit 77
  fi
  exit 0
}

# --- mail helpers -----------------------------------------------------------------

# it_send_swaks ADDR MSGFILE LOG: HELO (pix-mailguard lets no EHLO through).
it_send_swaks() {
  lab_exec client timeout 120 swaks --protocol SMTP --helo client.example.org \
    --from sender@example.org --to user@example.org --server "$1" \
    --timeout 60 --data "@$2" --suppress-data >"$3" 2>&1
}

# it_send_smtplib ADDR MSGFILE: prints the elapsed seconds.
it_send_smtplib() {
  lab_exec client timeout 120 $IT_MAILTOOL send --host "$1" --msg "$2"
}

# it_delivered_body_sha MSGID: SHA-256 of the stored body of that message
# (waits up to 30s for delivery), "missing" if it never arrives.
it_delivered_body_sha() {
  local f
  f=$($IT_MAILTOOL wait --maildir "$LAB_MAILDIR" --msgid "$1" --timeout 30) || {
    echo missing
    return 1
  }
  $IT_MAILTOOL bodysha "$f"
}

# it_server_commands PORT: the command lines Postfix received on the session
# from client port PORT, one per line, in order (from maillog's debug_peer
# lines "< host[addr]:port: LINE"). Waits (bounded) for the session's
# disconnect line so postlogd has written everything.
it_server_commands() {
  local port=$1 i
  for ((i = 0; i < 50; i++)); do
    grep -qE "disconnect from [^ ]*\]:$port( |$)" "$LAB_MAILLOG" && break
    sleep 0.1
  done
  # A client port can come round again within one test: only the last session from it counts.
  _it_last_session "$port" | sed -n -E "s/^.* postfix\/smtpd\[[0-9]+\]: < [^ ]*\]:$port: //p"
}

# _it_last_session PORT: the maillog from the last "connect from ...]:PORT" on.
_it_last_session() {
  local first
  first=$(grep -nE "postfix/smtpd\[[0-9]+\]: connect from [^ ]*\]:$1\$" "$LAB_MAILLOG" | tail -n 1 | cut -d: -f1)
  tail -n "+${first:-1}" "$LAB_MAILLOG"
}

# it_server_replies PORT: the reply lines Postfix sent on that session.
it_server_replies() {
  local port=$1
  _it_last_session "$port" | sed -n -E "s/^.* postfix\/smtpd\[[0-9]+\]: > [^ ]*\]:$port: //p"
}

# it_mask_banner LINE: the banner as pix-mailguard shows it: the reply code
# and the separator after it stay; in the text every character except the
# digits 2 and 0 becomes '*'.
it_mask_banner() {
  local line=$1
  local head=${line:0:4} text=${line:4}
  printf '%s%s\n' "$head" "$(printf '%s' "$text" | sed 's/[^20]/*/g')"
}

# it_tcp_out_segs HOST: TCP OutSegs counter of a lab namespace.
it_tcp_out_segs() {
  lab_exec "$1" awk '/^Tcp:/ { if (h) { for (i = 1; i <= NF; i++) if (n[i] == "OutSegs") print $i } else { h = 1; for (i = 1; i <= NF; i++) n[i] = $i } }' /proc/net/snmp
}

# --- ESMTP helpers (strip / answer / reset tests) ----------------------------------

# it_send_swaks_esmtp ADDR MSGFILE LOG [SWAKS ARGS...]: EHLO and, when the
# server offers it, PIPELINING (MAIL RCPT DATA in one write).
it_send_swaks_esmtp() {
  local addr=$1 msg=$2 log=$3
  shift 3
  lab_exec client timeout 120 swaks --protocol ESMTP --pipeline --ehlo client.example.org \
    --from sender@example.org --to user@example.org --server "$addr" \
    --timeout 60 --data "@$msg" --suppress-data "$@" >"$log" 2>&1
}

# it_reply_lines N FILE: the lines of the N-th reply (0: greeting, 1: the
# reply to the first command, ...) of a dialogue.py transcript (no --show-sent).
it_reply_lines() {
  awk -v want="$1" '{ if (n == want) print; if ($0 ~ /^[0-9][0-9][0-9]( |$)/) n++ }' "$2"
}

# it_swaks_ehlo_reply LOG: the EHLO reply lines (without "<-  ") of a swaks log.
it_swaks_ehlo_reply() {
  awk '/^ -> EHLO / { on = 1; next }
       on && /^<-  / { l = substr($0, 5); print l; if (l ~ /^[0-9][0-9][0-9]( |$)/) exit }' "$1"
}

# it_swaks_delivers DESC BODYFILE ID LOG: a message with BODYFILE as its body and Message-ID
# ID.PID@client.example.org, sent with it_send_swaks_esmtp to the server's IPv4 address (swaks
# output in LOG); checks "DESC" (swaks succeeded) and "DESC: stored intact" (the stored body).
it_swaks_delivers() {
  local desc=$1 body=$2 id=$3 log=$4
  $IT_MAILTOOL mkmsg --for-swaks --body "$body" --msgid "$id.$$@client.example.org" \
    "$IT_TMP/$id.eml" || it_fatal "mkmsg $id"
  if it_send_swaks_esmtp "$LAB_SERVER4" "$IT_TMP/$id.eml" "$log"; then
    it_pass "$desc"
  else
    it_fail "$desc" "$(tail -n 10 "$log")"
  fi
  it_check_delivered "$desc: stored intact" "$id.$$@client.example.org" \
    "$($IT_MAILTOOL sha "$body")"
}

# it_check_delivered DESC MSGID SENT_SHA: the stored body of MSGID has SENT_SHA.
it_check_delivered() {
  local got
  got=$(it_delivered_body_sha "$2")
  it_assert_eq "$1" "$3" "$got"
}

# it_daemon_counters: SIGUSR1 -> the daemon prints its counters on stderr;
# prints the lines it added (bounded wait), counters that are 0 left out.
it_daemon_counters() {
  ((IT_DAEMON == 0)) && return 0
  [[ -n $IT_DAEMON_PID ]] || return 0
  local before i
  before=$(wc -l <"$IT_DAEMON_ERR")
  kill -USR1 "$IT_DAEMON_PID" 2>/dev/null || return 0
  for ((i = 0; i < 20; i++)); do
    sleep 0.1
    (($(wc -l <"$IT_DAEMON_ERR") > before)) && break
  done
  sleep 0.2
  tail -n "+$((before + 1))" "$IT_DAEMON_ERR" | grep -v ' = 0$'
}
