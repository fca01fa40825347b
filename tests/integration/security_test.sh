#!/usr/bin/env bash
# modern's security checks through the lab, against Postfix and a scripted server:
#  - SMTP smuggling (CVE-2023-51764/51765/51766): a message whose body carries a non-canonical
#    end of data (or a bare CR/LF/NUL) followed by a second, smuggled transaction. The gateway
#    resets the connection; nothing of it is delivered, the smuggled message least of all.
#  - STARTTLS injection (CVE-2011-0411 class): client commands glued to STARTTLS; a server that
#    sends bytes after its 220; plaintext from the client after the 220. Each is reset.
#  - check.smuggling = sanitize (a config file on top of modern): the same smuggling messages,
#    sent whole and cut into segments after every CR, are delivered once each, with a space
#    where every stray CR, LF and NUL was; the smuggled message never is.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init security
it_lab_up
it_daemon_start modern --verbose

cat >"$IT_TMP/smuggle.py" <<'PY'
import socket, sys, time
host, tag, seq = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
split = len(sys.argv) > 4 and sys.argv[4] == "split"
s = socket.create_connection((host, 25), timeout=10)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
    msg = (b"Subject: cover " + tag.encode() + b"\r\n\r\ncover text" + seq +
           b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n"
           b"Subject: smuggled " + tag.encode() + b"\r\n\r\nsmuggled\r\n.\r\n")
    if split:
        # A segment ends after every CR: whether it is stray is decided by the next segment.
        start = 0
        for i, b in enumerate(msg):
            if b == 13:
                s.sendall(msg[start:i + 1])
                start = i + 1
                time.sleep(0.05)
        s.sendall(msg[start:])
    else:
        s.sendall(msg)
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
it_swaks_delivers "swaks delivered a clean message through modern" "$IT_TMP/clean.msg" clean \
  "$IT_TMP/clean.log"

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
if ((IT_DAEMON)); then
  it_say "daemon counters:"
  it_daemon_counters | sed 's/^/    | /'
fi
it_daemon_alive
it_daemon_stop

it_section "check.smuggling = sanitize: stray bytes become spaces, the cover message is delivered"
printf '%s\n' '[policy]' 'check.smuggling = sanitize' >"$IT_TMP/sanitize.conf"
it_daemon_start modern --verbose --config "$IT_TMP/sanitize.conf"
# What Postfix must store for a cover message: its body with every stray CR, LF and NUL a space,
# read as SMTP does (CRLF lines, a leading dot removed), stored with LF line ends.
cat >"$IT_TMP/check_stored.py" <<'PY'
import os, sys
maildir, tag, seq = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
body = (b"cover text" + seq + b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<user@example.org>\r\n"
        b"DATA\r\nSubject: smuggled " + tag.encode() + b"\r\n\r\nsmuggled\r\n")
clean = bytearray(body)
for i, b in enumerate(body):
    if b == 0 or (b == 13 and (i + 1 == len(body) or body[i + 1] != 10)) or \
            (b == 10 and (i == 0 or body[i - 1] != 13)):
        clean[i] = 32
lines = bytes(clean).split(b"\r\n")[:-1]
want = b"".join((l[1:] if l.startswith(b".") else l) + b"\n" for l in lines)
covers, smuggled = [], 0
for sub in ("new", "cur"):
    d = os.path.join(maildir, sub)
    for n in (os.listdir(d) if os.path.isdir(d) else []):
        data = open(os.path.join(d, n), "rb").read()
        head = data.split(b"\n\n", 1)[0] + b"\n"  # the cover's body quotes the smuggled header
        if b"\nSubject: cover " + tag.encode() + b"\n" in head:
            covers.append(data)
        if b"\nSubject: smuggled " + tag.encode() + b"\n" in head:
            smuggled += 1
if len(covers) != 1 or smuggled:
    print(f"covers {len(covers)}, smuggled {smuggled}")
elif covers[0].split(b"\n\n", 1)[1] != want:
    print("body differs: got %r want %r" % (covers[0].split(b"\n\n", 1)[1], want))
else:
    print("stored as sanitized")
PY
n=0
for seq in '\n.\n' '\n.\r\n' '\r.\r' '\r.\n' '\n.\r' '\r\n.\n' '\r\n.\r' '\r.\r\n' '\r\n.\r\r\n' \
  '\r\r\n.\r\r\n' '\r\n\0.\r\n' '\r\n.\0\r\n' 'bare\rcr' 'bare\nlf' 'nul\0byte'; do
  n=$((n + 1))
  hex=$(printf "$seq" | od -An -tx1 | tr -d ' \n')
  for mode in whole split; do
    out=$(lab_exec client python3 "$IT_TMP/smuggle.py" "$LAB_SERVER4" "s$mode$n" "$hex" "$mode" 2>&1)
    it_assert_match "sanitize, sequence $n ($seq) sent $mode: the cover message is accepted" \
      '^result: answered$' "$(grep '^result' <<<"$out")"
    it_assert_match "... with a 250 to its end of data" '^reply: 250 ' "$(grep '^reply' <<<"$out")"
  done
done
sleep 2  # anything queued would be delivered by now
n=0
for seq in '\n.\n' '\n.\r\n' '\r.\r' '\r.\n' '\n.\r' '\r\n.\n' '\r\n.\r' '\r.\r\n' '\r\n.\r\r\n' \
  '\r\r\n.\r\r\n' '\r\n\0.\r\n' '\r\n.\0\r\n' 'bare\rcr' 'bare\nlf' 'nul\0byte'; do
  n=$((n + 1))
  hex=$(printf "$seq" | od -An -tx1 | tr -d ' \n')
  for mode in whole split; do
    if ((IT_DAEMON)); then
      it_assert_eq "sanitize, sequence $n ($seq) sent $mode: one cover message, spaces for the stray bytes, no smuggled one" \
        "stored as sanitized" "$(python3 "$IT_TMP/check_stored.py" "$LAB_MAILDIR" "s$mode$n" "$hex")"
    fi
  done
done
if ((IT_DAEMON)); then
  it_assert_eq "the daemon logged 30 smtp_smuggling sanitize decisions" 30 \
    "$(grep -c 'smtp_smuggling.*sanitize' "$IT_DAEMON_ERR" || true)"
  it_assert_eq "... and no reset" 0 "$(grep -c 'smtp_smuggling.*reset' "$IT_DAEMON_ERR" || true)"
fi
it_daemon_report_and_finish
