#!/usr/bin/python3
"""SMTP sessions across a gateway failover (failover_test.sh; Debian's python3, stdlib only).

  run --host H --count N --interval S --half-file F --out O [--timeout T] [--size BYTES]
      N sessions, session i started at i * S seconds; when session N/2 starts, F is
      written. Kinds, by i % 5:
        0, 3  ehlo       EHLO, one mail, QUIT, without pauses
        1     helo       HELO (the gateway changes no length: zero delta), one mail, QUIT
        2     slow-data  EHLO, then the message in 10 pieces of whole lines 0.4 s apart
        4     slow-talk  HELO, then every command 1 s after the previous reply
      The gateway strips AUTH from the EHLO reply: an EHLO session whose reply has no AUTH
      line was inspected (and its server->client stream has a negative delta: mapped).
      O gets one line per session:
        INDEX KIND RESULT INSPECTED MSGID BODY_SHA256 T_START T_END DETAIL
      RESULT: ok, reset (connection reset, closed, or refused by a reply the client saw) or
      timeout (no answer within T: a stall the client did not see end). INSPECTED: stripped,
      auth (AUTH offered: not inspected) or - (HELO). Times are CLOCK_REALTIME seconds.
  probe --host H --kill-file K --out O [--interval S] [--max S]
      waits (bounded by --max) for K (one line: the kill time, seconds since the epoch),
      then every S seconds (default 0.1) starts a session: connect, EHLO, QUIT. The first one
      whose EHLO reply is 250 without AUTH (inspected) ends the probe; O gets
        FAILOVER_SECONDS ATTEMPTS
      the time from the kill to the end of that session. Exit 1 if none within --max.

  judge --sessions O --maildir D [--wait S]
      the verdict on a run's Maildir: waits (at most S seconds, default 30) until the mail
      of every "ok" session is stored, then prints key = value lines:
        stored      messages of the run found in D (any session's)
        corrupted   stored messages whose body differs from the one sent
        ok_intact   ok sessions whose mail is stored byte-identical
        ok_missing  ok sessions whose mail is not stored
      and one line "BAD MSGID WHAT" for each corrupted or missing message.

Every wait is bounded; every socket has a timeout.
"""
import argparse
import hashlib
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hold_sessions import body_for  # noqa: E402  (same bodies as the reload/restart tests)
from mailtool import body_of  # noqa: E402  (what follows the first blank line)

FROM = "sender@example.org"
TO = "user@example.org"
KINDS = ["ehlo", "helo", "slow-data", "ehlo", "slow-talk"]


class Refused(Exception):
    pass


