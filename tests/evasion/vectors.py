#!/usr/bin/python3
"""vectors.py - the named evasion vectors, each a short dialogue driven through rawtcp.py.

    vectors.py list [--group G]                  names (filtered by EVASION_VECTORS)
    vectors.py meta NAME                         its metadata (JSON)
    vectors.py run --group G --mode M --port-base P --gw-mac MAC --out DIR [--names a,b]

`run` plays every selected vector of the group at once (one thread and one client port each:
the waits of 12 to 66 s overlap) and writes DIR/NAME.json (ports, replies, transcript). Whether the
blocked verb executed is judged afterwards from Postfix's log (judge.py): the receiver is the
judge. MODE is only a label (control, pix, modern, ...): a vector sends the same bytes
whatever is in the path.
"""

import argparse
import json
import os
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
M32 = 0xFFFFFFFF
rawtcp = None  # imported by `run` only (scapy takes a second to load)

SERVER4 = "198.18.2.1"
SERVER6 = "2001:db8:2::1"
DAEMONS = ("pix", "modern")                  # the default daemon configurations
NOSMUGGLING = ("pix_nosmuggling", "modern_nosmuggling")

VECTORS = {}


def vector(group, verb="VRFY", daemons=DAEMONS, must_complete=False, v6=False, bound=None,
           must_end=False, doc=""):
    """must_complete: the session must end with QUIT answered 221 (control and daemon).
    must_end: through the daemon, the session must end - 221 or the gateway's RST - rather than
    hang (an exception is decided, not left to time out).
    bound: through the daemon, the client must get the gateway's RST before it has sent more
    than this many bytes that no reply answered (the vector records them in stats)."""
    def deco(fn):
        name = fn.__name__[2:] if fn.__name__.startswith("v_") else fn.__name__
        VECTORS[name] = dict(name=name, group=group, verb=verb, daemons=list(daemons),
                             must_complete=must_complete, v6=v6, bound=bound, must_end=must_end,
                             fn=fn,
                             doc=doc or (fn.__doc__ or "").strip().split("\n")[0])
        return fn
    return deco


# --- dialogue helpers -----------------------------------------------------------------

def cmd(s, line, timeout=8.0):
    s.send(line)
    return s.expect(timeout)


def hello(s, ehlo=True):
    if not s.connect():
        raise RuntimeError("no handshake")
    s.expect(8)  # banner
    if ehlo:
        cmd(s, b"EHLO x\r\n")


def mail_txn(s):
    cmd(s, b"MAIL FROM:<sender@example.org>\r\n")
    cmd(s, b"RCPT TO:<user@example.org>\r\n")


def quit_(s):
    cmd(s, b"QUIT\r\n", 5)


VRFY = b"VRFY postmaster\r\n"


# --- 1, 5, 9, 11: TCP state -----------------------------------------------------------

# How long the state-loss vectors stay silent: longer than an earlier daemon kept a flow it had
# wrongly closed (10 s), marked closing (60 s) or restarted as a new handshake (30 s), so that
# a daemon that still did so would pick the rest up mid-stream. The lab's Postfix waits longer
# than the longest of them (tcp_state_test.sh sets its smtpd_timeout to 150 s).
QUIET_AFTER_RST = 12
QUIET_AFTER_FIN = 65
QUIET_AFTER_SYN = 35


@vector("tcp_state")
def v_rst_out_of_window(s):
    """RST at rcv_nxt + 100000, 12 s of silence, then VRFY in the clear"""
    hello(s)
    s.rst(delta=100000)
    s.sleep(QUIET_AFTER_RST)
    cmd(s, VRFY)
    quit_(s)


@vector("tcp_state")
def v_rst_in_window_inexact(s):
    """RST at rcv_nxt + 1 (Linux answers a challenge ACK), 12 s, then VRFY"""
    hello(s)
    s.rst(delta=1)
    s.sleep(QUIET_AFTER_RST)
    cmd(s, VRFY)
    quit_(s)


@vector("tcp_state")
def v_fin_out_of_window(s):
    """FIN at rcv_nxt + 100000, 65 s of silence, then VRFY"""
    hello(s)
    s.fin(delta=100000)
    s.sleep(QUIET_AFTER_FIN)
    cmd(s, VRFY)
    quit_(s)


