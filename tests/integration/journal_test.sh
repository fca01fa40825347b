#!/usr/bin/env bash
# The decision log as native journal entries (docs/operations.md#journal-fields), from a real
# daemon in the lab to a real systemd-journald, read back with journalctl:
#  - with JOURNAL_STREAM naming its stderr (as systemd sets it), the daemon sends each decision
#    with a MESSAGE_ID per event type and SMTPGUARD_* fields: pix-mailguard masks the banner
#    (s2c), the EHLO and a VRFY (c2s); journalctl selects them by MESSAGE_ID and by field, with
#    the session's client, the SMTP context and _TRANSPORT=journal, and stderr has no copy;
#  - control: with JOURNAL_STREAM naming some other file (a child of a unit whose stderr is not
#    the journal), the same session leaves no native entry: the daemon checks the variable.
# journald runs in a private mount namespace of this test, over tmpfs mounts of its socket and
# storage directories: the host's journal is neither read nor written.
if [[ -z ${SG_JOURNAL_TEST_NS:-} ]]; then
  exec unshare --mount --propagation private env SG_JOURNAL_TEST_NS=1 bash "$0" "$@"
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init journal
if ((IT_DAEMON == 0)); then
  it_say "SMTPGUARD_IT_NO_DAEMON=1: nothing writes events; skipped"
  exit 77
fi
JOURNALD=/lib/systemd/systemd-journald
[[ -x $JOURNALD ]] || it_fatal "no $JOURNALD (package systemd)"
command -v journalctl >/dev/null || it_fatal "no journalctl (package systemd)"

# Private storage and sockets: tmpfs over each directory journald uses. A directory the host
# lacks is made for the mount and removed at the end.
MOUNTED=() MADE=()
journal_cleanup() {
  [[ -n ${JOURNALD_PID:-} ]] && kill "$JOURNALD_PID" 2>/dev/null && wait "$JOURNALD_PID" 2>/dev/null
  local d
  for d in "${MOUNTED[@]}"; do umount "$d" 2>/dev/null; done
  for d in "${MADE[@]}"; do rmdir "$d" 2>/dev/null; done
}
trap '_rc=$?; journal_cleanup; (exit $_rc); _it_cleanup' EXIT
for d in /run/systemd/journal /run/log/journal /var/log/journal; do
  while [[ ! -d $d ]]; do
    # Outermost first, so that removing in this order takes the innermost first.
    p=$d
    while [[ ! -d $(dirname "$p") ]]; do p=$(dirname "$p"); done
    mkdir "$p" || it_fatal "mkdir $p"
    MADE=("$p" "${MADE[@]}")
  done
  mount -t tmpfs -o mode=0755 tmpfs "$d" || it_fatal "tmpfs over $d"
  MOUNTED+=("$d")
done
"$JOURNALD" >"$IT_TMP/journald.log" 2>&1 &
JOURNALD_PID=$!
for ((i = 0; i < 50; i++)); do
  [[ -S /run/systemd/journal/socket ]] && break
  sleep 0.1
done
[[ -S /run/systemd/journal/socket ]] || it_fatal "journald did not open its socket: $(cat "$IT_TMP/journald.log")"
it_lab_up

PREFIX=8d4c1f3a9e2b47d6b5a0
# entries MATCH...: the journal's entries matching (journalctl syntax), as JSON lines, after
# journald has written them (bounded: 5 s for at least one).
entries() {
  local out i
  for ((i = 0; i < 50; i++)); do
    journalctl --sync 2>/dev/null
    out=$(journalctl --no-pager -o json "$@" 2>/dev/null)
    [[ -n $out ]] && break
    sleep 0.1
  done
  printf '%s\n' "$out"
}
# field NAME: NAME of each JSON line on stdin, one a line ("-" where absent).
field() {
  "$IT_PY" -c '
import json, sys
for line in sys.stdin:
    if line.strip():
        print(json.loads(line).get(sys.argv[1], "-"))' "$1"
}

