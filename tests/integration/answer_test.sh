#!/usr/bin/env bash
# The gateway answers blocked commands itself (a length-changing rewrite of
# both streams): smtpguardd --profile modern --answer-verb VRFY,EXPN.
#  - `VRFY x` / `EXPN x` get exactly the answer line from the gateway
#    (default `550 5.7.1 Command blocked by policy`); Postfix never receives
#    them (its debug_peer log of the session);
#  - a pipelined batch MAIL FROM, VRFY, RCPT TO, DATA in one write gets its
#    replies in order: 250, the gateway's answer, 250, 354; the message body
#    that follows is stored byte-identical; QUIT gets 221;
#  - a batch with several blocked commands, the first one leading;
#  - the same one byte per write (the command arrives in pieces) and with a
#    48-byte MSS;
#  - ANSWER_SESSIONS (20) batch sessions per address family in a row, to
#    catch races; IPv4 and IPv6;
#  - --answer-reply "502 5.5.1 Not here" is honoured;
#  - a stale duplicate of the server's greeting arriving after the EHLO reply
#    does not spoil the gateway's answer (its ack and TCP timestamps);
#  - all of it behind an operator rule `ct state invalid drop` in the
#    gateway's forward chain: conntrack sees the server's original stream
#    while the client acknowledges the rewritten one, so smtpguardd must mark
#    mapped connections liberal (ctnetlink); the rule's counter must stay 0.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init answer
it_lab_up

ip netns exec "$(lab_ns gw)" nft -f - <<'NFT' || it_fatal "cannot add the operator's invalid-drop rule"
table inet it_operator {
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    ct state invalid counter drop
  }
}
NFT
invalid_dropped() {
  ip netns exec "$(lab_ns gw)" nft list chain inet it_operator forward |
    sed -n 's/.*counter packets \([0-9]*\) .*/\1/p' | head -n 1
}

ANSWER_SESSIONS=${ANSWER_SESSIONS:-20}
DEFAULT_ANSWER="550 5.7.1 Command blocked by policy"

# expect_reply VERB: the reply line the client must get for a blocked VERB.
expect_reply() {
  if ((IT_DAEMON)); then
    printf '%s\n' "$ANSWER"
  else
    case $1 in
      VRFY) printf '%s\n' "252 2.0.0 x" ;;
      EXPN) printf '%s\n' "500 5.5.2 Error: command not recognized" ;;
    esac
  fi
}

# session_single LABEL ADDR [DIALOGUE OPTS]: EHLO, VRFY x, NOOP, EXPN x, QUIT.
# Prints nothing; records failures.
session_single() {
  local label=$1 addr=$2 f=$IT_TMP/$1
  shift 2
  printf '%s\n' 'EHLO client.example.org' 'VRFY x' 'NOOP' 'EXPN x' 'QUIT' >"$f.cmds"
  if ! lab_exec client $IT_DIALOGUE "$addr" 25 "$f.cmds" --timeout 20 --port-file "$f.port" "$@" \
    >"$f.out" 2>"$f.err"; then
    it_fail "($label) dialogue completed" "$(cat "$f.err")" "$(sed 's/^/client got | /' "$f.out")"
    return
  fi
  it_assert_eq "($label) VRFY x gets exactly: $(expect_reply VRFY)" "$(expect_reply VRFY)" "$(it_reply_lines 2 "$f.out")"
  it_assert_match "($label) NOOP after it gets 250" '^250 ' "$(it_reply_lines 3 "$f.out")"
  it_assert_eq "($label) EXPN x gets exactly: $(expect_reply EXPN)" "$(expect_reply EXPN)" "$(it_reply_lines 4 "$f.out")"
  it_assert_match "($label) QUIT gets 221" '^221 ' "$(it_reply_lines 5 "$f.out")"
  it_assert_eq "($label) nothing after the 221" "" "$(it_reply_lines 6 "$f.out")"
  local got
  got=$(it_server_commands "$(cat "$f.port")")
  if ((IT_DAEMON)); then
    it_assert_eq "($label) Postfix received EHLO NOOP QUIT only (never VRFY or EXPN)" \
      $'EHLO client.example.org\nNOOP\nQUIT' "$got"
  else
    it_assert_eq "($label) Postfix received every command (no daemon)" \
      $'EHLO client.example.org\nVRFY x\nNOOP\nEXPN x\nQUIT' "$got"
  fi
}

