#!/usr/bin/env bash
# The decision log as JSON lines (--event-json, docs/operations.md#json-event-stream), written by
# a real daemon in the lab and judged against docs/event.schema.json (python3-jsonschema):
#  - pix-mailguard masks the banner, EHLO and a VRFY: the decisions are in the file, valid, with
#    the client and server of the session (src is whoever sent the bytes), one flow_id, and the
#    SMTP context the server had been given (HELO name, sender, recipients; not the masked EHLO);
#  - logrotate's way: the file is moved and the daemon gets SIGHUP; the next session's lines go
#    to a new file at the path, none to the moved one;
#  - a path the daemon cannot open stops it at start with a message naming event-json.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init event_json
if ((IT_DAEMON == 0)); then
  it_say "SMTPGUARD_IT_NO_DAEMON=1: nothing writes events; skipped"
  exit 77
fi
it_lab_up

SCHEMA=$SMTPGUARD_SOURCE/docs/event.schema.json
[[ -r $SCHEMA ]] || it_fatal "no schema at $SCHEMA"
EVENTS=$IT_TMP/events.json
CHECK=("$IT_PY" "$IT_DIR/event_json_check.py" "$SCHEMA")


# wait_lines FILE N: until FILE has at least N lines (bounded: 5 s).
wait_lines() {
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -f $1 && $(wc -l <"$1") -ge $2 ]] && return 0
    sleep 0.1
  done
  return 1
}

it_section "decisions of one session, valid against the schema"
it_daemon_start pix-mailguard --event-json "$EVENTS"
it_vrfy_session first
port=$(cat "$IT_TMP/first.port")
wait_lines "$EVENTS" 2 || it_fail "the events file got fewer than 2 lines" "$(cat "$EVENTS" 2>&1)"
summary=$("${CHECK[@]}" "$EVENTS" --summary)
rc=$?
printf '%s\n' "$summary" | sed 's/^/    | /'
it_check "every line valid against docs/event.schema.json" test "$rc" -eq 0
it_assert_match "the banner masked, the server's bytes (src = server)" \
  "banner_masked mask s2c 198\.18\.2\.1:25>198\.18\.1\.1:$port " "$summary"
it_assert_match "VRFY masked, the client's bytes (src = client), with the session's context" \
  "command_masked mask c2s 198\.18\.1\.1:$port>198\.18\.2\.1:25 [0-9]+ VRFY helo=helo\.example\.org from=sender@example\.org rcpts=1" "$summary"
it_assert_match "the masked EHLO, before any context" \
  "command_masked mask c2s 198\.18\.1\.1:$port>198\.18\.2\.1:25 [0-9]+ EHLO helo= from= rcpts=0" "$summary"
flows=$(printf '%s\n' "$summary" | grep -E ":$port[> ]" | awk '{print $5}' | sort -u | wc -l)
it_assert_eq "one flow_id for the session's decisions" "1" "$flows"

it_section "logrotate: moved, SIGHUP, a new file"
mv "$EVENTS" "$EVENTS.1"
before=$(wc -l <"$EVENTS.1")
errs=$(wc -l <"$IT_DAEMON_ERR")
kill -HUP "$IT_DAEMON_PID"
for ((i = 0; i < 100; i++)); do
  tail -n "+$((errs + 1))" "$IT_DAEMON_ERR" | grep -qE '^smtpguardd: reload' && break
  sleep 0.1
done
it_vrfy_session second
port2=$(cat "$IT_TMP/second.port")
wait_lines "$EVENTS" 2 || it_fail "no new events file after SIGHUP" "$(ls -l "$IT_TMP")"
summary2=$("${CHECK[@]}" "$EVENTS" --summary)
rc=$?
it_check "the new file is valid" test "$rc" -eq 0
it_assert_match "the new file has the second session" "command_masked mask c2s 198\.18\.1\.1:$port2>" "$summary2"
it_assert_eq "the moved file got nothing more" "$before" "$(wc -l <"$EVENTS.1")"
it_daemon_stop

it_section "a path that cannot be opened stops the daemon at start"
out=$(ip netns exec "$(lab_ns gw)" timeout 20 "$IT_DAEMON_BIN" --queues 7 --profile modern \
  --control-socket none --no-syslog --event-json "$IT_TMP/missing/events.json" 2>&1)
rc=$?
it_check "exit status not 0 (got $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
it_assert_match "the message names event-json and the reason" \
  "event-json $IT_TMP/missing/events.json: No such file or directory" "$out"

it_finish
