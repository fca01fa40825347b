#!/usr/bin/python3
"""Mail helpers for the integration tests (Debian's /usr/bin/python3, stdlib only).

  genbody --seed N --size BYTES OUT    deterministic ASCII body, LF line endings,
                                       lines <= 998 chars, with the dot-stuffing
                                       cases ('.', '..', '.x') and empty lines
  mkmsg --body F --msgid ID [--from A --to A --subject S] [--for-swaks] OUT
                                       headers + blank line + body (LF);
                                       --for-swaks drops the final LF because
                                       swaks always ends DATA with CRLF . CRLF
  send --host H [--port 25] --msg F --from A --to A [--helo NAME] [--ehlo]
                [--send-message] [--vrfy X [--expect-vrfy 'CODE TEXT']]
                                       submit with smtplib (HELO by default:
                                       pix-mailguard lets no EHLO through);
                                       --send-message: parse the message and
                                       use SMTP.send_message (EHLO implied);
                                       --vrfy: VRFY X first, its reply must be
                                       exactly CODE TEXT (one line);
                                       prints the elapsed seconds
  wait --maildir D --msgid ID [--timeout S]
                                       print the path of the delivered file
                                       holding Message-ID ID (bounded wait)
  wirelines MSG                        the message as DATA lines for dialogue.py:
                                       dot-stuffed, then the line '.'
  ehlostrip --strip AUTH,CHUNKING [--reply N] IN OUT
                                       IN: raw bytes a client received; OUT: the
                                       same with the EHLO keyword lines of reply
                                       N (default 1: the reply after the
                                       greeting) removed as the gateway's strip
                                       does: when the final line goes, the line
                                       before it becomes final ('250-' -> '250 ')
  bodysha FILE                         SHA-256 of what follows the first blank
                                       line (the body of a stored message)
  sha [--mangle-from] FILE             SHA-256 of the whole file (--mangle-from:
                                       of the file with "From " at a line start
                                       written ">From ", as send_message sends it)
"""
import argparse
import email
import email.policy
import hashlib
import os
import random
import re
import smtplib
import sys
import time

# Printable ASCII without "%" and backslash: swaks expands %TOKENS% and \n in DATA.
ALPHABET = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "%\\")


