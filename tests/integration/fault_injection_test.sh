#!/usr/bin/env bash
# Length-changing rewrites over a damaged network. smtpguardd --profile modern
# --strip-keyword AUTH --answer-verb VRFY; both ways: 5% random loss behind the
# gateway (iptables statistic in the receiving end's INPUT chain) and, in the
# sending end's OUTPUT chain, sg_fault_injector (NFQUEUE 5: seeded drop,
# duplication, reordering of segments that carry payload, before the
# gateway). FI_SESSIONS sessions (default 200, FI_PARALLEL
# at a time, default 8) each send EHLO (the reply must carry no AUTH line),
# VRFY x (must get exactly the gateway's "550 5.7.1 Command blocked by
# policy"), one mail with a generated body, QUIT (221). Every stored body must
# be byte-identical to the one sent. Last line:
#   fault_injection: sessions ok=X corrupted=Y stalled=Z
# and the test passes only when ok = FI_SESSIONS (corrupted: a wrong reply, an
# error, or a missing/different stored body; stalled: the session exceeded
# FI_SESSION_TIMEOUT seconds, default 60).
#
# Evidence: tcpdump records both gateway veths for the whole run (into the
# test's temp dir; SMTPGUARD_LAB_KEEP=1 keeps it); for every failed session
# the test prints the client's socket (ss), Postfix's log of the session and
# the session's packets as the gateway received and sent them on each side.
#
# Environment: FI_SESSIONS FI_PARALLEL FI_SESSION_TIMEOUT FI_BODY_SIZE (32768)
#   FI_MSS (536: offloads off and this MSS on the endpoints, so that segments
#   are small enough to be duplicated) FI_LOSS (0.05) FI_DROP (0.01)
#   FI_DUP (0.05) FI_REORDER (0.10) FI_SEED (1)
#   FI_MODE: modern (default, as above) or pix (pix-mailguard: HELO, VRFY
#   masked by the gateway and answered 500 by Postfix: same-length rewrites)
#   FI_EVIDENCE_MAX (6): failed sessions whose evidence is printed
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FI_SESSIONS=${FI_SESSIONS:-200}
FI_PARALLEL=${FI_PARALLEL:-8}
FI_SESSION_TIMEOUT=${FI_SESSION_TIMEOUT:-60}
FI_BODY_SIZE=${FI_BODY_SIZE:-32768}
FI_MSS=${FI_MSS:-536}
FI_LOSS=${FI_LOSS:-0.05}
FI_DROP=${FI_DROP:-0.01}
FI_DUP=${FI_DUP:-0.05}
FI_REORDER=${FI_REORDER:-0.10}
FI_SEED=${FI_SEED:-1}
FI_MODE=${FI_MODE:-modern}
FI_QUEUE=5
FI_INJECTOR=$SMTPGUARD_BUILD/sg_fault_injector
FI_OK=0
FI_CORRUPTED=0
FI_STALLED=0
declare -A FI_PID=()  # client|server -> pid of the injector in that namespace
declare -A FI_DUMP=() # gw-cl|gw-srv -> pid of tcpdump on that gateway veth

# Whatever happens, the last line is the summary.
_fi_summary() { printf 'fault_injection: sessions ok=%d corrupted=%d stalled=%d\n' "$FI_OK" "$FI_CORRUPTED" "$FI_STALLED"; }

# fi_injector_start HOST SEED: bind queue FI_QUEUE in HOST's namespace (bounded wait for ready).
fi_injector_start() {
  local host=$1 seed=$2 i
  # `ip netns exec` execs (lab_exec in the background would be a subshell): $! is the injector.
  ip netns exec "$(lab_ns "$host")" "$FI_INJECTOR" --queue "$FI_QUEUE" --seed "$seed" --drop "$FI_DROP" \
    --dup "$FI_DUP" --reorder "$FI_REORDER" --max-delay-ms 50 --max-held 64 --max-runtime-s 900 \
    >"$IT_TMP/injector.$host.out" 2>"$IT_TMP/injector.$host.err" &
  FI_PID[$host]=$!
  for ((i = 0; i < 50; i++)); do
    grep -q 'ready' "$IT_TMP/injector.$host.err" 2>/dev/null && return 0
    kill -0 "${FI_PID[$host]}" 2>/dev/null || break
    sleep 0.1
  done
  it_fatal "sg_fault_injector in $host not ready: $(cat "$IT_TMP/injector.$host.err")"
}

