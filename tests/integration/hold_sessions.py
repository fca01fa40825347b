#!/usr/bin/python3
"""SMTP sessions held open across an event (reload test; Debian's python3, stdlib only).

  hold --hosts H1[,H2...] --count N --ready-file R --go-file G --out O
       [--timeout S] [--size BYTES]
      N sessions at once (host i % len(hosts)), each: connect, read the greeting,
      EHLO. When all N are that far, R is written (one line: N). Each session then
      waits for the file G to exist, sends EHLO again (its reply code shows which
      profile the gateway still applies to it: the one it started with), then one
      mail (MAIL, RCPT, DATA with a body of its own) and QUIT.
      O gets one line per session:
        INDEX HOST RESULT MSGID BODY_SHA256 EHLO2_CODE BANNER
      RESULT is "ok" or "error:WHAT". Exit status: 0 every session ok, 1 not,
      2 not every session got as far as EHLO (R is not written then).
  banner --host H [--timeout S]
      connect, print the greeting's first line, QUIT.

Every wait is bounded by --timeout (default 60 s); the go file is polled every
50 ms.
"""
import argparse
import hashlib
import os
import random
import smtplib
import sys
import threading
import time

FROM = "sender@example.org"
TO = "user@example.org"


def body_for(index, size):
    rng = random.Random(1000 + index)
    lines = []
    total = 0
    i = 0
    while total < size:
        if i % 11 == 5:
            line = "." * (1 + i % 3) + " dot-stuffing line %d" % i
        else:
            n = rng.randint(0, 90)
            line = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 ,;:-") for _ in range(n))
        lines.append(line)
        total += len(line) + 1
        i += 1
    return "\n".join(lines) + "\n"


class Session(threading.Thread):
    def __init__(self, index, host, args, started, go):
        super().__init__(daemon=True)
        self.index = index
        self.host = host
        self.args = args
        self.started = started
        self.go = go
        self.result = "error:not started"
        self.banner = ""
        self.ehlo2 = 0
        self.msgid = "reload-%d.%d@client.example.org" % (os.getpid(), index)
        self.body = body_for(index, args.size)
        self.reached_ehlo = False

    def run(self):
        s = None
        try:
            s = smtplib.SMTP(timeout=self.args.timeout)
            code, msg = s.connect(self.host, 25)
            self.banner = "%d %s" % (code, msg.decode("ascii", "replace").split("\n")[0])
            if code != 220:
                raise RuntimeError("greeting %d" % code)
            code, _ = s.ehlo("client.example.org")
            if code != 250:
                raise RuntimeError("EHLO %d" % code)
            self.reached_ehlo = True
            self.started.release()
            if not self.go.wait(self.args.timeout):
                raise RuntimeError("no go within %ss" % self.args.timeout)
            # The gateway keeps the profile the connection started with: EHLO still passes.
            code, _ = s.ehlo("client.example.org")
            self.ehlo2 = code
            if code != 250:
                raise RuntimeError("second EHLO %d" % code)
            msg = ("From: <%s>\nTo: <%s>\nSubject: reload session %d\nMessage-ID: <%s>\n\n%s"
                   % (FROM, TO, self.index, self.msgid, self.body))
            # A str: smtplib turns each LF into CRLF (bytes would go out as they are).
            refused = s.sendmail(FROM, [TO], msg)
            if refused:
                raise RuntimeError("refused %r" % refused)
            s.quit()
            s = None
            self.result = "ok"
        except Exception as e:  # noqa: BLE001 - every failure is a result line
            self.result = "error:" + ("%s: %s" % (type(e).__name__, e)).replace(" ", "_")[:200]
        finally:
            if not self.reached_ehlo:
                self.started.release()
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass


def cmd_hold(a):
    hosts = a.hosts.split(",")
    started = threading.Semaphore(0)
    go = threading.Event()
    sessions = [Session(i, hosts[i % len(hosts)], a, started, go) for i in range(a.count)]
    for s in sessions:
        s.start()
    deadline = time.monotonic() + a.timeout
    for _ in sessions:
        if not started.acquire(timeout=max(0.1, deadline - time.monotonic())):
            break
    all_there = all(s.reached_ehlo for s in sessions)
    if all_there:
        with open(a.ready_file + ".tmp", "w") as f:
            f.write("%d\n" % len(sessions))
        os.rename(a.ready_file + ".tmp", a.ready_file)
        while not os.path.exists(a.go_file) and time.monotonic() < deadline + a.timeout:
            time.sleep(0.05)
    go.set()
    for s in sessions:
        s.join(a.timeout)
    with open(a.out, "w") as f:
        for s in sessions:
            sha = hashlib.sha256(s.body.encode("ascii")).hexdigest()
            f.write("%d %s %s %s %s %d %s\n" % (s.index, s.host, s.result, s.msgid, sha, s.ehlo2,
                                               s.banner))
    if not all_there:
        return 2
    return 0 if all(s.result == "ok" for s in sessions) else 1


def cmd_banner(a):
    s = smtplib.SMTP(timeout=a.timeout)
    code, msg = s.connect(a.host, 25)
    print("%d %s" % (code, msg.decode("ascii", "replace").split("\n")[0]))
    try:
        s.quit()
    except smtplib.SMTPException:
        s.close()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hold")
    h.add_argument("--hosts", required=True)
    h.add_argument("--count", type=int, default=50)
    h.add_argument("--ready-file", required=True)
    h.add_argument("--go-file", required=True)
    h.add_argument("--out", required=True)
    h.add_argument("--timeout", type=float, default=60)
    h.add_argument("--size", type=int, default=20000)
    b = sub.add_parser("banner")
    b.add_argument("--host", required=True)
    b.add_argument("--timeout", type=float, default=60)
    a = p.parse_args()
    return cmd_hold(a) if a.cmd == "hold" else cmd_banner(a)


if __name__ == "__main__":
    sys.exit(main())
