#!/usr/bin/env bash
# Daemon failure semantics (DESIGN.md §7), through the lab against Postfix:
#  - graceful restart (SIGTERM, then a new daemon): connections whose sequence numbers were
#    never mapped (zero delta) carry on: the new daemon picks them up mid-stream, and their
#    mail is delivered byte-identical;
#  - a connection whose numbers are mapped (the gateway answered a command: the streams'
#    lengths changed) is reset both ways when the daemon stops: the client sees a reset, never
#    a reply read at the wrong offset or a silent stall.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init restart
it_lab_up
IT_HOLD=$(dirname "${BASH_SOURCE[0]}")/hold_sessions.py

it_section "zero-delta sessions survive a graceful restart"
it_daemon_start modern
lab_exec client python3 "$IT_HOLD" hold --hosts "$LAB_SERVER4,$LAB_SERVER6" --count 10 \
  --ready-file "$IT_TMP/ready" --go-file "$IT_TMP/go" --out "$IT_TMP/held.out" --timeout 90 \
  >"$IT_TMP/hold.log" 2>&1 &
hold_pid=$!
for ((i = 0; i < 300; i++)); do [[ -e $IT_TMP/ready ]] && break; sleep 0.1; done
[[ -e $IT_TMP/ready ]] || it_fatal "the 10 sessions did not get past EHLO: $(cat "$IT_TMP/hold.log")"
it_pass "10 sessions (IPv4 and IPv6) are past EHLO through the gateway"
it_daemon_stop
it_daemon_start modern
touch "$IT_TMP/go"
hold_rc=0
wait "$hold_pid" || hold_rc=$?
sed 's/^/    | /' "$IT_TMP/held.out"
it_assert_eq "every held session completed after the restart" 0 "$hold_rc"
it_assert_eq "10 sessions ok" 10 "$(grep -c ' ok ' "$IT_TMP/held.out" || true)"
while read -r _ _ result msgid sha _; do
  [[ $result == ok ]] || continue
  got=$(it_delivered_body_sha "$msgid")
  [[ $got == "$sha" ]] || it_fail "mail $msgid delivered intact" "sha $got, sent $sha"
done <"$IT_TMP/held.out"
it_pass "their mail was checked byte for byte"
it_daemon_stop

it_section "a mapped session is reset when the daemon stops"
it_daemon_start modern --answer-verb VRFY
cat >"$IT_TMP/mapped.py" <<PY
import socket, sys, time
s = socket.create_connection(("$LAB_SERVER4", 25), timeout=20)
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline()
        if not l:
            raise EOFError("closed")
        lines.append(l.decode("latin-1").rstrip())
        if len(l) < 4 or l[3:4] != b"-":
            return lines
print("greeting", reply()[0], flush=True)
s.sendall(b"EHLO client.example.org\r\n"); reply()
s.sendall(b"VRFY root\r\n"); print("vrfy", reply()[0], flush=True)
open("$IT_TMP/mapped.ready", "w").close()
deadline = time.time() + 30
while not __import__("os").path.exists("$IT_TMP/mapped.go") and time.time() < deadline:
    time.sleep(0.05)
try:
    s.sendall(b"NOOP\r\n")
    print("noop", reply()[0], flush=True)
    print("result: answered")
except (ConnectionResetError, BrokenPipeError) as e:
    print("result: reset")
except EOFError:
    print("result: closed")
except socket.timeout:
    print("result: timeout")
PY
lab_exec client python3 "$IT_TMP/mapped.py" >"$IT_TMP/mapped.out" 2>&1 &
mapped_pid=$!
for ((i = 0; i < 200; i++)); do [[ -e $IT_TMP/mapped.ready ]] && break; sleep 0.1; done
[[ -e $IT_TMP/mapped.ready ]] || it_fatal "the mapped session did not get going: $(cat "$IT_TMP/mapped.out")"
it_daemon_stop
it_assert_match "the gateway stopped with the mapped flow reset" 'flows_reset_at_exit = 1' "$(cat "$IT_DAEMON_ERR")"
touch "$IT_TMP/mapped.go"
wait "$mapped_pid" || true
sed 's/^/    | /' "$IT_TMP/mapped.out"
it_assert_match "VRFY was answered by the gateway" '^vrfy 550' "$(grep '^vrfy' "$IT_TMP/mapped.out")"
it_assert_match "the client sees its connection reset, not a misread reply or a stall" \
  '^result: (reset|closed)$' "$(grep '^result' "$IT_TMP/mapped.out")"
it_finish