@vector("tcp_state")
def v_syn_new_isn(s):
    """a SYN with a new ISN on the same 4-tuple mid-session (Linux answers a challenge ACK and
    keeps the connection), 35 s of silence, then VRFY on the old connection"""
    hello(s)
    s.syn((s.isn + 0x40000000) & M32, note=" (new ISN, same 4-tuple)")
    s.sleep(QUIET_AFTER_SYN)
    cmd(s, VRFY)
    quit_(s)


@vector("tcp_state")
def v_rst_bad_checksum(s):
    """a RST with a bad TCP checksum at the exact next seq, 12 s, then VRFY"""
    hello(s)
    s.rst(delta=0, badsum=True)
    s.sleep(QUIET_AFTER_RST)
    cmd(s, VRFY)
    quit_(s)


@vector("tcp_state")
def v_spoofed_354(s):
    """DATA without a transaction (Postfix: 503) under a zero client window, so that the 503
    waits in the server; a spoofed 354 'from the server' sent into the gateway's client side at
    the server's next seq; then VRFY and the window opens"""
    hello(s)
    spoof = b"354 End data with <CR><LF>.<CR><LF>\r\n"
    s.window = 0
    s.pure_ack(note=" (window 0)")
    s.send(b"DATA\r\n")
    s.wait_acked(2.0)
    s.spoof_server(spoof, s.rcv_nxt)
    time.sleep(0.3)
    s.send(VRFY)
    s.wait_acked(2.0)
    s.window = 65535
    s.pure_ack(note=" (window update)")
    s.expect(5)
    s.expect(5)
    quit_(s)


@vector("tcp_state", verb="EXPN")
def v_isn_minus5(s):
    """first data segment at ISN+1-5 carrying 'NOOP EXPN root': Linux trims the 5 old bytes"""
    hello(s, ehlo=False)
    s.send(b"NOOP EXPN root\r\n", off=-5)
    s.expect(8)
    quit_(s)


@vector("tcp_state", must_complete=True)
def v_ack_beyond_retrans(s):
    """'NOOP xxxx' with an ACK beyond what the server sent (Linux drops it), then the same seq
    range again as 'VRFY post'"""
    hello(s)
    k = s.snd_off
    s.send_at(b"NOOP xxxx\r\n", k, ack=(s.rcv_nxt + 100000) & M32, note=" (ack beyond the server's data)")
    time.sleep(0.3)
    s.send(b"VRFY post\r\n", off=k)
    s.expect(8)
    quit_(s)


@vector("tcp_state", must_complete=True)
def v_synack_lost(s):
    """every SYN-ACK of the first request lost (ignored by the client) until the server drops it
    (Linux: 5 retransmissions, 63 s); the SYN retransmitted at 66 s is answered with a new ISN:
    the session must complete"""
    s.ignore_synacks = 6  # the first SYN-ACK and its 5 retransmissions (1, 3, 7, 15, 31 s)
    if not s.connect(timeout=80, syn_retries=1, syn_rto=66):
        raise RuntimeError("no handshake")
    s.expect(8)  # banner
    cmd(s, b"EHLO x\r\n")
    cmd(s, VRFY)
    quit_(s)


# --- 2, 3, 4, 10, 12: SMTP parsing ------------------------------------------------------

@vector("parsing")
def v_data_padded(s):
    """'DATA' + 600 spaces (Postfix: 354), a body line 'BDAT 99999' (a gateway still in command
    mode would skip what follows as a chunk), CRLF.CRLF, then VRFY"""
    hello(s)
    mail_txn(s)
    cmd(s, b"DATA" + b" " * 600 + b"\r\n")
    s.send(b"BDAT 99999\r\n.\r\n" + VRFY)
    s.expect(8)
    s.expect(8)
    quit_(s)


@vector("parsing")
def v_bdat_padded(s):
    """'BDAT 12 LAST' + 600 spaces, a 12-byte chunk 'BDAT 99999' (a gateway still in command
    mode would skip what follows as a chunk), then VRFY"""
    hello(s)
    mail_txn(s)
    chunk = b"BDAT 99999\r\n"
    assert len(chunk) == 12
    s.send(b"BDAT 12 LAST" + b" " * 600 + b"\r\n" + chunk)
    s.expect(8)
    cmd(s, VRFY)
    quit_(s)