# fi_injector_stop HOST: SIGTERM, bounded wait; prints its counts line.
fi_injector_stop() {
  local host=$1 pid=${FI_PID[$1]:-} i
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid"
  local rc=$?
  FI_PID[$host]=""
  it_say "injector ($host) exit $rc: $(tail -n 1 "$IT_TMP/injector.$host.out")"
  it_assert_eq "sg_fault_injector in $host exits 0 on SIGTERM" 0 "$rc"
}

# fi_capture_start IF: tcpdump on a gateway veth (headers + 96 bytes of
# payload, absolute sequence numbers when read back).
fi_capture_start() {
  local ifname=$1 i
  # -Z root: Debian's tcpdump drops to user tcpdump, which may not write here.
  ip netns exec "$(lab_ns gw)" tcpdump -i "$ifname" -nn -U -s 160 -Z root -w "$IT_TMP/$ifname.pcap" \
    'tcp port 25' >"$IT_TMP/tcpdump.$ifname.out" 2>&1 &
  FI_DUMP[$ifname]=$!
  for ((i = 0; i < 50; i++)); do
    grep -q 'listening on' "$IT_TMP/tcpdump.$ifname.out" 2>/dev/null && return 0
    kill -0 "${FI_DUMP[$ifname]}" 2>/dev/null || break
    sleep 0.1
  done
  it_fatal "tcpdump on $ifname did not start: $(cat "$IT_TMP/tcpdump.$ifname.out")"
}

fi_capture_stop() {
  local ifname=$1 pid=${FI_DUMP[$1]:-} i
  [[ -n $pid ]] || return 0
  kill -INT "$pid" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  FI_DUMP[$ifname]=""
  it_say "tcpdump $ifname: $(grep -E 'captured|dropped by kernel' "$IT_TMP/tcpdump.$ifname.out" | tr '\n' ' ')"
}

