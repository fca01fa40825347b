#!/usr/bin/env bash
# TCP urgent data cannot make the server read other bytes than the ones inspected.
#
# A client sends "X" with MSG_OOB (the URG flag, urgent pointer after the X), then
# "EXPN root\r\n": smtpguardd inspects the stream "XEXPN root". A receiving socket without
# SO_OOBINLINE (Postfix's) takes the urgent byte out of the stream, so without the gateway's
# normalisation Postfix would read "EXPN root", a command the gateway never saw. The daemon
# clears URG and the urgent pointer on every segment of an inspected flow
# (tcp_urgent_cleared): Postfix reads exactly "XEXPN root" and answers it as an unknown
# command.
#
# Observed without the daemon (SMTPGUARD_IT_NO_DAEMON=1, plain forwarding; the no-daemon
# branch below asserts it): Postfix logged "< client[198.18.1.x]:PORT: EXPN root" - the X was
# gone - so a test of the daemon against this expectation fails without the fix.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init urgent
it_lab_up

it_daemon_start modern

cat >"$IT_TMP/oob_client.py" <<'PY'
import socket, sys

family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(10)
s.connect((sys.argv[1], 25))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
open(sys.argv[2], "w").write(str(s.getsockname()[1]))
f = s.makefile("rb")

def reply():
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("EOF")
        lines.append(line.decode("latin-1").rstrip("\r\n"))
        if line[3:4] != b"-":
            return lines

def show(lines):
    for l in lines:
        print("S: " + l)

show(reply())
s.sendall(b"EHLO client.example.org\r\n")
show(reply())
s.send(b"X", socket.MSG_OOB)  # urgent: the last (only) byte of this send
s.sendall(b"EXPN root\r\n")
print("C: XEXPN root (X urgent)")
show(reply())
s.sendall(b"QUIT\r\n")
show(reply())
s.close()
PY

# urgent_session LABEL ADDR
urgent_session() {
  local label=$1 addr=$2 f=$IT_TMP/$1 rc port server replies
  lab_exec client "$IT_PY" "$IT_TMP/oob_client.py" "$addr" "$f.port" >"$f.out" 2>"$f.err"
  rc=$?
  sed 's/^/    | /' "$f.out"
  it_assert_eq "($label) the dialogue completes" 0 "$rc"
  port=$(cat "$f.port" 2>/dev/null || echo none)
  server=$(it_server_commands "$port")
  replies=$(sed -n '/^C: XEXPN/,$p' "$f.out" | sed -n 2p)
  if ((IT_DAEMON)); then
    it_assert_eq "($label) Postfix read exactly the inspected bytes (XEXPN root, X in the stream)" \
      $'EHLO client.example.org\nXEXPN root\nQUIT' "$server"
    it_assert_match "($label) and refused them as an unknown command" '^S: 50[02] .*(not recognized|unrecognized)' "$replies"
  else
    it_assert_eq "($label) without the daemon Postfix reads EXPN root (the X taken out of band)" \
      $'EHLO client.example.org\nEXPN root\nQUIT' "$server"
  fi
}

it_section "urgent byte before a command (IPv4)"
urgent_session v4 "$LAB_SERVER4"
it_section "urgent byte before a command (IPv6)"
urgent_session v6 "$LAB_SERVER6"

if ((IT_DAEMON)); then
  counters=$(it_daemon_counters)
  it_assert_match "the daemon counted the cleared urgent pointers" 'tcp_urgent_cleared = [1-9]' "$counters"
  it_assert_match "and logged them" 'urgent_cleared' "$(cat "$IT_DAEMON_ERR" "$IT_DAEMON_OUT")"
fi
it_daemon_report_and_finish