@vector("parsing")
def v_bdat_tabs(s):
    """'BDAT<TAB>12<TAB>LAST' + a 12-byte chunk 'BDAT 99999', then VRFY"""
    hello(s)
    mail_txn(s)
    chunk = b"BDAT 99999\r\n"
    assert len(chunk) == 12
    s.send(b"BDAT\t12\tLAST\r\n" + chunk)
    s.expect(8)
    cmd(s, VRFY)
    quit_(s)


@vector("parsing")
def v_bdat_zeros_lower(s):
    """'BDAT 0000000000000000000012 last' (Postfix: a 12-byte last chunk) + a 12-byte chunk
    'BDAT 99999', then VRFY (the literal 'BDAT 12 XLASTX' cannot reach: Postfix answers 521 and
    disconnects). A regression vector: the daemon before the fail-closed work read it right too"""
    hello(s)
    mail_txn(s)
    chunk = b"BDAT 99999\r\n"
    assert len(chunk) == 12
    s.send(b"BDAT 0000000000000000000012 last\r\n" + chunk)
    s.expect(8)
    cmd(s, VRFY)
    quit_(s)


@vector("parsing", must_end=True)
def v_rcpt128_pipelined(s):
    """MAIL, 128 RCPTs, DATA, body, CRLF.CRLF, VRFY pipelined in one go, client window 256"""
    hello(s)
    s.window = 256
    batch = b"MAIL FROM:<sender@example.org>\r\n"
    batch += b"".join(b"RCPT TO:<u%d@example.org>\r\n" % i for i in range(128))
    batch += b"DATA\r\nSubject: many\r\n\r\nbody\r\n.\r\n" + VRFY + b"QUIT\r\n"
    s.send(batch)
    for _ in range(140):
        r = s.expect(10)
        if r is None or r[-1].startswith("221"):
            break


PENDING_SENT = 256 * 1024


@vector("parsing", bound=160 * 1024)
def v_pending_before_354(s):
    """point 8: DATA with the client's window at 0 (the 354 cannot come back), then 256 KiB of
    body that no reply answers, CRLF.CRLF and VRFY; then the window opens"""
    hello(s)
    mail_txn(s)
    s.window = 0
    s.send(b"DATA\r\n")
    s.wait_acked(2.0)
    chunk = (b"x" * 74 + b"\r\n") * 200
    sent = 0
    deadline = time.monotonic() + 40
    while sent < PENDING_SENT and not s.rst_rcvd and time.monotonic() < deadline:
        s.send(chunk)
        sent += len(chunk)
        s.wait_acked(2.0)
    s.stats["unanswered_sent"] = sent
    s.stats["rst_seen"] = s.rst_rcvd
    s.log("   (%d body bytes sent before any reply%s)" % (sent, ", then RST" if s.rst_rcvd else ""))
    if s.rst_rcvd:
        return
    s.send(b".\r\n" + VRFY)
    s.window = 65535
    s.pure_ack(note=" (window update)")
    for _ in range(4):  # 354, 250 (queued), the VRFY's reply
        if s.expect(8) is None:
            break
    quit_(s)


@vector("parsing")
def v_lead_space_vrfy(s):
    """' VRFY postmaster'"""
    hello(s)
    cmd(s, b" VRFY postmaster\r\n")
    quit_(s)


@vector("parsing")
def v_lead_tab_vrfy(s):
    """'<TAB>VRFY postmaster'"""
    hello(s)
    cmd(s, b"\tVRFY postmaster\r\n")
    quit_(s)


@vector("parsing", verb="EXPN")
def v_lead_space_expn(s):
    """' EXPN root'"""
    hello(s)
    cmd(s, b" EXPN root\r\n")
    quit_(s)


@vector("parsing", verb="EXPN")
def v_expn_vt(s):
    """'EXPN<VT>root'"""
    hello(s)
    cmd(s, b"EXPN\x0broot\r\n")
    quit_(s)


@vector("parsing", daemons=NOSMUGGLING)
def v_lf_dot_lf(s):
    """check.smuggling off: a body ending LF.LF then VRFY (then CRLF.CRLF, in case)"""
    hello(s)
    mail_txn(s)
    cmd(s, b"DATA\r\n")
    s.send(b"Subject: bare\r\n\r\nbody\n.\n" + VRFY)
    s.expect(8)
    s.expect(4)
    s.send(b"\r\n.\r\n")
    s.expect(4)
    quit_(s)


