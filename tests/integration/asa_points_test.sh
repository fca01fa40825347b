#!/usr/bin/env bash
# asa-default, point by point (docs/profiles.md, "asa-default: what it reproduces"): each
# parameter check of ASA's _default_esmtp_map triggered through the lab against Postfix,
# asserting what the client sees, what Postfix received and the decision the daemon logged.
#   cmd line length gt 512        -> drop-connection, log
#   cmd RCPT count gt 100         -> drop-connection, log
#   sender-address length gt 320  -> drop-connection, log
#   header line length gt 998     -> drop-connection, log
#   body line length gt 998       -> log (the mail is delivered)
#   MIME filename length gt 255   -> drop-connection, log
# (banner, EHLO keywords, STARTTLS and the verb list: profiles_test.sh's golden transcripts.)
# A dropped connection gets no RST: the client hears nothing more and times out.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init asa_points
it_lab_up
it_daemon_start asa-default --verbose

n=0
# run_case NAME EXPECT(dropped|delivered) EVENT: sends $IT_TMP/NAME.cmds with dialogue.py.
run_case() {
  local name=$1 expect=$2 event=$3 rc=0
  it_section "$name"
  lab_exec client $IT_DIALOGUE "$LAB_SERVER4" 25 "$IT_TMP/$name.cmds" --timeout 4 \
    --port-file "$IT_TMP/$name.port" >"$IT_TMP/$name.out" 2>"$IT_TMP/$name.err" || rc=$?
  tail -n 3 "$IT_TMP/$name.out" | sed 's/^/    client got | /'
  if [[ $expect == dropped ]]; then
    it_assert_eq "$name: the client hears nothing more (timeout, no RST)" 2 "$rc"
  else
    it_assert_eq "$name: the dialogue completes" 0 "$rc"
    it_assert_match "$name: Postfix queued the message" '^250 2\.0\.0 Ok: queued' "$(grep '^250 2.0.0 Ok: queued' "$IT_TMP/$name.out")"
  fi
  local i
  for ((i = 0; i < 30; i++)); do
    grep -q "$event" "$IT_DAEMON_ERR" && break
    sleep 0.1
  done
  if grep "$event" "$IT_DAEMON_ERR" | tail -n 1 | sed 's/^/    daemon | /' | grep -q .; then
    it_pass "$name: the daemon logged $event"
  else
    it_fail "$name: the daemon logged $event" "$(tail -n 5 "$IT_DAEMON_ERR")"
  fi
}

envelope() {
  printf '%s\n' 'EHLO client.example.org' 'MAIL FROM:<sender@example.org>' 'RCPT TO:<user@example.org>'
}

# 1. command line over 512 bytes
printf '%s\n' 'EHLO client.example.org' "NOOP $(printf 'x%.0s' {1..600})" 'QUIT' >"$IT_TMP/cmdline.cmds"
run_case cmdline dropped command_line_length
it_assert_no_line_matching "cmdline: Postfix never received the long NOOP" '^NOOP x' \
  <(it_server_commands "$(cat "$IT_TMP/cmdline.port")")

# 2. 101 recipients in one transaction
{
  printf '%s\n' 'EHLO client.example.org' 'MAIL FROM:<sender@example.org>'
  for i in $(seq 1 101); do printf 'RCPT TO:<user%d@example.org>\n' "$i"; done
  printf '%s\n' 'QUIT'
} >"$IT_TMP/rcpt.cmds"
run_case rcpt dropped recipients
server_rcpts=$(it_server_commands "$(cat "$IT_TMP/rcpt.port")" | grep -c '^RCPT TO' || true)
it_assert_eq "rcpt: Postfix received 100 RCPT commands, not the 101st" 100 "$server_rcpts"

# 3. sender address over 320 characters
printf '%s\n' 'EHLO client.example.org' "MAIL FROM:<$(printf 's%.0s' {1..320})@example.org>" 'QUIT' >"$IT_TMP/sender.cmds"
run_case sender dropped sender_length
it_assert_no_line_matching "sender: Postfix never received the MAIL command" '^MAIL' \
  <(it_server_commands "$(cat "$IT_TMP/sender.port")")

# 4. header line over 998 bytes
{
  envelope
  printf '%s\n' DATA "Subject: $(printf 'h%.0s' {1..1000})" '' 'body' '.' 'QUIT'
} >"$IT_TMP/header.cmds"
run_case header dropped header_line_length

# 5. body line over 998 bytes: logged, delivered
{
  envelope
  printf '%s\n' DATA 'Subject: long body line' '' "$(printf 'b%.0s' {1..1200})" '.' 'QUIT'
} >"$IT_TMP/body.cmds"
run_case body delivered body_line_length

# 6. MIME attachment file name over 255 characters
long_name="$(printf 'f%.0s' {1..260}).txt"
{
  envelope
  printf '%s\n' DATA 'Subject: attachment' 'MIME-Version: 1.0' \
    'Content-Type: multipart/mixed; boundary="b1"' '' '--b1' 'Content-Type: text/plain' '' 'hello' \
    '--b1' "Content-Type: text/plain; name=\"x.txt\"" \
    "Content-Disposition: attachment; filename=\"$long_name\"" '' 'data' '--b1--' '.' 'QUIT'
} >"$IT_TMP/mime.cmds"
run_case mime dropped mime_filename

it_daemon_report_and_finish
