#!/usr/bin/python3
"""rawtcp.py - a hand-driven TCP client for the smtpguard evasion tests.

Runs inside the lab's client namespace (`lab_exec client ...`). It does the TCP handshake
itself and sends segments crafted with scapy through an AF_PACKET socket on the client's veth
(so the client kernel's own TCP never sees them), and reads the server's segments from the same
socket. The client kernel would answer every server segment with a RST (it has no socket for
the 4-tuple): the test installs an OUTPUT rule in the client namespace that drops RSTs from the
raw client's port range (lib_evasion.sh: ev_raw_prepare).

Python API (vectors.py and generator.py use it):

    hub = Hub(iface="cl0", gw_mac="aa:bb:..")       # one receive thread for all sessions
    s = Session(hub, "198.18.2.1", sport=40001)     # IPv4 or IPv6 by the address
    s.connect()                                     # SYN (retransmitted), SYN-ACK, ACK
    s.expect()                                      # the next complete reply (lines)
    s.send(b"EHLO x\\r\\n")                          # at the next stream offset
    s.send(b"...", off=5, flags="PA", badsum=True, frag=8, urg=1, ack_delta=100000, ...)
    s.rst(delta=0) / s.fin(delta=0) / s.syn(isn) / s.pure_ack(...)
    s.sleep(12)
    s.finish()                                      # FIN or a RST at the exact point

Offsets are relative to the stream start (offset 0 = ISN + 1). Every loop is bounded in count
and in time. Traffic goes only to lab addresses (198.18.0.0/15, 2001:db8::/32): anything else
is refused.
"""

import ipaddress
import os
import random
import re
import socket
import struct
import sys
import threading
import time

os.environ.setdefault("SCAPY_USE_LIBPCAP", "no")
from scapy.config import conf  # noqa: E402

conf.verb = 0
conf.ipv6_enabled = True
from scapy.layers.inet import IP, TCP, fragment  # noqa: E402
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402

