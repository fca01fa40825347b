#!/usr/bin/env bash
# A reset verb ends the connection: smtpguardd --profile modern --reset-verb EXPN.
#  - a client that sends `EXPN x` gets no reply: its connection is reset
#    (ECONNRESET, or EOF) soon after, and Postfix logs a lost connection and
#    never receives EXPN (nor anything the client sent after it);
#  - the same when EXPN arrives one byte per segment;
#  - mail sessions before and after the reset (IPv4 and IPv6) work and
#    deliver byte-identical bodies.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init reset
it_lab_up

RESET_SOON=3 # seconds (incl. the 0.5 s pause): a reset is immediate; the dialogue's own timeout is 10 s

it_daemon_start modern --reset-verb EXPN

# mail_session LABEL ADDR: swaks (EHLO, PIPELINING), body stored byte-identical.
mail_session() {
  local label=$1 addr=$2 f=$IT_TMP/$1 msgid="reset-$1.$$@client.example.org" sent_sha
  $IT_MAILTOOL genbody --seed "${#label}" --size 65536 "$f.body" || it_fatal "genbody"
  $IT_MAILTOOL mkmsg --for-swaks --body "$f.body" --msgid "$msgid" "$f.msg" || it_fatal "mkmsg"
  sent_sha=$($IT_MAILTOOL sha "$f.body")
  if it_send_swaks_esmtp "$addr" "$f.msg" "$f.swaks"; then
    it_pass "($label) swaks delivered a mail via [$addr]"
  else
    it_fail "($label) swaks delivered a mail via [$addr]" "$(tail -n 15 "$f.swaks")"
  fi
  it_check_delivered "($label) stored body is byte-identical (SHA-256)" "$msgid" "$sent_sha"
}

# reset_session LABEL ADDR [DIALOGUE OPTS]: EHLO, NOOP, EXPN x, NOOP, QUIT.
# The pause before EXPN lets the client acknowledge every byte the server
# sent: then the server only learns of the reset from the gateway's RST (a
# retransmission of unacknowledged data would otherwise meet the client's
# closed socket and draw an RST from the client's kernel instead).
reset_session() {
  local label=$1 addr=$2 f=$IT_TMP/$1 rc t0 t1
  shift 2
  printf '%s\n' 'EHLO client.example.org' 'NOOP' '<pause 0.5>' 'EXPN x' 'NOOP' 'QUIT' >"$f.cmds"
  t0=$(date +%s.%N)
  lab_exec client $IT_DIALOGUE "$addr" 25 "$f.cmds" --show-sent --timeout 10 --port-file "$f.port" "$@" \
    >"$f.out" 2>"$f.err"
  rc=$?
  t1=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  sed 's/^/    | /' "$f.out"
  it_say "($label) dialogue exit $rc after ${secs}s: $(cat "$f.err")"
  local after_expn server port
  after_expn=$(sed -n '/^C: EXPN x$/,$p' "$f.out" | sed 1d)
  port=$(cat "$f.port" 2>/dev/null || echo none)
  server=$(it_server_commands "$port")
  if ((IT_DAEMON)); then
    it_assert_match "($label) the connection ends with a reset or EOF (dialogue exit 4 or 3)" '^[34]$' "$rc"
    it_assert_eq "($label) the client gets nothing after sending EXPN x" "" "$after_expn"
    awk -v s="$secs" -v m="$RESET_SOON" 'BEGIN { exit !(s < m) }' &&
      it_pass "($label) ... within ${RESET_SOON}s (${secs}s)" ||
      it_fail "($label) ... within ${RESET_SOON}s" "took ${secs}s"
    it_assert_match "($label) the EHLO and the first NOOP were answered" $'\nS: 250 [^\n]*\nC: NOOP\nS: 250 [^\n]*\nC: EXPN x$' "$(cat "$f.out")"
    it_assert_eq "($label) Postfix received EHLO and NOOP only (never EXPN)" \
      $'EHLO client.example.org\nNOOP' "$server"
    if grep -qE "lost connection after NOOP from [^ ]*\]:$port( |$)" "$LAB_MAILLOG"; then
      it_pass "($label) Postfix logs a lost connection after NOOP"
    else
      it_fail "($label) Postfix logs a lost connection after NOOP" \
        "$(grep -E "\]:$port( |:|$)" "$LAB_MAILLOG" | grep -vE 'attribute|socket:|match_' | tail -n 8)"
    fi
  else
    it_assert_eq "($label) dialogue completes (no daemon)" 0 "$rc"
    it_assert_match "($label) EXPN is answered 500 by Postfix (no daemon)" $'^S: 500 ' "$after_expn"
    it_assert_eq "($label) Postfix received every command (no daemon)" \
      $'EHLO client.example.org\nNOOP\nEXPN x\nNOOP\nQUIT' "$server"
  fi
}

it_section "before: a mail session (IPv4)"
mail_session before-v4 "$LAB_SERVER4"
it_section "EXPN resets the connection (IPv4)"
reset_session reset-v4 "$LAB_SERVER4"
it_section "after: a mail session (IPv4)"
mail_session after-v4 "$LAB_SERVER4"
it_section "EXPN resets the connection (IPv6)"
reset_session reset-v6 "$LAB_SERVER6"
it_section "after: a mail session (IPv6)"
mail_session after-v6 "$LAB_SERVER6"
it_section "EXPN one byte per write (IPv4)"
reset_session reset-bytes-v4 "$LAB_SERVER4" --byte-writes --nodelay
it_section "MSS 48, offloads off (IPv4, IPv6)"
lab_segmentation 48 || it_fatal "lab_segmentation 48"
reset_session reset-seg-v4 "$LAB_SERVER4"
reset_session reset-seg-v6 "$LAB_SERVER6"
mail_session after-seg-v6 "$LAB_SERVER6"

it_daemon_report_and_finish