it_section "native entries: MESSAGE_ID per event type and SMTPGUARD_* fields"
next_err=$IT_TMP/daemon.$((IT_DAEMON_N + 1)).err
: >"$next_err"
export JOURNAL_STREAM
JOURNAL_STREAM=$(stat -c '%d:%i' "$next_err")
it_daemon_start pix-mailguard
unset JOURNAL_STREAM
it_assert_match "the start log says journal entries" "event log: journal entries with MESSAGE_ID" \
  "$(cat "$IT_DAEMON_ERR")"
it_vrfy_session native
port=$(cat "$IT_TMP/native.port")
client="198.18.1.1:$port"
vrfy=$(entries "MESSAGE_ID=${PREFIX}000000001102" "SMTPGUARD_SUBJECT=VRFY" "SMTPGUARD_CLIENT=$client")
it_assert_eq "one VRFY masked entry for the session (by MESSAGE_ID, subject and client)" 1 \
  "$(printf '%s\n' "$vrfy" | grep -c .)"
it_assert_eq "its fields: event, action, dir, server, context, transport, identifier, priority" \
  "command_masked mask c2s 198.18.2.1:25 helo.example.org sender@example.org 1 journal smtpguardd 5 108004" \
  "$(for f in SMTPGUARD_EVENT SMTPGUARD_ACTION SMTPGUARD_DIR SMTPGUARD_SERVER SMTPGUARD_HELO \
    SMTPGUARD_MAIL_FROM SMTPGUARD_RCPT_COUNT _TRANSPORT SYSLOG_IDENTIFIER PRIORITY SMTPGUARD_ASA_ID; do
    printf '%s\n' "$vrfy" | field "$f"
  done | paste -sd ' ')"
it_assert_match "MESSAGE is the key=value line" "^event=command_masked id=1102 asa=108004 action=mask client=$client server=198\.18\.2\.1:25 dir=c2s subject=\"VRFY\"" \
  "$(printf '%s\n' "$vrfy" | field MESSAGE)"
banner=$(entries "MESSAGE_ID=${PREFIX}000000001001" "SMTPGUARD_CLIENT=$client")
it_assert_eq "the banner masked: one entry, the server's bytes" "banner_masked s2c" \
  "$(printf '%s\n' "$banner" | field SMTPGUARD_EVENT) $(printf '%s\n' "$banner" | field SMTPGUARD_DIR)"
flows=$(entries "SMTPGUARD_CLIENT=$client" | field SMTPGUARD_FLOW_ID | sort -u)
it_assert_eq "one flow id over the session's entries" 1 "$(printf '%s\n' "$flows" | grep -c .)"
it_assert_eq "no decision line copied to stderr" 0 "$(grep -c 'event=' "$IT_DAEMON_ERR")"
it_daemon_stop
it_assert_match "no entry fell back to syslog" "log_journal_fallbacks = 0" "$(cat "$IT_DAEMON_ERR")"

it_section "control: JOURNAL_STREAM naming another file, no native entries"
# systemd's variable is inherited by children whose stderr is elsewhere: the daemon must check
# that it names its own stderr, as systemd.exec(5) asks.
: >"$IT_TMP/other"
export JOURNAL_STREAM
JOURNAL_STREAM=$(stat -c '%d:%i' "$IT_TMP/other")
it_daemon_start pix-mailguard
unset JOURNAL_STREAM
it_assert_eq "the start log does not say journal entries" "" \
  "$(grep 'event log: journal' "$IT_DAEMON_ERR")"
it_vrfy_session plain
port2=$(cat "$IT_TMP/plain.port")
# The first session's entries are there (journald still takes entries), this one's are not.
journalctl --sync 2>/dev/null
it_assert_eq "no native entry for that session" "" \
  "$(journalctl --no-pager -o json "SMTPGUARD_CLIENT=198.18.1.1:$port2" 2>/dev/null)"
it_check "the first session's entries are still in the journal" test -n \
  "$(journalctl --no-pager -o json "SMTPGUARD_CLIENT=$client" 2>/dev/null)"
it_daemon_stop

it_finish