_fi_cleanup() {
  local rc=$?
  local pid
  # lib.sh's cleanup would dump the maillog after everything: do it here so
  # that the summary stays the last line.
  if [[ $rc -ne 0 && $rc -ne 77 && -n ${LAB_MAILLOG:-} && -r ${LAB_MAILLOG:-} ]]; then
    echo "--- last lines of the server's maillog ($LAB_MAILLOG):" >&2
    grep -vE 'match_host(name|addr)|smtp_stream_setup|watchdog_pat|attribute|socket:' "$LAB_MAILLOG" | tail -n 25 >&2
    LAB_MAILLOG=""
  fi
  if [[ -n ${SMTPGUARD_LAB_KEEP:-} && -n $IT_TMP ]]; then
    echo "fault_injection: keeping $IT_TMP (SMTPGUARD_LAB_KEEP: pcaps of both gateway veths)" >&2
    IT_KEPT_SAID=1
  fi
  _fi_summary
  for pid in "${FI_PID[@]}" "${FI_DUMP[@]}"; do
    [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null
  done
  [[ -n ${FI_SESSION_PIDS:-} ]] && kill -TERM $FI_SESSION_PIDS 2>/dev/null
  (exit "$rc")
  _it_cleanup
}

# One session as a small program run in the client namespace. It writes
# OUT.sha (SHA-256 of the body sent), OUT.port (its local port), OUT.status
# (sent | corrupted ... | stalled in PHASE ...) and, on failure, OUT.ss.
# argv: DIR HOST SEED SIZE MSGID OUT TIMEOUT MODE
#   MODE modern: EHLO without AUTH, VRFY -> exactly "550 5.7.1 Command blocked by policy"
#   MODE plain:  EHLO with AUTH, VRFY -> 252 (no daemon)
#   MODE pix:    HELO, VRFY -> 500 (masked by the gateway, refused by Postfix)
fi_write_session_py() {
  cat >"$IT_TMP/session.py" <<'EOF'
import hashlib, smtplib, socket, subprocess, sys
sys.path.insert(0, sys.argv[1])
import mailtool
host, seed, size, msgid, out = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
timeout, mode = float(sys.argv[7]), sys.argv[8]
body = mailtool.genbody(seed, size)
head = (f"From: sender@example.org\nTo: user@example.org\nSubject: fault injection {seed}\n"
        f"Message-ID: <{msgid}>\nDate: Thu, 01 Jan 2026 00:00:00 +0000\n\n").encode("ascii")
with open(out + ".sha", "w") as f:
    f.write(hashlib.sha256(body).hexdigest() + "\n")
msg = (head + body).replace(b"\n", b"\r\n")
def status(s):
    with open(out + ".status", "w") as f:
        f.write(s + "\n")
class SMTP(smtplib.SMTP):
    def _get_socket(self, host, port, timeout):
        # The local port as soon as the TCP connection exists: a session
        # that stalls before the greeting still leaves its port as evidence.
        global phase
        sock = super()._get_socket(host, port, timeout)
        with open(out + ".port", "w") as f:
            f.write(f"{sock.getsockname()[1]}\n")
        phase = "greeting"
        return sock
phase = "connect"
s = SMTP(timeout=timeout)
try:
    s.connect(host, 25)
    if mode == "pix":
        phase = "HELO"
        code, resp = s.helo("client.example.org")
        if code != 250:
            status(f"corrupted HELO {code} {resp!r}"); sys.exit(1)
    else:
        phase = "EHLO"
        code, resp = s.ehlo("client.example.org")
        if code != 250:
            status(f"corrupted EHLO {code} {resp!r}"); sys.exit(1)
        lines = resp.split(b"\n")
        has_auth = any(l.upper().startswith(b"AUTH") for l in lines)
        if has_auth != (mode == "plain") or b"PIPELINING" not in lines:
            status(f"corrupted EHLO reply {resp!r}"); sys.exit(1)
    phase = "VRFY"
    code, resp = s.docmd("VRFY", "x")
    want = {"modern": (550, b"5.7.1 Command blocked by policy"), "plain": (252, b"2.0.0 x"),
            "pix": (500, None)}[mode]
    if code != want[0] or (want[1] is not None and resp != want[1]):
        status(f"corrupted VRFY {code} {resp!r}"); sys.exit(1)
    phase = "MAIL..DATA"
    refused = s.sendmail("sender@example.org", ["user@example.org"], msg)
    if refused:
        status(f"corrupted refused {refused!r}"); sys.exit(1)
    phase = "QUIT"
    code, resp = s.docmd("QUIT")
    s.close()
    if code != 221:
        status(f"corrupted QUIT {code} {resp!r}"); sys.exit(1)
except (OSError, smtplib.SMTPException) as e:
    stalled = isinstance(e, (socket.timeout, TimeoutError)) or "timed out" in str(e)
    # Evidence while the socket still exists: the kernel's view of the connection.
    with open(out + ".ss", "w") as f:
        subprocess.run(["ss", "-tnio", "dport = :25"], stdout=f, stderr=subprocess.STDOUT, timeout=5)
    status(f"{'stalled' if stalled else 'corrupted'} in {phase}: {type(e).__name__}: {e}")
    sys.exit(1)
status("sent")
EOF
}

# fi_session I: one session, bounded by FI_SESSION_TIMEOUT (exit 124 = stalled).
fi_session() {
  local i=$1 t0=$SECONDS rc
  lab_exec client timeout -k 5 "$FI_SESSION_TIMEOUT" "$IT_PY" "$IT_TMP/session.py" "$IT_DIR" \
    "$LAB_SERVER4" "$((FI_SEED * 1000 + i))" "$FI_BODY_SIZE" "fi.$i.$$@client.example.org" \
    "$IT_TMP/s.$i" "$((FI_SESSION_TIMEOUT - 5))" "$FI_SESSION_MODE" >/dev/null 2>"$IT_TMP/s.$i.err"
  rc=$?
  if ((rc == 124 || rc == 137)); then echo "stalled after $((SECONDS - t0))s" >"$IT_TMP/s.$i.status"; fi
  echo "$((SECONDS - t0))" >"$IT_TMP/s.$i.secs"
}

# fi_evidence I: what the client's kernel, Postfix and the gateway's veths
# saw of a failed session.
FI_EVIDENCE_MAX=${FI_EVIDENCE_MAX:-6}
FI_EVIDENCE_N=0
fi_evidence() {
  local i=$1 port ifname
  port=$(cat "$IT_TMP/s.$i.port" 2>/dev/null) || return 0
  FI_EVIDENCE_N=$((FI_EVIDENCE_N + 1))
  if ((FI_EVIDENCE_N > FI_EVIDENCE_MAX)); then
    ((FI_EVIDENCE_N == FI_EVIDENCE_MAX + 1)) && it_say "  (evidence shown for the first $FI_EVIDENCE_MAX failed sessions only)"
    return 0
  fi
  it_say "  client port $port; client socket (ss -tnio) at the failure:"
  sed 's/^/    | /' "$IT_TMP/s.$i.ss" 2>/dev/null | grep -F -A1 ":$port " | head -n 6
  it_say "  Postfix's log of that session:"
  grep -E "\]:$port( |:|$)" "$LAB_MAILLOG" | grep -vE 'attribute|socket:' | tail -n 12 | sed 's/^/    | /'
  for ifname in gw-cl gw-srv; do
    [[ -r $IT_TMP/$ifname.pcap ]] || continue
    it_say "  packets of that session on the gateway's $ifname (last 40; $IT_TMP/$ifname.pcap):"
    tcpdump -r "$IT_TMP/$ifname.pcap" -nn -S -tt "tcp port $port" 2>/dev/null | tail -n 40 | cut -c1-220 |
      sed 's/^/    | /'
  done
}

it_init fault_injection
trap _fi_cleanup EXIT
[[ -x $FI_INJECTOR ]] || it_fatal "$FI_INJECTOR not built (make sg_fault_injector)"
for tool in iptables tcpdump ss; do
  command -v "$tool" >/dev/null || it_fatal "missing tool $tool (run scripts/install-deps)"
done
case $FI_MODE in
  modern) FI_SESSION_MODE=modern ;;
  pix) FI_SESSION_MODE=pix ;;
  *) it_fatal "FI_MODE must be modern or pix" ;;
