#!/usr/bin/python3
"""SMTP load tools for bench/run (standard library only).

  smtp_load.py sink    --addr A [--port 25] --seconds T
      An SMTP server that accepts every message and throws it away, reading the DATA body in
      1 MiB receives (Postfix's smtp-sink reads in small pieces and tops out near 200 MB/s on
      this machine: too slow to measure bulk throughput). Exits after T seconds.

  smtp_load.py bulk    --addr A [--port 25] --size BYTES --seconds T --max-messages N
      One session; sends messages of BYTES body (78-octet text lines) one after another until
      T seconds or N messages, whichever comes first. Prints JSON: body bytes, the time spent
      between the 354 reply and the 250 after the final dot (summed), MB/s of body.

  smtp_load.py latency --addr A [--port 25] --count N --seconds T [--warmup W]
      One session (TCP_NODELAY): EHLO, then W + N NOOP round trips, one at a time. Prints JSON
      with p50/p90/p99/mean of the N measured round trips, in microseconds.

Every loop is bounded in count and time; every socket has a timeout.
"""
import argparse
import base64
import json
import random
import socket
import sys
import threading
import time

IO_TIMEOUT = 20.0


class LineReader:
    """Reads CRLF-terminated lines from a socket, keeping what follows."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by peer")
            self.buf += chunk

    def reply(self):
        """A whole (possibly multi-line) reply: returns (code, lines)."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), lines


def expect(reader, code):
    got, lines = reader.reply()
    if got != code:
        raise RuntimeError("expected %d, got %r" % (code, b"".join(lines)))


# --- sink --------------------------------------------------------------------------------------

def serve_session(conn):
    conn.settimeout(IO_TIMEOUT)
    reader = LineReader(conn)
    data = memoryview(bytearray(1 << 20))
    try:
        conn.sendall(b"220 bulk-sink.example.org ESMTP\r\n")
        while True:
            line = reader.line()
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                conn.sendall(b"250-bulk-sink.example.org\r\n250-8BITMIME\r\n250 SIZE 0\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                # The body: what the reader already holds, then large receives. The client waits
                # for our 250 before it sends anything else, so the end of data is the end of
                # what arrived: only the last five octets need looking at.
                tail = bytes(reader.buf)
                reader.buf.clear()
                while not (b"\r\n" + tail).endswith(b"\r\n.\r\n"):
                    n = conn.recv_into(data)
                    if n == 0:
                        return
                    tail = (tail + bytes(data[max(0, n - 5) : n]))[-5:]
                conn.sendall(b"250 2.0.0 Ok: discarded\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:  # MAIL RCPT RSET NOOP ...
                conn.sendall(b"250 2.0.0 Ok\r\n")
    except (OSError, ConnectionError):
        return
    finally:
        conn.close()


def cmd_sink(args):
    family = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.addr, args.port))
    srv.listen(128)
    srv.settimeout(0.5)
    deadline = time.monotonic() + args.seconds
    print("sink: listening on [%s]:%d" % (args.addr, args.port), file=sys.stderr, flush=True)
    while time.monotonic() < deadline:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve_session, args=(conn,), daemon=True).start()
    srv.close()


# --- clients -----------------------------------------------------------------------------------

def connect(args):
    sock = socket.create_connection((args.addr, args.port), timeout=IO_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = LineReader(sock)
    expect(reader, 220)
    sock.sendall(b"EHLO client.example.org\r\n")
    expect(reader, 250)
    return sock, reader


def make_body(size, seed=7):
    """About `size` octets of 76-character base64 lines with CRLF, then the final dot."""
    rnd = random.Random(seed)
    line_count = max(1, size // 78)
    raw = bytes(rnd.getrandbits(8) for _ in range(57 * 64))
    block = base64.encodebytes(raw).replace(b"\n", b"\r\n")  # 64 lines of 76 + CRLF
    reps = line_count // 64 + 1
    body = (block * reps)[: line_count * 78]
    head = b"Subject: bench bulk\r\nFrom: <bench@example.org>\r\nTo: <sink@example.org>\r\n\r\n"
    return head + body + b".\r\n", len(body)


def cmd_bulk(args):
    message, body_len = make_body(args.size)
    sock, reader = connect(args)
    messages = 0
    body_bytes = 0
    body_seconds = 0.0
    t_start = time.monotonic()
    deadline = t_start + args.seconds
    while messages < args.max_messages and time.monotonic() < deadline:
        sock.sendall(b"MAIL FROM:<bench@example.org>\r\n")
        expect(reader, 250)
        sock.sendall(b"RCPT TO:<sink@example.org>\r\n")
        expect(reader, 250)
        sock.sendall(b"DATA\r\n")
        expect(reader, 354)
        t0 = time.perf_counter()
        sock.sendall(message)
        expect(reader, 250)
        body_seconds += time.perf_counter() - t0
        body_bytes += body_len
        messages += 1
    sock.sendall(b"QUIT\r\n")
    try:
        reader.reply()
    except (OSError, ConnectionError):
        pass
    sock.close()
    print(json.dumps({
        "messages": messages,
        "message_body_bytes": body_len,
        "body_bytes": body_bytes,
        "body_seconds": round(body_seconds, 6),
        "elapsed_seconds": round(time.monotonic() - t_start, 6),
        "mb_per_s": round(body_bytes / body_seconds / 1e6, 3) if body_seconds > 0 else 0.0,
    }))


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def cmd_latency(args):
    sock, reader = connect(args)
    samples = []
    deadline = time.monotonic() + args.seconds
    for i in range(args.warmup + args.count):
        if time.monotonic() >= deadline:
            break
        t0 = time.perf_counter_ns()
        sock.sendall(b"NOOP\r\n")
        code, _ = reader.reply()
        t1 = time.perf_counter_ns()
        if code != 250:
            raise RuntimeError("NOOP answered %d" % code)
        if i >= args.warmup:
            samples.append((t1 - t0) / 1000.0)
    sock.sendall(b"QUIT\r\n")
    try:
        reader.reply()
    except (OSError, ConnectionError):
        pass
    sock.close()
    s = sorted(samples)
    print(json.dumps({
        "count": len(s),
        "p50_us": round(percentile(s, 50), 2),
        "p90_us": round(percentile(s, 90), 2),
        "p99_us": round(percentile(s, 99), 2),
        "mean_us": round(sum(s) / len(s), 2) if s else 0.0,
        "min_us": round(s[0], 2) if s else 0.0,
        "max_us": round(s[-1], 2) if s else 0.0,
    }))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("sink", "bulk", "latency"):
        p = sub.add_parser(name)
        p.add_argument("--addr", required=True)
        p.add_argument("--port", type=int, default=25)
        p.add_argument("--seconds", type=float, required=True)
        if name == "bulk":
            p.add_argument("--size", type=int, default=16 << 20)
            p.add_argument("--max-messages", type=int, default=100)
        if name == "latency":
            p.add_argument("--count", type=int, default=2000)
            p.add_argument("--warmup", type=int, default=50)
    args = ap.parse_args()
    {"sink": cmd_sink, "bulk": cmd_bulk, "latency": cmd_latency}[args.cmd](args)


if __name__ == "__main__":
    main()