# session_batch LABEL ADDR KIND SEED [DIALOGUE OPTS]: one session with a
# pipelined batch and a message; prints "ok" or the reasons it failed.
#   KIND spec:  { MAIL VRFY RCPT DATA }
#   KIND multi: { VRFY MAIL EXPN RCPT VRFY DATA }
session_batch() {
  local label=$1 addr=$2 kind=$3 seed=$4 f=$IT_TMP/$1
  shift 4
  local msgid="answer-$label.$$@client.example.org" sent_sha want_codes want_server a v e
  $IT_MAILTOOL genbody --seed "$seed" --size 8192 "$f.body" || it_fatal "genbody"
  $IT_MAILTOOL mkmsg --body "$f.body" --msgid "$msgid" "$f.msg" || it_fatal "mkmsg"
  sent_sha=$($IT_MAILTOOL sha "$f.body")
  a=$(expect_reply VRFY)
  v=$a
  e=$(expect_reply EXPN)
  {
    echo 'EHLO client.example.org'
    if [[ $kind == spec ]]; then
      printf '%s\n' '{' 'MAIL FROM:<sender@example.org>' 'VRFY x' 'RCPT TO:<user@example.org>' 'DATA' '}'
    else
      printf '%s\n' '{' 'VRFY x' 'MAIL FROM:<sender@example.org>' 'EXPN x' 'RCPT TO:<user@example.org>' \
        'VRFY x' 'DATA' '}'
    fi
    $IT_MAILTOOL wirelines "$f.msg"
    echo QUIT
  } >"$f.cmds"
  # The replies after the EHLO reply, in order, one per command.
  if [[ $kind == spec ]]; then
    want_codes=$(printf '%s\n' "250 2.1.0 Ok" "$v" "250 2.1.5 Ok" "354 End data with <CR><LF>.<CR><LF>")
    want_server=$'EHLO client.example.org\nMAIL FROM:<sender@example.org>\nRCPT TO:<user@example.org>\nDATA\nQUIT'
    ((IT_DAEMON)) ||
      want_server=$'EHLO client.example.org\nMAIL FROM:<sender@example.org>\nVRFY x\nRCPT TO:<user@example.org>\nDATA\nQUIT'
  else
    want_codes=$(printf '%s\n' "$v" "250 2.1.0 Ok" "$e" "250 2.1.5 Ok" "$v" "354 End data with <CR><LF>.<CR><LF>")
    want_server=$'EHLO client.example.org\nMAIL FROM:<sender@example.org>\nRCPT TO:<user@example.org>\nDATA\nQUIT'
    ((IT_DAEMON)) ||
      want_server=$'EHLO client.example.org\nVRFY x\nMAIL FROM:<sender@example.org>\nEXPN x\nRCPT TO:<user@example.org>\nVRFY x\nDATA\nQUIT'
  fi
  local why=() n
  if ! lab_exec client $IT_DIALOGUE "$addr" 25 "$f.cmds" --timeout 20 --port-file "$f.port" "$@" \
    >"$f.out" 2>"$f.err"; then
    why+=("dialogue failed: $(cat "$f.err")")
  fi
  n=$(wc -l <<<"$want_codes")
  local got_codes="" i
  for ((i = 2; i < 2 + n; i++)); do got_codes+=$(it_reply_lines "$i" "$f.out")$'\n'; done
  got_codes=${got_codes%$'\n'}
  [[ $got_codes == "$want_codes" ]] || why+=("batch replies: expected" "$(sed 's/^/  | /' <<<"$want_codes")" "got" "$(sed 's/^/  | /' <<<"$got_codes")")
  local eod quit
  eod=$(it_reply_lines "$((2 + n))" "$f.out")
  quit=$(it_reply_lines "$((3 + n))" "$f.out")
  [[ $eod == "250 2.0.0 Ok: queued as "* ]] || why+=("end of data: expected '250 2.0.0 Ok: queued as ...', got '$eod'")
  [[ $quit == "221 2.0.0 Bye" ]] || why+=("QUIT: expected '221 2.0.0 Bye', got '$quit'")
  local trailing
  trailing=$(it_reply_lines "$((4 + n))" "$f.out")
  [[ -z $trailing ]] || why+=("unexpected reply after 221: '$trailing'")
  local server
  server=$(it_server_commands "$(cat "$f.port" 2>/dev/null || echo none)")
  [[ $server == "$want_server" ]] || why+=("Postfix received:" "$(sed 's/^/  | /' <<<"$server")" "expected:" "$(sed 's/^/  | /' <<<"$want_server")")
  local got_sha
  got_sha=$(it_delivered_body_sha "$msgid")
  [[ $got_sha == "$sent_sha" ]] || why+=("stored body: sent sha $sent_sha, stored $got_sha")
  if ((${#why[@]} == 0)); then
    echo ok
  else
    printf '%s\n' "${why[@]}" "client transcript (without body):"
    grep -E '^[0-9]{3}[ -]' "$f.out" | sed 's/^/  client got | /'
  fi
}

# check_batch DESC LABEL ADDR KIND SEED [DIALOGUE OPTS]
check_batch() {
  local desc=$1 res
  shift
  res=$(session_batch "$@")
  if [[ $res == ok ]]; then
    it_pass "$desc"
  else
    local -a lines
    mapfile -t lines <<<"$res"
    it_fail "$desc" "${lines[@]}"
  fi
}

# stale_dup_session LABEL ADDR: a stale copy of the server's greeting reaches
# the gateway after the EHLO reply (a duplicate the network delayed), then the
# client sends VRFY x: the gateway's answer must still reach the client. It
# goes out in the server's place, so its TCP header (ack, timestamps) must be
# current: built from the stale copy, the client's PAWS check would drop it
# (and every retransmission) and the session would stall.
stale_dup_session() {
  local label=$1 addr=$2 f=$IT_TMP/$1 cap_pid dlg_pid dump_pid rc i paws0 paws1
  # Evidence: the session as the client's side of the gateway sees it.
  ip netns exec "$(lab_ns gw)" tcpdump -i "$LAB_IF_GW_CLIENT" -nn -U -s 160 -Z root -w "$f.pcap" 'tcp port 25' \
    >"$f.tcpdump" 2>&1 &
  dump_pid=$!
  for ((i = 0; i < 50; i++)); do
    grep -q 'listening on' "$f.tcpdump" 2>/dev/null && break
    sleep 0.1
  done
  paws0=$(lab_exec client nstat -asz TcpExtPAWSEstab | awk '/PAWSEstab/ { print $2 }')
  ip netns exec "$(lab_ns server)" "$IT_PY" "$IT_DIR/replay.py" capture --iface "$LAB_IF_SERVER" --sport 25 \
    --prefix '220 ' --out "$f.frame" --timeout 20 >"$f.cap" 2>&1 &
  cap_pid=$!
  for ((i = 0; i < 50; i++)); do
    grep -q ready "$f.cap" 2>/dev/null && break
    sleep 0.1
  done
  printf '%s\n' '<pause 0.3>' 'EHLO client.example.org' '<pause 1.5>' 'VRFY x' 'NOOP' 'QUIT' >"$f.cmds"
  lab_exec client $IT_DIALOGUE "$addr" 25 "$f.cmds" --timeout 10 --port-file "$f.port" >"$f.out" 2>"$f.err" &
  dlg_pid=$!
  wait "$cap_pid" || it_fail "($label) the server's greeting was captured" "$(cat "$f.cap")"
  sleep 0.8 # the EHLO reply has gone through (0.3 s after the greeting); VRFY comes at 1.8 s
  lab_exec server "$IT_PY" "$IT_DIR/replay.py" send --iface "$LAB_IF_SERVER" "$f.frame" ||
    it_fail "($label) the stale greeting was sent again"
  wait "$dlg_pid"
  rc=$?
  paws1=$(lab_exec client nstat -asz TcpExtPAWSEstab | awk '/PAWSEstab/ { print $2 }')
  kill -INT "$dump_pid" 2>/dev/null
  wait "$dump_pid" 2>/dev/null
  sed 's/^/    client got | /' "$f.out"
  if [[ $rc != 0 ]]; then
    it_say "($label) segments the client's PAWS check dropped during the session: $((paws1 - paws0))"
    it_say "($label) the session on the gateway's $LAB_IF_GW_CLIENT (absolute seq):"
    tcpdump -r "$f.pcap" -nn -S -tt "tcp port $(cat "$f.port" 2>/dev/null || echo 0)" 2>/dev/null | head -n 40 |
      cut -c1-230 | sed 's/^/    | /'
  fi
  it_assert_eq "($label) dialogue completed (exit 0) after a stale duplicate of the greeting" 0 "$rc"
  [[ $rc == 0 ]] || it_say "($label) $(cat "$f.err")"
  it_assert_eq "($label) VRFY x gets exactly: $(expect_reply VRFY)" "$(expect_reply VRFY)" "$(it_reply_lines 2 "$f.out")"
  it_assert_match "($label) NOOP gets 250, QUIT 221" $'^250 [^\n]*\n221 ' \
    "$(it_reply_lines 3 "$f.out")"$'\n'"$(it_reply_lines 4 "$f.out")"
}

ANSWER=$DEFAULT_ANSWER
it_daemon_start modern --answer-verb VRFY,EXPN

for fam in 4 6; do
  if [[ $fam == 4 ]]; then addr=$LAB_SERVER4; else addr=$LAB_SERVER6; fi
  it_section "IPv$fam: a stale duplicate of the greeting, then VRFY"
  stale_dup_session "v$fam-stale" "$addr"
done

for fam in 4 6; do
  if [[ $fam == 4 ]]; then addr=$LAB_SERVER4; else addr=$LAB_SERVER6; fi
  it_section "IPv$fam: single blocked commands via [$addr]:25"
  session_single "v$fam-single" "$addr"
  session_single "v$fam-single-bytes" "$addr" --byte-writes --nodelay
  it_section "IPv$fam: pipelined batches"
  check_batch "(v$fam) batch MAIL VRFY RCPT DATA: replies in order, body intact, QUIT 221" "v$fam-spec" "$addr" spec 1
  check_batch "(v$fam) batch VRFY MAIL EXPN RCPT VRFY DATA: replies in order, body intact, QUIT 221" \
    "v$fam-multi" "$addr" multi 2
  check_batch "(v$fam) batch MAIL VRFY RCPT DATA one byte per write" "v$fam-spec-bytes" "$addr" spec 3 \
    --byte-writes --nodelay --byte-delay 0
  it_section "IPv$fam: $ANSWER_SESSIONS batch sessions in a row"
  bad=0
  for ((s = 1; s <= ANSWER_SESSIONS; s++)); do
    kind=spec
    ((s % 2 == 0)) && kind=multi
    res=$(session_batch "v$fam-loop$s" "$addr" "$kind" "$((100 * fam + s))")
    if [[ $res != ok ]]; then
      bad=$((bad + 1))
      it_say "session $s ($kind) failed:"
      sed 's/^/    /' <<<"$res"
    fi
  done
  it_assert_eq "(v$fam) $ANSWER_SESSIONS batch sessions: every one ok" "0 failed" "$bad failed"
done

it_section "MSS 48, offloads off"
lab_segmentation 48 || it_fatal "lab_segmentation 48"
for fam in 4 6; do
  if [[ $fam == 4 ]]; then addr=$LAB_SERVER4; else addr=$LAB_SERVER6; fi
  session_single "seg-v$fam-single" "$addr"
  check_batch "(seg-v$fam) batch MAIL VRFY RCPT DATA" "seg-v$fam-spec" "$addr" spec 4
  check_batch "(seg-v$fam) batch VRFY MAIL EXPN RCPT VRFY DATA" "seg-v$fam-multi" "$addr" multi 5
done
lab_segmentation_off || it_fatal "lab_segmentation_off"
if ((IT_DAEMON)); then
  it_say "daemon counters:"
  it_daemon_counters | sed 's/^/    | /'
fi
it_daemon_alive
it_daemon_stop

ANSWER="502 5.5.1 Not here"
it_daemon_start modern --answer-verb VRFY,EXPN --answer-reply "$ANSWER"
for fam in 4 6; do
  if [[ $fam == 4 ]]; then addr=$LAB_SERVER4; else addr=$LAB_SERVER6; fi
  it_section "IPv$fam: --answer-reply '$ANSWER'"
  session_single "v$fam-custom-single" "$addr"
  check_batch "(v$fam) custom answer: batch MAIL VRFY RCPT DATA" "v$fam-custom-spec" "$addr" spec 6
done
it_daemon_alive
it_daemon_stop
it_assert_eq "the operator's ct state invalid rule dropped nothing" "0" "$(invalid_dropped)"
it_finish
