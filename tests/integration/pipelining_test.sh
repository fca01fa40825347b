#!/usr/bin/env bash
# The dialogue-order checks through the lab, against the lab's Postfix:
#  (a) check.early-talker: a client that sends before the greeting is reset (action reset), and
#      none of its bytes reach Postfix; with action log (modern's default) they do, and Postfix
#      itself sees the client's input early (the positive control).
#  (b) check.pipelining: "EHLO x\r\nMAIL FROM:<a@b>\r\n" in one segment is reset (action reset,
#      Postfix sees neither line) and logged (action log, Postfix sees both).
#  (c) legitimate clients through modern - swaks --pipe (MAIL RCPT DATA in one write) and Python
#      smtplib - are delivered, and modern logs neither check for them.
# Postfix greets after a 1 s pause (smtpd_client_restrictions = sleep 1, smtpd_delay_reject =
# no: postscreen's pregreet trick) so that the early client really is early.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init pipelining
it_lab_up

lab_exec server postconf -c "$LAB_PF_CONF" -e "smtpd_delay_reject = no" \
  "smtpd_client_restrictions = sleep 1" || it_fatal "postconf"
lab_exec server postfix -c "$LAB_PF_CONF" reload >/dev/null 2>&1 || it_fatal "postfix reload"
sleep 1

cat >"$IT_TMP/order_client.py" <<'PY'
import socket, sys
host, mode, name = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.create_connection((host, 25), timeout=10)
print("port:", s.getsockname()[1], flush=True)
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline()
        if not l:
            raise EOFError
        if len(l) < 4 or l[3:4] != b"-":
            return l.decode("latin-1").strip()
try:
    if mode == "pregreet":
        s.sendall(b"EHLO " + name.encode() + b"\r\n")  # before the (delayed) greeting
        print("greeting:", reply(), flush=True)
        print("ehlo:", reply(), flush=True)
    else:
        print("greeting:", reply(), flush=True)
        s.sendall(b"EHLO " + name.encode() + b"\r\nMAIL FROM:<a@example.org>\r\n")
        print("ehlo:", reply(), flush=True)
        print("mail:", reply(), flush=True)
    s.sendall(b"QUIT\r\n")
    print("quit:", reply(), flush=True)
    print("result: answered")
except (ConnectionResetError, BrokenPipeError):
    print("result: reset")
except EOFError:
    print("result: closed")
except socket.timeout:
    print("result: timeout")
PY

# order_client MODE NAME: runs the client; sets OUT (its output) and PORT (its local port).
order_client() {
  OUT=$(lab_exec client "$IT_PY" "$IT_TMP/order_client.py" "$LAB_SERVER4" "$1" "$2" 2>&1)
  PORT=$(sed -n 's/^port: //p' <<<"$OUT")
  it_say "$1 $2 (port $PORT): $(grep '^result' <<<"$OUT")"
}

# events NAME: the daemon's decisions of that event so far ("action=..." per line).
events() {
  grep -E "event=$1 " "$IT_DAEMON_ERR" | sed -nE 's/.* (action=[a-z-]+) .*/\1/p'
}

# postfix_saw_early PORT: Postfix noticed input before its greeting (as it logs it).
postfix_saw_early() {
  _it_last_session "$1" | grep -qE "improper command pipelining after CONNECT from [^ ]*\]:$1"
}

# What reaches the server, on the server's own interface: client segments that carry payload.
ip netns exec "$(lab_ns server)" tcpdump -i "$LAB_IF_SERVER" --immediate-mode -nn -U -s 128 -Z root -w "$IT_TMP/server.pcap" \
  'tcp dst port 25' >"$IT_TMP/tcpdump.err" 2>&1 &
DUMP_PID=$!
for ((i = 0; i < 50; i++)); do
  grep -q 'listening on' "$IT_TMP/tcpdump.err" 2>/dev/null && break
  sleep 0.1
done
# payload_segments PORT: client segments with payload from PORT that arrived at the server.
payload_segments() {
  sleep 0.3
  tcpdump -r "$IT_TMP/server.pcap" -nn \
    "src port $1 and (ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2)) > 0" 2>/dev/null | wc -l
}

CONF=$IT_TMP/smtpguard.conf
printf '%s\n' "# pipelining test: both checks reset for the lab's server" \
  "[policy.lab-servers]" "match-server = $LAB_SERVER_NET4, $LAB_SERVER_NET6" \
  "profile = modern" "check.early-talker = reset" "check.pipelining = reset" >"$CONF"

it_section "action reset"
it_daemon_start modern --config "$CONF" --verbose