# --- classic set ------------------------------------------------------------------------

def _one_byte(s):
    hello(s)
    for i in range(len(VRFY)):
        s.send(VRFY[i:i + 1])
        time.sleep(0.01)
    s.expect(8)
    quit_(s)


@vector("classic")
def v_one_byte_segments(s):
    """VRFY postmaster one byte per segment"""
    _one_byte(s)


@vector("classic", v6=True)
def v_one_byte_segments_v6(s):
    """VRFY postmaster one byte per segment, IPv6"""
    _one_byte(s)


def _out_of_order(s):
    hello(s)
    k = s.snd_off
    parts = [(0, 5), (5, 11), (11, len(VRFY))]
    for a, b in reversed(parts):
        s.send(VRFY[a:b], off=k + a)
        time.sleep(0.05)
    s.expect(8)
    quit_(s)


@vector("classic")
def v_out_of_order(s):
    """VRFY postmaster in three segments sent last first"""
    _out_of_order(s)


@vector("classic", v6=True)
def v_out_of_order_v6(s):
    """VRFY postmaster in three segments sent last first, IPv6"""
    _out_of_order(s)


@vector("classic")
def v_overlap_noop_then_vrfy(s):
    """out of order: 'NOOP postmaster' then a longer copy at the same seq starting 'VRFY
    postmaster' (Linux replaces the first), then the gap filled"""
    hello(s)
    k = s.snd_off
    first = b"NOOP a\r\n"
    a = b"NOOP postmaster\r\n"
    b = VRFY + b"NOOP\r\n"
    s.send(first[:-1], off=k)
    s.send(a, off=k + len(first))
    time.sleep(0.05)
    s.send(b, off=k + len(first))
    time.sleep(0.05)
    s.send(first[-1:], off=k + len(first) - 1)
    s.expect(8)
    s.expect(8)
    s.expect(8)
    quit_(s)


@vector("classic")
def v_overlap_vrfy_then_noop(s):
    """out of order: 'VRFY postmaster' then 'NOOP postmaster' at the same seq (Linux keeps the
    first), then the gap filled"""
    hello(s)
    k = s.snd_off
    first = b"NOOP a\r\n"
    s.send(first[:-1], off=k)
    s.send(VRFY, off=k + len(first))
    time.sleep(0.05)
    s.send_at(b"NOOP postmaster\r\n", k + len(first))
    time.sleep(0.05)
    s.send(first[-1:], off=k + len(first) - 1)
    s.expect(8)
    s.expect(8)
    quit_(s)


@vector("classic")
def v_ip_fragments(s):
    """VRFY postmaster in 8-byte IPv4 fragments"""
    hello(s)
    s.send(VRFY, frag=8)
    s.expect(8)
    quit_(s)


@vector("classic", v6=True)
def v_ip_fragments_v6(s):
    """VRFY postmaster in 8-byte IPv6 fragments"""
    hello(s)
    s.send(VRFY, frag=8)
    s.expect(8)
    quit_(s)


@vector("classic", verb="EXPN")
def v_urgent(s):
    """'XEXPN root' with URG and the urgent pointer after the X (Postfix reads 'EXPN root')"""
    hello(s)
    s.send(b"XEXPN root\r\n", flags="PAU", urg=1)
    s.expect(8)
    quit_(s)


@vector("classic")
def v_badsum_then_good(s):
    """'NOOP postmaster' with a bad checksum, then 'VRFY postmaster' at the same seq"""
    hello(s)
    k = s.snd_off
    s.send_at(b"NOOP postmaster\r\n", k, badsum=True)
    time.sleep(0.1)
    s.send(VRFY, off=k)
    s.expect(8)
    quit_(s)


@vector("classic")
def v_syn_data(s):
    """a SYN carrying 'NOOP postmaster' (Linux ignores it), then 'VRFY postmaster' at the same
    offsets after the greeting"""
    if not s.connect(syn_payload=b"NOOP postmaster\r\n"):
        raise RuntimeError("no handshake")
    s.expect(8)
    s.send(VRFY, off=0)
    s.expect(8)
    quit_(s)