M32 = 0xFFFFFFFF
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
LAB_NETS = [ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:db8::/32")]


def lab_only(addr):
    a = ipaddress.ip_address(addr)
    if not any(a in n for n in LAB_NETS):
        raise SystemExit("rawtcp: refusing a non-lab address %s" % addr)
    return str(a)


def seq_lt(a, b):
    return ((a - b) & M32) > 0x7FFFFFFF


def seq_diff(a, b):
    """a - b as a signed 32-bit difference."""
    d = (a - b) & M32
    return d - (1 << 32) if d > 0x7FFFFFFF else d


def show(b, limit=70):
    r = repr(bytes(b))[2:-1]
    return r if len(r) <= limit else r[:limit] + "...(%d bytes)" % len(b)


class Hub:
    """One AF_PACKET socket on the client veth: sends frames, dispatches received TCP segments
    to the session owning the destination port."""

    def __init__(self, iface="cl0", gw_mac=None, log=None):
        self.iface = iface
        self.mac = open("/sys/class/net/%s/address" % iface).read().strip()
        if not gw_mac:
            raise SystemExit("rawtcp: --gw-mac is required")
        self.gw_mac = gw_mac
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((iface, 0))
        self.sock.settimeout(0.2)
        self.sessions = {}
        self.lock = threading.Lock()
        self.stop = False
        self.ignore_payloads = set()  # spoofed segments that come back to us
        self.thread = threading.Thread(target=self._rx, daemon=True)
        self.thread.start()

    def register(self, sess):
        with self.lock:
            self.sessions[sess.sport] = sess

    def unregister(self, sess):
        with self.lock:
            if self.sessions.get(sess.sport) is sess:
                del self.sessions[sess.sport]

    def send_l3(self, pkt):
        frame = Ether(src=self.mac, dst=self.gw_mac) / pkt
        self.sock.send(bytes(frame))

    def send_raw_l3(self, l3bytes, v6):
        eth = bytes.fromhex(self.gw_mac.replace(":", "")) + bytes.fromhex(self.mac.replace(":", ""))
        eth += struct.pack("!H", 0x86DD if v6 else 0x0800)
        self.sock.send(eth + l3bytes)

    def _rx(self):
        while not self.stop:
            try:
                data, addr = self.sock.recvfrom(262144)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[2] == PACKET_OUTGOING or len(data) < 34:
                continue
            et = struct.unpack("!H", data[12:14])[0]
            if et == 0x0800:
                ihl = (data[14] & 0x0F) * 4
                if data[23] != 6 or (struct.unpack("!H", data[20:22])[0] & 0x3FFF):
                    continue
                t = 14 + ihl
            elif et == 0x86DD:
                if len(data) < 74 or data[20] != 6:
                    continue
                t = 54
            else:
                continue
            if len(data) < t + 20:
                continue
            dport = struct.unpack("!H", data[t + 2:t + 4])[0]
            with self.lock:
                sess = self.sessions.get(dport)
            if sess is None:
                continue
            try:
                pkt = Ether(data)
            except Exception:  # noqa: BLE001 - a frame scapy cannot parse is not ours
                continue
            sess._on_packet(pkt)

    def close(self):
        self.stop = True
        self.thread.join(1)
        self.sock.close()


class Session:
    """One hand-driven TCP connection to DST:DPORT from the client's own address."""

    def __init__(self, hub, dst, sport, dport=25, src=None, isn=None, mss=1460, window=65535,
                 name="", out=None, rto=1.0, max_retrans=4, seg_size=1400):
        self.hub = hub
        self.dst = lab_only(dst)
        self.v6 = ":" in self.dst
        if src is None:
            src = "2001:db8:1::1" if self.v6 else "198.18.1.1"
        self.src = lab_only(src)
        self.sport = sport
        self.dport = dport
        self.isn = random.getrandbits(32) if isn is None else isn & M32
        self.mss = mss
        self.window = window          # advertised in every segment we send
        self.name = name
        self.out = out or sys.stdout
        self.rto = rto
        self.max_retrans = max_retrans
        self.seg_size = seg_size
        self.t0 = time.monotonic()
        self.cond = threading.Condition()
        self.buf = bytearray()        # the client's stream as last written (for retransmissions)
        self.snd_off = 0              # next new offset
        self.rcv_isn = None
        self.rcv_nxt = None
        self.srv_ack = None           # highest ack from the server (absolute)
        self.srv_win = 0
        self.rx = bytearray()         # server's stream, in order
        self.rx_pos = 0               # consumed by expect()
        self.ooo = {}                 # server segments beyond rcv_nxt
        self.fin_rcvd = False
        self.rst_rcvd = False
        self.established = False
        self.synacks = 0
        self.ignore_synacks = 0
        self.auto_ack = True
        self.closed = False
        self.replies = []             # every complete reply, as a list of lines
        self.transcript = []
        self.events = []              # ("rst"|"fin"|"synack"|"ack", time)
        self._scanned = 0
        self._scan_cur = []
        hub.register(self)

    # --- logging ---------------------------------------------------------------------
    def log(self, msg):
        line = "%7.3f %s%s" % (time.monotonic() - self.t0, (self.name + ": ") if self.name else "", msg)
        self.transcript.append(line)
        if self.out:
            print(line, file=self.out, flush=True)

    # --- receiving --------------------------------------------------------------------
    def _on_packet(self, pkt):
        l3 = pkt[IPv6] if self.v6 else pkt.getlayer(IP)
        if l3 is None or l3.src != self.dst or l3.dst != self.src:
            return
        t = pkt[TCP]
        if t.sport != self.dport:
            return
        payload = bytes(t.payload)
        if payload and payload in self.hub.ignore_payloads:
            return  # our own spoofed "server" segment, forwarded back to us
        f = int(t.flags)
        with self.cond:
            rel = (t.seq - self.rcv_isn - 1) & M32 if self.rcv_isn is not None else None
            self.log("S> flags=%s seq=%s ack=%s win=%d len=%d%s" % (
                t.sprintf("%flags%"), "+%d" % rel if rel is not None and rel < (1 << 31) else t.seq,
                "+%d" % seq_diff(t.ack, (self.isn + 1) & M32) if f & 0x10 else "-", t.window,
                len(payload), (" " + show(payload)) if payload else ""))
            if f & 0x04:  # RST
                self.rst_rcvd = True
                self.events.append(("rst", time.monotonic() - self.t0))
                self.cond.notify_all()
                return
            if f & 0x10:
                if self.srv_ack is None or seq_lt(self.srv_ack, t.ack):
                    self.srv_ack = t.ack
                self.srv_win = t.window
            if (f & 0x12) == 0x12:  # SYN-ACK
                self.synacks += 1
                self.events.append(("synack", time.monotonic() - self.t0))
                if self.ignore_synacks > 0:
                    self.ignore_synacks -= 1
                    self.log("   (SYN-ACK ignored, as if lost)")
                    return
                if self.rcv_isn is None:
                    self.rcv_isn = t.seq
                    self.rcv_nxt = (t.seq + 1) & M32
                    self.established = True
                self._ack()
                self.cond.notify_all()
                return
            if self.rcv_nxt is None:
                return
            end = (t.seq + len(payload)) & M32
            if payload:
                if not seq_lt(self.rcv_nxt, t.seq):  # seq <= rcv_nxt
                    skip = seq_diff(self.rcv_nxt, t.seq)
                    if skip < len(payload):
                        self._deliver(payload[skip:])
                elif len(self.ooo) < 256 and seq_diff(t.seq, self.rcv_nxt) < (1 << 20):
                    self.ooo[t.seq] = payload
                # drain the out-of-order store (bounded by its size)
                for _ in range(len(self.ooo)):
                    hit = None
                    for sq, pl in self.ooo.items():
                        if not seq_lt(self.rcv_nxt, sq):
                            hit = sq
                            break
                    if hit is None:
                        break
                    pl = self.ooo.pop(hit)
                    skip = seq_diff(self.rcv_nxt, hit)
                    if skip < len(pl):
                        self._deliver(pl[skip:])
            if f & 0x01 and end == self.rcv_nxt and not self.fin_rcvd:
                self.fin_rcvd = True
                self.rcv_nxt = (self.rcv_nxt + 1) & M32
                self.events.append(("fin", time.monotonic() - self.t0))
            if (payload or f & 0x01) and self.auto_ack:
                self._ack()
            elif not payload and not (f & 0x01):
                # a pure ACK: a challenge ACK if it acks nothing new and we did not ask for it
                self.events.append(("ack", time.monotonic() - self.t0))
            self.cond.notify_all()

    def _deliver(self, data):
        self.rx += data
        self.rcv_nxt = (self.rcv_nxt + len(data)) & M32
        # complete replies (a reply ends with a line whose 4th byte is not '-')
        for _ in range(10000):
            i = self.rx.find(b"\n", self._scanned)
            if i < 0:
                break
            line = bytes(self.rx[self._scanned:i]).rstrip(b"\r")
            self._scanned = i + 1
            self._scan_cur.append(line.decode("latin-1"))
            if line[3:4] != b"-":
                self.replies.append(self._scan_cur)
                self.log("S: " + " | ".join(self._scan_cur))
                self._scan_cur = []

    # --- sending -----------------------------------------------------------------------
    def _l3(self):
        if self.v6:
            return IPv6(src=self.src, dst=self.dst, hlim=64)
        return IP(src=self.src, dst=self.dst, ttl=64, id=random.getrandbits(16))

    def _emit(self, flags, seq, ack=None, payload=b"", window=None, urg=0, options=None,
              badsum=False, frag=None, note="", src=None, sport=None, dport=None, dst=None):
        l3 = self._l3()
        if src is not None:
            l3.src = lab_only(src)
        if dst is not None:
            l3.dst = lab_only(dst)
        if "A" in flags:
            ack = (self.rcv_nxt or 0) if ack is None else ack
        else:
            ack = 0
        tcp = TCP(sport=self.sport if sport is None else sport, dport=self.dport if dport is None else dport,
                  seq=seq & M32, ack=ack & M32, flags=flags,
                  window=self.window if window is None else window, urgptr=urg,
                  options=options or [])
        pkt = l3 / tcp
        if payload:
            pkt = pkt / Raw(bytes(payload))
        pkt = pkt.__class__(bytes(pkt))  # checksums computed
        if badsum:
            c = pkt[TCP].chksum
            bad = (c + 0x0101) & 0xFFFF
            if bad in (0, 0xFFFF):
                bad = (c + 0x0202) & 0xFFFF
            pkt[TCP].chksum = bad
            pkt = pkt.__class__(bytes(pkt))
        rel = seq_diff(seq & M32, (self.isn + 1) & M32)
        self.log("C> flags=%s seq=%+d ack=%s win=%d len=%d%s%s%s%s" % (
            flags, rel, ("+%d" % seq_diff(ack, self.rcv_isn + 1)) if "A" in flags and self.rcv_isn is not None else "-",
            tcp.window, len(payload), (" urg=%d" % urg) if urg else "", " BADSUM" if badsum else "",
            (" frag=%d" % frag) if frag else "", (" " + show(payload)) if payload else "") + note)
        if frag:
            if self.v6:
                p6 = IPv6(bytes(pkt))
                base = p6.copy()
                base.remove_payload()
                whole = base / IPv6ExtHdrFragment(id=random.getrandbits(32)) / p6.payload
                for fr in fragment6(whole, frag + 40 + 8):
                    self.hub.send_l3(fr)
            else:
                for fr in fragment(pkt, fragsize=frag):
                    self.hub.send_l3(fr)
        else:
            self.hub.send_l3(pkt)

    def _ack(self, window=None):
        self._emit("A", (self.isn + 1 + self.snd_off) & M32, window=window)

    def seq_of(self, off):
        return (self.isn + 1 + off) & M32

    def connect(self, timeout=8.0, syn_retries=5, syn_rto=1.0, syn_payload=b""):
        """SYN (retransmitted up to syn_retries times, every syn_rto s), SYN-ACK, ACK."""
        opts = [("MSS", self.mss)]
        deadline = time.monotonic() + timeout
        for i in range(syn_retries + 1):
            with self.cond:
                # a retransmitted SYN carries no data (as Linux's TFO client falls back)
                self._emit("S", self.isn, options=opts, payload=b"" if i else syn_payload,
                           note=" (SYN retransmission)" if i else "")
                end = min(deadline, time.monotonic() + syn_rto)
                while not self.established and not self.rst_rcvd:
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    self.cond.wait(left)
                if self.established:
                    return True
                if self.rst_rcvd or time.monotonic() >= deadline:
                    break
        self.log("handshake failed")
        return False

    def send(self, data, off=None, flags="PA", record=True, segment=True, **kw):
        """Send DATA at stream offset OFF (default: the next new offset). record: write it into
        the stream copy used for retransmissions. segment: cut at seg_size."""
        data = bytes(data)
        if off is None:
            off = self.snd_off
        with self.cond:
            if record:
                lo = max(off, 0)
                part = data[lo - off:]
                if lo > len(self.buf):
                    self.buf += b"\0" * (lo - len(self.buf))
                self.buf[lo:lo + len(part)] = part
            if off + len(data) > self.snd_off:
                self.snd_off = off + len(data)
            step = self.seg_size if segment else max(len(data), 1)
            if not data:
                self._emit(flags, self.seq_of(off), **kw)
            for i in range(0, len(data), step):
                self._emit(flags, self.seq_of(off + i), payload=data[i:i + step], **kw)

    def send_at(self, data, off, **kw):
        """A segment at OFF that does not move the next-new offset and is not recorded."""
        data = bytes(data)
        with self.cond:
            self._emit(kw.pop("flags", "PA"), self.seq_of(off), payload=data, **kw)

    def pure_ack(self, ack_delta=0, window=None, seq_delta=0, note=""):
        with self.cond:
            self._emit("A", self.seq_of(self.snd_off + seq_delta), ack=(self.rcv_nxt + ack_delta) & M32,
                       window=window, note=note)

    def rst(self, delta=0, badsum=False, with_ack=False, note=""):
        """A RST at the next new offset + DELTA."""
        with self.cond:
            self._emit("RA" if with_ack else "R", self.seq_of(self.snd_off + delta), badsum=badsum, note=note)

    def fin(self, delta=0, note=""):
        with self.cond:
            self._emit("FA", self.seq_of(self.snd_off + delta), note=note)

    def syn(self, isn, note=""):
        with self.cond:
            self._emit("S", isn, options=[("MSS", self.mss)], note=note)

    def spoof_server(self, payload, seq, note=" (spoofed: src = server)"):
        """A segment 'from the server' (src = server address, port 25) to us, sent into the
        gateway's client side: seq/ack in the server's space."""
        with self.cond:
            self.hub.ignore_payloads.add(bytes(payload))
            self._emit("PA", seq, ack=self.seq_of(self.snd_off), payload=payload, src=self.dst,
                       dst=self.src, sport=self.dport, dport=self.sport, note=note)

    def sleep(self, secs):
        self.log("   (sleep %.1fs)" % secs)
        time.sleep(secs)

    def _retransmit(self):
        if self.srv_ack is None:
            return
        una = seq_diff(self.srv_ack, (self.isn + 1) & M32)
        if 0 <= una < self.snd_off:
            part = bytes(self.buf[una:una + self.seg_size])
            self._emit("PA", self.seq_of(una), payload=part, note=" (retransmission)")

    def expect(self, timeout=8.0, retransmit=True):
        """The next complete reply (a list of lines), or None (timeout, RST, FIN). Unacked
        client data is retransmitted (bounded) while waiting."""
        deadline = time.monotonic() + timeout
        last_progress = time.monotonic()
        rto = self.rto
        n_retrans = 0
        with self.cond:
            while True:
                if self.rx_pos < len(self.replies):
                    r = self.replies[self.rx_pos]
                    self.rx_pos += 1
                    return r
                if self.rst_rcvd or self.fin_rcvd:
                    return None
                now = time.monotonic()
                if now >= deadline:
                    self.log("   (no reply within %.1fs)" % timeout)
                    return None
                if retransmit and now - last_progress >= rto and n_retrans < self.max_retrans:
                    if self.srv_ack is not None and seq_lt(self.srv_ack, self.seq_of(self.snd_off)):
                        self._retransmit()
                        n_retrans += 1
                        rto *= 2
                    last_progress = now
                self.cond.wait(min(0.1, deadline - now))

    def expect_code(self, timeout=8.0):
        r = self.expect(timeout)
        return r[-1][:3] if r else None

    def all_acked(self):
        return self.srv_ack is not None and not seq_lt(self.srv_ack, self.seq_of(self.snd_off))

    def wait_acked(self, timeout=3.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.all_acked() and not self.rst_rcvd and time.monotonic() < deadline:
                self.cond.wait(0.1)
            return self.all_acked()

    def finish(self, timeout=3.0):
        """End the connection: when the server closed, our FIN; otherwise a RST at the exact
        point the server acknowledged (and at our next offset), so no smtpd waits 60 s."""
        with self.cond:
            if self.closed:
                return
            self.closed = True
            # after a 221 the server's FIN follows: wait for it (bounded)
            deadline = time.monotonic() + 1.0
            while (self.replies and self.replies[-1][-1].startswith("221") and not self.fin_rcvd
                   and not self.rst_rcvd and time.monotonic() < deadline):
                self.cond.wait(0.1)
            if self.fin_rcvd and not self.rst_rcvd:
                self._emit("FA", self.seq_of(self.snd_off))
                self.snd_off += 1
            elif not self.rst_rcvd and self.established:
                if self.srv_ack is not None:
                    self._emit("R", self.srv_ack, note=" (cleanup at the acked point)")
                self._emit("R", self.seq_of(self.snd_off), note=" (cleanup)")
        time.sleep(0.2)
        self.hub.unregister(self)

    def summary(self):
        return {
            "name": self.name, "sport": self.sport, "dst": self.dst,
            "replies": self.replies, "rst_rcvd": self.rst_rcvd, "fin_rcvd": self.fin_rcvd,
            "synacks": self.synacks, "events": self.events,
        }