esac
((IT_DAEMON)) || [[ $FI_MODE == pix ]] || FI_SESSION_MODE=plain
it_lab_up
if [[ $FI_MODE == pix ]]; then
  it_daemon_start pix-mailguard
else
  it_daemon_start modern --strip-keyword AUTH --answer-verb VRFY
fi

it_section "damage: loss $FI_LOSS (receiver side) + injector drop $FI_DROP dup $FI_DUP reorder $FI_REORDER, MSS $FI_MSS"
lab_segmentation "$FI_MSS" || it_fatal "lab_segmentation $FI_MSS"
fi_injector_start client "$((FI_SEED * 2))"
fi_injector_start server "$((FI_SEED * 2 + 1))"
# The random loss is on the receiving side (INPUT), never in the sender's
# OUTPUT chain: a DROP there is not a silent loss but an error (EPERM) that
# the sending kernel sees, and for a SYN-ACK retransmission that error makes
# the server discard the half-open connection (reqsk_timer_handler drops a
# request whose SYN-ACK could not be resent). A client whose handshake ACK was
# lost then waits for a greeting forever: measured 6 stalls in 1500 bare
# connections (no daemon, no injector) with 5% OUTPUT drops on both ends, 0
# with the same drops in INPUT. The injector's own drops are verdicts on
# queued packets: silent, like a loss on the wire.
# --queue-bypass: should an injector die, traffic passes instead of stalling.
lab_exec client iptables -A INPUT -p tcp --sport 25 -m statistic --mode random --probability "$FI_LOSS" -j DROP &&
  lab_exec client iptables -A OUTPUT -p tcp --dport 25 -j NFQUEUE --queue-num "$FI_QUEUE" --queue-bypass &&
  lab_exec server iptables -A INPUT -p tcp --dport 25 -m statistic --mode random --probability "$FI_LOSS" -j DROP &&
  lab_exec server iptables -A OUTPUT -p tcp --sport 25 -j NFQUEUE --queue-num "$FI_QUEUE" --queue-bypass ||
  it_fatal "iptables rules"
fi_capture_start gw-cl
fi_capture_start gw-srv