order_client pregreet pregreet-reset.example.org
it_assert_match "(a) the early talker is reset" '^result: (reset|closed)$' "$(grep '^result' <<<"$OUT")"
server=$(it_server_commands "$PORT")
it_assert_eq "(a) Postfix received nothing from the early talker" "" "$server"
it_assert_eq "(a) no segment with payload from the early talker reached the server" 0 \
  "$(payload_segments "$PORT")"
if postfix_saw_early "$PORT"; then
  it_fail "(a) Postfix saw no input before its greeting" "it logs improper pipelining after CONNECT"
else
  it_pass "(a) Postfix saw no input before its greeting"
fi
it_assert_eq "(a) the daemon logged one early_talker reset" "action=reset" "$(events early_talker)"

order_client pipe pipe-reset.example.org
it_assert_match "(b) EHLO+MAIL in one segment is reset" '^result: (reset|closed)$' \
  "$(grep '^result' <<<"$OUT")"
it_assert_match "(b) ... after the greeting" '^greeting: 220 ' "$(grep '^greeting' <<<"$OUT")"
server=$(it_server_commands "$PORT")
it_assert_eq "(b) Postfix received neither EHLO nor MAIL" "" "$server"
it_assert_eq "(b) no segment with payload from that client reached the server" 0 \
  "$(payload_segments "$PORT")"
it_assert_eq "(b) the daemon logged one pipelining reset" "action=reset" "$(events pipelining)"
it_daemon_stop

it_section "modern (action log)"
it_daemon_start modern --verbose

printf 'first line\nsecond line\n' >"$IT_TMP/body.txt"
it_swaks_delivers "(c) swaks --pipe delivered through modern" "$IT_TMP/body.txt" pipe \
  "$IT_TMP/swaks.log"
it_assert_match "(c) swaks pipelined (the server offered PIPELINING)" 'PIPELINING' \
  "$(it_swaks_ehlo_reply "$IT_TMP/swaks.log")"
$IT_MAILTOOL mkmsg --body "$IT_TMP/body.txt" --msgid "smtplib.$$@client.example.org" \
  "$IT_TMP/smtplib.eml" || it_fatal mkmsg
it_send_smtplib "$LAB_SERVER4" "$IT_TMP/smtplib.eml" >/dev/null ||
  it_fail "(c) smtplib sent through modern" "mailtool send failed"
it_check_delivered "(c) the smtplib message is stored intact" "smtplib.$$@client.example.org" \
  "$($IT_MAILTOOL sha "$IT_TMP/body.txt")"
it_assert_eq "(c) no early_talker logged for legitimate clients" "" "$(events early_talker)"
it_assert_eq "(c) no pipelining logged for legitimate clients" "" "$(events pipelining)"

order_client pregreet pregreet-log.example.org
it_assert_eq "(a, log) the early talker is answered" "result: answered" "$(grep '^result' <<<"$OUT")"
server=$(it_server_commands "$PORT")
it_assert_eq "(a, log) Postfix received the early EHLO, then QUIT" \
  $'EHLO pregreet-log.example.org\nQUIT' "$server"
# The controls: what the reset runs did not see, this one does. (Postfix's own "improper command
# pipelining after CONNECT" is not a reliable control: it looks once, at connect, and a reused
# smtpd may look before the bytes are there.)
it_assert_match "(a, log) the early talker's segments reached the server (control)" '^[1-9]' \
  "$(payload_segments "$PORT")"
it_assert_eq "(a, log) the daemon logged one early_talker, action log" "action=log" \
  "$(events early_talker)"

order_client pipe pipe-log.example.org
it_assert_eq "(b, log) EHLO+MAIL is answered" "result: answered" "$(grep '^result' <<<"$OUT")"
server=$(it_server_commands "$PORT")
it_assert_eq "(b, log) Postfix received EHLO, MAIL, QUIT" \
  $'EHLO pipe-log.example.org\nMAIL FROM:<a@example.org>\nQUIT' "$server"
it_assert_eq "(b, log) the daemon logged one pipelining, action log" "action=log" \
  "$(events pipelining)"
it_assert_match "(b, log) ... naming EHLO" 'event=pipelining .*EHLO' \
  "$(grep 'event=pipelining ' "$IT_DAEMON_ERR")"

it_assert_match "(b, log) its segments reached the server (control)" '^[1-9]' \
  "$(payload_segments "$PORT")"

kill -INT "$DUMP_PID" 2>/dev/null
wait "$DUMP_PID" 2>/dev/null
it_daemon_report_and_finish