def genbody(seed, size):
    rng = random.Random(seed)
    out = []
    total = 0
    special = [".", "..", ".leading dot", "..two leading dots", "", " ", "\tTAB", "From not a header",
               "QUIT", "RSET", "MAIL FROM:<not@command.example.org>", "DATA"]
    i = 0
    while total < size:
        if i % 37 == 0:
            line = special[(i // 37) % len(special)]
        else:
            n = rng.choice((0, 1, 2, 10, 40, 72, 76, 78, 200, 500, 998)) if rng.random() < 0.3 \
                else rng.randint(0, 120)
            line = "".join(rng.choice(ALPHABET) for _ in range(n)) if n < 200 else \
                (rng.choice(ALPHABET) * 7 + "".join(rng.choice(ALPHABET) for _ in range(20))) * (n // 27) \
                + "x" * (n % 27)
            line = line.rstrip(" ") if rng.random() < 0.5 else line
        out.append(line)
        total += len(line) + 1
        i += 1
    return ("\n".join(out) + "\n").encode("ascii")


def body_of(data):
    """The part of a stored (LF) message after the first blank line."""
    k = data.find(b"\n\n")
    if k < 0:
        raise SystemExit("no blank line between headers and body")
    return data[k + 2:]


def cmd_genbody(a):
    data = genbody(a.seed, a.size)
    with open(a.out, "wb") as f:
        f.write(data)


def cmd_mkmsg(a):
    with open(a.body, "rb") as f:
        body = f.read()
    head = (f"From: {a.sender}\nTo: {a.to}\nSubject: {a.subject}\n"
            f"Message-ID: <{a.msgid}>\nDate: Thu, 01 Jan 2026 00:00:00 +0000\n\n")
    if a.for_swaks and body.endswith(b"\n"):
        body = body[:-1]
    with open(a.out, "wb") as f:
        f.write(head.encode("ascii") + body)


def check_vrfy(s, a):
    """--vrfy ARG: send VRFY ARG first; its reply must be exactly --expect-vrfy."""
    if a.vrfy is None:
        return
    code, resp = s.verify(a.vrfy)
    got = f"{code} {resp.decode('latin-1')}"
    if a.expect_vrfy is not None and got != a.expect_vrfy:
        raise SystemExit(f"VRFY {a.vrfy}: expected {a.expect_vrfy!r}, got {got!r}")
    print(f"VRFY {a.vrfy}: {got}", file=sys.stderr)


def cmd_send(a):
    with open(a.msg, "rb") as f:
        msg = f.read()
    if a.send_message:
        # policy.SMTP: CRLF on the wire and no ">From " mangling (compat32
        # would rewrite the body's "From ..." lines).
        m = email.message_from_bytes(msg, policy=email.policy.SMTP)
        t0 = time.monotonic()
        s = smtplib.SMTP(timeout=a.timeout)
        s.connect(a.host, a.port)
        code, resp = s.ehlo(a.helo)
        if code != 250:
            raise SystemExit(f"EHLO refused: {code} {resp!r}")
        check_vrfy(s, a)
        refused = s.send_message(m, from_addr=a.sender, to_addrs=[a.to])
        if refused:
            raise SystemExit(f"recipients refused: {refused}")
        s.quit()
        print(f"{time.monotonic() - t0:.3f}")
        return
    # smtplib dot-stuffs but converts line endings only for str messages:
    # hand it CRLF bytes.
    msg = msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    t0 = time.monotonic()
    s = smtplib.SMTP(timeout=a.timeout)
    s.connect(a.host, a.port)
    if a.ehlo:
        code, resp = s.ehlo(a.helo)
    else:
        code, resp = s.helo(a.helo)
    if code != 250:
        raise SystemExit(f"{'EHLO' if a.ehlo else 'HELO'} refused: {code} {resp!r}")
    check_vrfy(s, a)
    refused = s.sendmail(a.sender, [a.to], msg)
    if refused:
        raise SystemExit(f"recipients refused: {refused}")
    s.quit()
    print(f"{time.monotonic() - t0:.3f}")


def cmd_wait(a):
    needle = f"Message-ID: <{a.msgid}>".encode("ascii").lower()
    deadline = time.monotonic() + a.timeout
    newdir = os.path.join(a.maildir, "new")
    while time.monotonic() < deadline:
        try:
            names = os.listdir(newdir)
        except FileNotFoundError:
            names = []
        for n in names:
            p = os.path.join(newdir, n)
            with open(p, "rb") as f:
                head = f.read(8192)
            if needle in head.lower():
                print(p)
                return
        time.sleep(0.1)
    raise SystemExit(f"no message with Message-ID <{a.msgid}> in {newdir} after {a.timeout}s")


def cmd_wirelines(a):
    with open(a.msg, "rb") as f:
        data = f.read()
    text = data.decode("latin-1").replace("\r\n", "\n")
    if text.endswith("\n"):
        text = text[:-1]
    out = ["." + ln if ln.startswith(".") else ln for ln in text.split("\n")]
    out.append(".")
    sys.stdout.write("\n".join(out) + "\n")


def ehlo_strip(raw, keywords, reply_index=1):
    """Apply the gateway's EHLO keyword strip to the reply_index-th reply of raw."""
    lines = raw.splitlines(keepends=True)
    replies, cur = [], []
    for ln in lines:
        cur.append(ln)
        if len(ln) < 4 or ln[3:4] != b"-":
            replies.append(cur)
            cur = []
    if cur:
        replies.append(cur)
    if reply_index >= len(replies):
        raise SystemExit(f"ehlostrip: no reply {reply_index} (only {len(replies)})")
    reply = replies[reply_index]
    kept = [reply[0]]
    for ln in reply[1:]:
        word = ln[4:].split(b" ", 1)[0].split(b"=", 1)[0].rstrip(b"\r\n").upper()
        if word.decode("latin-1") not in keywords:
            kept.append(ln)
    last = kept[-1]
    if last[3:4] == b"-":
        kept[-1] = last[:3] + b" " + last[4:]
    replies[reply_index] = kept
    return b"".join(b"".join(r) for r in replies)


def cmd_ehlostrip(a):
    with open(a.input, "rb") as f:
        raw = f.read()
    keywords = {k.strip().upper() for k in a.strip.split(",") if k.strip()}
    with open(a.out, "wb") as f:
        f.write(ehlo_strip(raw, keywords, a.reply))


def cmd_bodysha(a):
    with open(a.file, "rb") as f:
        print(hashlib.sha256(body_of(f.read())).hexdigest())


def cmd_sha(a):
    with open(a.file, "rb") as f:
        data = f.read()
    if a.mangle_from:
        # What smtplib.SMTP.send_message sends: it flattens with a
        # BytesGenerator whose mangle_from_ is on (mbox-style ">From ").
        data = re.sub(rb"(?m)^From ", b">From ", data)
    print(hashlib.sha256(data).hexdigest())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("genbody")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--size", type=int, default=65536)
    g.add_argument("out")
    g.set_defaults(fn=cmd_genbody)
    m = sub.add_parser("mkmsg")
    m.add_argument("--body", required=True)
    m.add_argument("--msgid", required=True)
    m.add_argument("--from", dest="sender", default="sender@example.org")
    m.add_argument("--to", default="user@example.org")
    m.add_argument("--subject", default="smtpguard integration test")
    m.add_argument("--for-swaks", action="store_true")
    m.add_argument("out")
    m.set_defaults(fn=cmd_mkmsg)
    s = sub.add_parser("send")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, default=25)
    s.add_argument("--msg", required=True)
    s.add_argument("--from", dest="sender", default="sender@example.org")
    s.add_argument("--to", default="user@example.org")
    s.add_argument("--helo", default="client.example.org")
    s.add_argument("--ehlo", action="store_true")
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--send-message", action="store_true")
    s.add_argument("--vrfy")
    s.add_argument("--expect-vrfy")
    s.set_defaults(fn=cmd_send)
    wl = sub.add_parser("wirelines")
    wl.add_argument("msg")
    wl.set_defaults(fn=cmd_wirelines)
    es = sub.add_parser("ehlostrip")
    es.add_argument("--strip", required=True)
    es.add_argument("--reply", type=int, default=1)
    es.add_argument("input")
    es.add_argument("out")
    es.set_defaults(fn=cmd_ehlostrip)
    w = sub.add_parser("wait")
    w.add_argument("--maildir", required=True)
    w.add_argument("--msgid", required=True)
    w.add_argument("--timeout", type=float, default=30)
    w.set_defaults(fn=cmd_wait)
    b = sub.add_parser("bodysha")
    b.add_argument("file")
    b.set_defaults(fn=cmd_bodysha)
    h = sub.add_parser("sha")
    h.add_argument("--mangle-from", action="store_true")
    h.add_argument("file")
    h.set_defaults(fn=cmd_sha)
    a = p.parse_args()
    try:
        a.fn(a)
    except (OSError, smtplib.SMTPException) as e:
        print(f"mailtool {a.cmd}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