@vector("classic")
def v_zero_window(s):
    """the client advertises a zero window while VRFY is pending (the server probes), then
    opens it"""
    hello(s)
    s.window = 0
    s.pure_ack(note=" (window 0)")
    s.send(VRFY)
    s.sleep(3)
    s.window = 65535
    s.pure_ack(note=" (window update)")
    s.expect(8)
    quit_(s)


@vector("classic")
def v_keepalives(s):
    """keepalives (seq-1, empty and with a garbage byte) inside 'VRFY postmaster'"""
    hello(s)
    s.send(VRFY[:-1])
    time.sleep(0.1)
    s.send_at(b"", s.snd_off - 1, flags="A", note=" (keepalive)")
    s.send_at(b"X", s.snd_off - 1, flags="A", note=" (keepalive with a garbage byte)")
    time.sleep(0.1)
    s.send(VRFY[-1:])
    s.expect(8)
    quit_(s)


# --- runner -----------------------------------------------------------------------------

def selected(group=None):
    want = [w for w in os.environ.get("EVASION_VECTORS", "").replace(" ", ",").split(",") if w]
    unknown = [w for w in want if w not in VECTORS and w != "generator"]
    if unknown:
        raise SystemExit("vectors.py: unknown vector(s) in EVASION_VECTORS: %s" % ", ".join(unknown))
    names = [n for n, v in VECTORS.items() if group is None or v["group"] == group]
    if want:
        names = [n for n in names if n in want]
    return names


def meta(name):
    v = dict(VECTORS[name])
    del v["fn"]
    return v


def run_one(hub, name, mode, port, out_dir, results):
    v = VECTORS[name]
    dst = SERVER6 if v["v6"] else SERVER4
    tr = open(os.path.join(out_dir, name + ".transcript"), "w")
    s = rawtcp.Session(hub, dst, sport=port, name=name, out=tr)
    s.stats = {}
    err = None
    t0 = time.monotonic()
    try:
        v["fn"](s)
    except Exception as e:  # noqa: BLE001 - recorded, judged by the caller
        err = "%s: %s" % (type(e).__name__, e)
        s.log("error: " + err + "\n" + traceback.format_exc())
    finally:
        s.finish()
    last = s.replies[-1][-1] if s.replies else ""
    res = dict(meta(name), mode=mode, port=port, dst=dst, error=err,
               seconds=round(time.monotonic() - t0, 1),
               completed=last.startswith("221"), summary=s.summary(), stats=s.stats)
    tr.close()
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(res, f, indent=1)
    results[name] = res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["list", "meta", "run"])
    ap.add_argument("name", nargs="?")
    ap.add_argument("--group")
    ap.add_argument("--mode", default="control")
    ap.add_argument("--names", default="")
    ap.add_argument("--port-base", type=int, default=40000)
    ap.add_argument("--gw-mac")
    ap.add_argument("--iface", default="cl0")
    ap.add_argument("--out", default=".")
    a = ap.parse_args()
    if a.what == "list":
        for n in selected(a.group):
            print(n)
        return 0
    if a.what == "meta":
        print(json.dumps(meta(a.name)))
        return 0
    names = [n for n in a.names.split(",") if n] or selected(a.group)
    if not (40000 <= a.port_base and a.port_base + len(names) <= 44999):
        raise SystemExit("vectors.py: ports must stay in 40000-44999")
    os.makedirs(a.out, exist_ok=True)
    global rawtcp
    import rawtcp as _rawtcp
    rawtcp = _rawtcp
    hub = rawtcp.Hub(a.iface, a.gw_mac)
    results = {}
    threads = []
    for i, n in enumerate(names):
        t = threading.Thread(target=run_one, args=(hub, n, a.mode, a.port_base + i, a.out, results))
        t.start()
        threads.append(t)
        time.sleep(0.05)
    for t in threads:
        t.join(120)
    hub.close()
    for n in names:
        r = results.get(n)
        if r is None:
            print("%s: did not finish" % n)
        else:
            print("%s: port %d, %d replies%s%s" % (n, r["port"], len(r["summary"]["replies"]),
                                                  ", completed" if r["completed"] else "",
                                                  (", error " + r["error"]) if r["error"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
