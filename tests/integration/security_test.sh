#!/usr/bin/env bash
# modern's security checks through the lab, against Postfix and a scripted server:
#  - SMTP smuggling (CVE-2023-51764/51765/51766): a message whose body carries a non-canonical
#    end of data (or a bare CR/LF/NUL) followed by a second, smuggled transaction. The gateway
#    resets the connection; nothing of it is delivered, the smuggled message least of all.
#  - STARTTLS injection (CVE-2011-0411 class): client commands glued to STARTTLS; a server that
#    sends bytes after its 220; plaintext from the client after the 220. Each is reset.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init security
it_lab_up
it_daemon_start modern --verbose

cat >"$IT_TMP/smuggle.py" <<'PY'
import socket, sys
host, tag, seq = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
s = socket.create_connection((host, 25), timeout=10)
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline()
        if not l:
            raise EOFError
        if len(l) < 4 or l[3:4] != b"-":
            return l.decode("latin-1").strip()
try:
    reply()
    for c in (b"EHLO client.example.org", b"MAIL FROM:<sender@example.org>",
              b"RCPT TO:<user@example.org>", b"DATA"):
        s.sendall(c + b"\r\n")
        reply()
    s.sendall(b"Subject: cover " + tag.encode() + b"\r\n\r\ncover text" + seq +
              b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n"
              b"Subject: smuggled " + tag.encode() + b"\r\n\r\nsmuggled\r\n.\r\n")
    print("reply:", reply())
    print("result: answered")
except (ConnectionResetError, BrokenPipeError):
    print("result: reset")
except EOFError:
    print("result: closed")
except socket.timeout:
    print("result: timeout")
PY

it_section "SMTP smuggling sequences"
n=0
for seq in '\n.\n' '\n.\r\n' '\r.\r' '\r.\n' '\n.\r' '\r\n.\n' '\r\n.\r' '\r.\r\n' '\r\n.\r\r\n' \
  '\r\r\n.\r\r\n' '\r\n\0.\r\n' 'bare\rcr' 'bare\nlf' 'nul\0byte'; do
  n=$((n + 1))
  hex=$(printf "$seq" | od -An -tx1 | tr -d ' \n')
  out=$(lab_exec client python3 "$IT_TMP/smuggle.py" "$LAB_SERVER4" "seq$n" "$hex" 2>&1)
  it_assert_match "sequence $n ($seq): the connection is reset" '^result: (reset|closed)$' \
    "$(grep '^result' <<<"$out")"
done
sleep 2  # anything queued would be delivered by now
delivered=$(grep -rlE 'Subject: (cover|smuggled) seq' "$LAB_MAILDIR" 2>/dev/null | wc -l)
it_assert_eq "nothing of the 14 attempts was delivered (cover or smuggled message)" 0 "$delivered"
it_assert_eq "the daemon logged 14 smtp_smuggling resets" 14 \
  "$(grep -c 'smtp_smuggling' "$IT_DAEMON_ERR" || true)"

it_section "a clean message still goes through"
printf 'line one\n.a line starting with a dot\nlast line\n' >"$IT_TMP/clean.msg"
$IT_MAILTOOL mkmsg --for-swaks --body "$IT_TMP/clean.msg" --msgid "clean.$$@client.example.org" \
  "$IT_TMP/clean.eml" || it_fatal mkmsg
if it_send_swaks_esmtp "$LAB_SERVER4" "$IT_TMP/clean.eml" "$IT_TMP/clean.log"; then
  it_pass "swaks delivered a clean message through modern"
else
  it_fail "swaks delivered a clean message through modern" "$(tail -n 10 "$IT_TMP/clean.log")"
fi
it_check_delivered "the clean message is stored intact" "clean.$$@client.example.org" \
  "$($IT_MAILTOOL sha "$IT_TMP/clean.msg")"

it_section "STARTTLS injection"
# A scripted server on a second address of the server host: 220, EHLO with STARTTLS, and a 220
# to STARTTLS followed by an injected reply.
lab_exec server ip addr add 198.18.2.2/24 dev srv0 || it_fatal "second server address"
cat >"$IT_TMP/fake_server.py" <<'PY'
import socket
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("198.18.2.2", 25)); srv.listen(4); srv.settimeout(60)
for _ in range(1):
    c, _ = srv.accept(); c.settimeout(10); f = c.makefile("rb")
    c.sendall(b"220 fake.example.org ESMTP\r\n")
    try:
        while True:
            l = f.readline()
            if not l: break
            v = l.strip().upper()
            if v.startswith(b"EHLO"): c.sendall(b"250-fake.example.org\r\n250 STARTTLS\r\n")
            elif v == b"STARTTLS": c.sendall(b"220 2.0.0 go ahead\r\n250 injected by the server\r\n")
            else: c.sendall(b"250 ok\r\n")
    except Exception:
        pass
    c.close()
PY
lab_exec server python3 "$IT_TMP/fake_server.py" &
fake_pid=$!
cat >"$IT_TMP/tls_client.py" <<'PY'
import socket, sys
host, mode = sys.argv[1], sys.argv[2]
s = socket.create_connection((host, 25), timeout=8)
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline()
        if not l: raise EOFError
        lines.append(l.decode("latin-1").strip())
        if len(l) < 4 or l[3:4] != b"-": return lines
try:
    reply()
    s.sendall(b"EHLO client.example.org\r\n"); reply()
    if mode == "glued":
        s.sendall(b"STARTTLS\r\nRSET\r\n")
        print("got:", reply())
        print("got:", reply())
    elif mode == "plaintext":
        s.sendall(b"STARTTLS\r\n"); print("got:", reply())
        s.sendall(b"MAIL FROM:<a@example.org>\r\n"); print("got:", reply())
    else:  # server: read what follows the STARTTLS
        s.sendall(b"STARTTLS\r\n"); print("got:", reply()); print("got:", reply())
    print("result: answered")
except (ConnectionResetError, BrokenPipeError):
    print("result: reset")
except EOFError:
    print("result: closed")
except socket.timeout:
    print("result: timeout")
PY
for mode in glued plaintext; do
  out=$(lab_exec client python3 "$IT_TMP/tls_client.py" "$LAB_SERVER4" "$mode" 2>&1)
  sed 's/^/    | /' <<<"$out"
  it_assert_match "client $mode: the connection is reset" '^result: (reset|closed)$' "$(grep '^result' <<<"$out")"
done
sleep 0.5
out=$(lab_exec client python3 "$IT_TMP/tls_client.py" 198.18.2.2 server 2>&1)
sed 's/^/    | /' <<<"$out"
it_assert_match "server bytes after its 220: the connection is reset" '^result: (reset|closed)$' \
  "$(grep '^result' <<<"$out")"
it_assert_no_line_matching "the client never read the injected reply" 'injected by the server' <(echo "$out")
kill "$fake_pid" 2>/dev/null
wait "$fake_pid" 2>/dev/null
it_assert_eq "the daemon logged 3 starttls_injection resets" 3 \
  "$(grep -c 'starttls_injection' "$IT_DAEMON_ERR" || true)"
it_daemon_report_and_finish