class Conn:
    def __init__(self, host, timeout):
        self.sock = socket.create_connection((host, 25), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def reply(self):
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                raise EOFError("connection closed")
            lines.append(line.decode("latin-1").rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(lines[-1][:3]), lines

    def command(self, line, want):
        self.sock.sendall(line.encode("ascii") + b"\r\n")
        code, lines = self.reply()
        if code != want:
            raise Refused("%s -> %s" % (line.split(" ")[0], lines[-1]))
        return lines

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def wire_message(msgid, index, body):
    msg = "From: <%s>\nTo: <%s>\nSubject: failover session %d\nMessage-ID: <%s>\n\n%s" % (
        FROM, TO, index, msgid, body)
    return [("." + l if l.startswith(".") else l) + "\r\n" for l in msg.split("\n")[:-1]]


class Session(threading.Thread):
    def __init__(self, index, a):
        super().__init__(daemon=True)
        self.index = index
        self.a = a
        self.kind = KINDS[index % len(KINDS)]
        self.msgid = "failover-%d.%d@client.example.org" % (os.getpid(), index)
        self.body = body_for(index, a.size)
        self.result = "timeout"
        self.inspected = "-"
        self.t_start = 0.0
        self.t_end = 0.0
        self.detail = "-"

    def run(self):
        self.t_start = time.time()
        c = None
        try:
            c = Conn(self.a.host, self.a.timeout)
            self.talk(c)
            self.result = "ok"
        except (socket.timeout, TimeoutError):
            self.result = "timeout"
        except (ConnectionError, EOFError, Refused, OSError) as e:
            self.result = "reset"
            self.detail = repr(e).replace(" ", "_")[:120]
        finally:
            self.t_end = time.time()
            if c is not None:
                c.close()

    def talk(self, c):
        slow = self.kind == "slow-talk"
        code, _ = c.reply()
        if code != 220:
            raise Refused("greeting %d" % code)
        if self.kind in ("helo", "slow-talk"):
            c.command("HELO client.example.org", 250)
        else:
            lines = c.command("EHLO client.example.org", 250)
            self.inspected = "auth" if any(l[4:].upper().startswith("AUTH") for l in lines) else "stripped"
        for line, want in (("MAIL FROM:<%s>" % FROM, 250), ("RCPT TO:<%s>" % TO, 250), ("DATA", 354)):
            if slow:
                time.sleep(1)
            c.command(line, want)
        wire = wire_message(self.msgid, self.index, self.body)
        if self.kind == "slow-data":
            step = (len(wire) + 9) // 10
            for i in range(0, len(wire), step):
                c.sock.sendall("".join(wire[i:i + step]).encode("ascii"))
                time.sleep(0.4)
        else:
            c.sock.sendall("".join(wire).encode("ascii"))
        if slow:
            time.sleep(1)
        c.command(".", 250)
        c.command("QUIT", 221)


def cmd_run(a):
    sessions = [Session(i, a) for i in range(a.count)]
    t0 = time.monotonic()
    for i, s in enumerate(sessions):
        delay = t0 + i * a.interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        s.start()
        if i == a.count // 2:
            with open(a.half_file + ".tmp", "w") as f:
                f.write("%d\n" % i)
            os.rename(a.half_file + ".tmp", a.half_file)
    # A session has at most a connect, 8 replies and its pauses, each bounded by --timeout.
    deadline = time.monotonic() + 10 * a.timeout + 10
    for s in sessions:
        s.join(max(0.1, deadline - time.monotonic()))
    with open(a.out, "w") as f:
        for s in sessions:
            sha = hashlib.sha256(s.body.encode("ascii")).hexdigest()
            f.write("%d %s %s %s %s %s %.3f %.3f %s\n" % (s.index, s.kind, s.result, s.inspected, s.msgid,
                                                          sha, s.t_start, s.t_end, s.detail))
    return 0


def probe_once(a, done, results, lock):
    c = None
    try:
        c = Conn(a.host, 2)
        code, _ = c.reply()
        if code != 220:
            return
        lines = c.command("EHLO probe.example.org", 250)
        if any(l[4:].upper().startswith("AUTH") for l in lines):
            return
        c.command("QUIT", 221)
        with lock:
            results.append(time.time())
        done.set()
    except (OSError, EOFError, Refused):
        pass
    finally:
        if c is not None:
            c.close()


def cmd_probe(a):
    end = time.monotonic() + a.max
    while not os.path.exists(a.kill_file):
        if time.monotonic() > end:
            return 1
        time.sleep(0.01)
    time.sleep(0.01)
    with open(a.kill_file) as f:
        killed = float(f.read().split()[0])
    done = threading.Event()
    results = []
    lock = threading.Lock()
    attempts = 0
    while not done.is_set() and time.monotonic() < end:
        threading.Thread(target=probe_once, args=(a, done, results, lock), daemon=True).start()
        attempts += 1
        done.wait(a.interval)
    if not results:
        return 1
    with open(a.out, "w") as f:
        f.write("%.3f %d\n" % (min(results) - killed, attempts))
    return 0


def stored_messages(maildir):
    """Message-ID -> list of body SHA-256 of every stored message of a failover run."""
    found = {}
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        for name in os.listdir(d) if os.path.isdir(d) else []:
            with open(os.path.join(d, name), "rb") as f:
                data = f.read()
            head = data.split(b"\n\n", 1)[0]
            m = re.search(rb"(?im)^Message-ID:\s*<(failover-[^>]+)>", head)
            if m:
                found.setdefault(m.group(1).decode("ascii"), []).append(
                    hashlib.sha256(body_of(data)).hexdigest())
    return found


def cmd_judge(a):
    sent, ok = {}, []
    with open(a.sessions) as f:
        for line in f:
            fields = line.split()
            sent[fields[4]] = fields[5]
            if fields[2] == "ok":
                ok.append(fields[4])
    end = time.monotonic() + a.wait
    while True:
        found = stored_messages(a.maildir)
        if all(m in found for m in ok) or time.monotonic() > end:
            break
        time.sleep(0.2)
    bad = []
    stored = corrupted = 0
    for msgid, shas in found.items():
        for sha in shas:
            stored += 1
            if sha != sent.get(msgid):
                corrupted += 1
                bad.append("BAD %s corrupted:%s" % (msgid, sha))
    ok_intact = sum(1 for m in ok if m in found and all(s == sent[m] for s in found[m]))
    ok_missing = sum(1 for m in ok if m not in found)
    bad += ["BAD %s missing" % m for m in ok if m not in found]
    print("stored = %d\ncorrupted = %d\nok_intact = %d\nok_missing = %d" % (stored, corrupted, ok_intact,
                                                                            ok_missing))
    for b in bad:
        print(b)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--host", required=True)
    r.add_argument("--count", type=int, default=50)
    r.add_argument("--interval", type=float, default=0.25)
    r.add_argument("--half-file", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--timeout", type=float, default=30)
    r.add_argument("--size", type=int, default=20000)
    q = sub.add_parser("probe")
    q.add_argument("--host", required=True)
    q.add_argument("--kill-file", required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--interval", type=float, default=0.1)
    q.add_argument("--max", type=float, default=30)
    j = sub.add_parser("judge")
    j.add_argument("--sessions", required=True)
    j.add_argument("--maildir", required=True)
    j.add_argument("--wait", type=float, default=30)
    a = p.parse_args()
    return {"run": cmd_run, "probe": cmd_probe, "judge": cmd_judge}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