it_section "$FI_SESSIONS sessions ($FI_MODE), $FI_PARALLEL at a time, ${FI_BODY_SIZE}-byte bodies, via [$LAB_SERVER4]:25"
fi_write_session_py
T_SESSIONS=$SECONDS
FI_SESSION_PIDS=""
declare -a running=() active=()
for ((i = 1; i <= FI_SESSIONS; i++)); do
  # Bounded: each session ends within FI_SESSION_TIMEOUT + 5 s (timeout -k),
  # so this wait is too.
  while :; do
    active=()
    for pid in "${running[@]}"; do kill -0 "$pid" 2>/dev/null && active+=("$pid"); done
    running=("${active[@]}")
    ((${#active[@]} < FI_PARALLEL)) && break
    wait -n "${active[@]}" 2>/dev/null || sleep 0.05
  done
  fi_session "$i" &
  FI_SESSION_PIDS+=" $!"
  running+=("$!")
done
for pid in "${running[@]}"; do wait "$pid"; done
FI_SESSION_PIDS=""
it_say "sessions done in $((SECONDS - T_SESSIONS))s"

it_section "teardown of the damage"
for host in client server; do
  it_say "random loss in the $host's INPUT: $(lab_exec "$host" iptables -L INPUT -v -n -x |
    awk '/statistic/ { print $1 " packets dropped" }')"
done
# The endpoints' view of the damage (and of anything odd on the listener).
for host in client server; do
  it_say "TCP counters of the $host namespace: $(lab_exec "$host" nstat -asz 2>/dev/null |
    awk '$1 ~ /^(TcpRetransSegs|TcpExtTCPSynRetrans|TcpExtTCPTimeouts|TcpExtTCPLossProbes|TcpExtTCPSACKReorder|TcpExtTCPDSACKRecv|TcpExtSyncookiesSent|TcpExtSyncookiesFailed|TcpExtListenOverflows|TcpExtListenDrops|TcpExtTCPReqQFullDrop|TcpExtTCPReqQFullDoCookies|TcpExtTCPAbortOnTimeout|TcpExtTCPAbortOnData|TcpEstabResets|TcpAttemptFails|TcpExtPAWSEstab)$/ && $2 != 0 { printf "%s=%s ", $1, $2 }')"
done
lab_exec client iptables -D OUTPUT -p tcp --dport 25 -j NFQUEUE --queue-num "$FI_QUEUE" --queue-bypass
lab_exec server iptables -D OUTPUT -p tcp --sport 25 -j NFQUEUE --queue-num "$FI_QUEUE" --queue-bypass
fi_injector_stop client
fi_injector_stop server
fi_capture_stop gw-cl
fi_capture_stop gw-srv

it_section "checking the sessions and the stored bodies"
for ((i = 1; i <= FI_SESSIONS; i++)); do
  st=$(cat "$IT_TMP/s.$i.status" 2>/dev/null || echo "corrupted: no status ($(tail -n 1 "$IT_TMP/s.$i.err" 2>/dev/null))")
  secs=$(cat "$IT_TMP/s.$i.secs" 2>/dev/null || echo '?')
  case $st in
    stalled*)
      FI_STALLED=$((FI_STALLED + 1))
      it_say "session $i (${secs}s): $st"
      fi_evidence "$i"
      ;;
    sent)
      want=$(cat "$IT_TMP/s.$i.sha")
      got=$(it_delivered_body_sha "fi.$i.$$@client.example.org")
      if [[ $got == "$want" ]]; then
        FI_OK=$((FI_OK + 1))
      else
        FI_CORRUPTED=$((FI_CORRUPTED + 1))
        it_say "session $i (${secs}s): stored body differs (sent $want, stored $got)"
        fi_evidence "$i"
      fi
      ;;
    *)
      FI_CORRUPTED=$((FI_CORRUPTED + 1))
      it_say "session $i (${secs}s): $st"
      fi_evidence "$i"
      ;;
  esac
done
it_say "session durations (s): $(cat "$IT_TMP"/s.*.secs 2>/dev/null | sort -n | uniq -c | awk '{printf "%sx%ss ", $1, $2}')"

if ((IT_DAEMON)); then
  it_say "daemon counters (non-zero):"
  it_daemon_counters | sed 's/^/    | /'
fi
it_daemon_alive
it_daemon_stop
((FI_CORRUPTED == 0)) && it_pass "no session corrupted" || it_fail "no session corrupted" "$FI_CORRUPTED corrupted"
((FI_STALLED == 0)) && it_pass "no session stalled" || it_fail "no session stalled" "$FI_STALLED stalled"
it_assert_eq "every session ok" "$FI_SESSIONS" "$FI_OK"
it_say "$IT_PASSED passed, $IT_FAILED failed ($((SECONDS - IT_T0))s)"
# The EXIT trap prints the summary as the last line (after the maillog on failure).
((IT_FAILED == 0 && FI_OK == FI_SESSIONS)) || exit 1
((IT_DAEMON)) || {
  it_say "no-daemon mode: reporting as skipped"
  exit 77
}
exit 0
