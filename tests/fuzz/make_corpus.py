#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets: tests/fuzz/corpus/<target>/<name>.

Seeds are small and readable (text with a few framing bytes): the dialogues of every profile
from tests/integration/golden/*.txt, hand-written dialogues (a mail with MIME parts, pipelining,
BDAT, AUTH, STARTTLS and its injection, blocked verbs, overlong lines, partial lines, the
checks), SMTP smuggling sequences, MIME messages, MAIL/RCPT lines, glob patterns, packet captures
synthesised from the dialogues (raw IPv4/IPv6 packets and harness-built segments), and
configuration files. The byte layouts are in tests/fuzz/README.md. Deterministic: run it again
after changing it and commit the result.

    python3 tests/fuzz/make_corpus.py
"""
import os
import re
import shutil
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fuzz" / "corpus"

# fuzz_support.hpp: the profile selector.
PROFILES = ["modern", "pix-mailguard", "pix-legacy", "asa-default",
            "fuzz-actions", "fuzz-checks", "fuzz-strip", "fuzz-answer"]


def profile_index(name):
    return PROFILES.index(name)


# ---- dialogues -------------------------------------------------------------------------------

def C(text):
    return ("C", text.encode("latin-1") if isinstance(text, str) else text)


def S(text):
    return ("S", text.encode("latin-1") if isinstance(text, str) else text)


def force(d):
    return ("F", d)


def ack(d, value):
    return ("A", d, value)


def tick(ms):
    return ("T", ms)


def golden(path):
    """The dialogue of an integration golden file: C:/S: lines, a reply's lines in one record."""
    steps = []
    continued = False  # the last server line was not its reply's last
    for line in path.read_text().splitlines():
        if len(line) < 3 or line[1] != ":":
            continue
        d, text = line[0], line[3:] + "\r\n"
        if d == "S" and continued and steps and steps[-1][0] == "S":
            steps[-1] = ("S", steps[-1][1] + text.encode("latin-1"))
        else:
            steps.append((d, text.encode("latin-1")))
        continued = d == "S" and text[3:4] == "-"
    return steps


GREETING = S("220 mx.example.org ESMTP Postfix\r\n")
EHLO = C("EHLO client.example.net\r\n")
EHLO_REPLY = S("250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n"
               "250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n"
               "250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n")

MULTIPART = (
    "From: a@example.org\r\n"
    "To: b@example.org\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed;\r\n"
    "\tboundary=\"outer\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=inner\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "hello\r\n"
    "--inner\r\n"
    "Content-Type: text/html\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "<p>hello</p>\r\n"
    "--inner--\r\n"
    "--outer\r\n"
    "Content-Type: application/octet-stream; name=\"report.exe\"\r\n"
    "Content-Disposition: attachment;\r\n"
    " filename=\"report.exe\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
    "--outer\r\n"
    "Content-Type: application/pdf\r\n"
    "Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"
    "\r\n"
    "%PDF-1.4\r\n"
    "--outer\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Subject: forwarded\r\n"
    "To: x@example.org\r\n"
    "Content-Type: application/zip; name=inner.zip\r\n"
    "\r\n"
    "PK\r\n"
    "--outer--\r\n"
    "epilogue\r\n"
)

SIMPLE_MESSAGE = "Subject: hi\r\nTo: b@example.org\r\n\r\nhello\r\n"

# SMTP smuggling (CVE-2023-51764/51765/51766): end-of-data look-alikes inside a body.
SMUGGLING = {
    "lf-dot-lf": "\n.\n",
    "lf-dot-crlf": "\n.\r\n",
    "cr-dot-cr": "\r.\r",
    "crlf-dot-lf": "\r\n.\n",
    "crlf-dot-cr": "\r\n.\r",
    "cr-dot-crlf": "\r.\r\n",
    "nul-before-dot": "\r\n\0.\r\n",
    "nul-after-dot": "\r\n.\0\r\n",
}


def transaction(body, rcpts=("b@example.org",), sender="a@example.net", size=None):
    mail = "MAIL FROM:<%s>" % sender + (" SIZE=%d" % size if size else "") + "\r\n"
    steps = [GREETING, EHLO, EHLO_REPLY, C(mail), S("250 2.1.0 Ok\r\n")]
    for r in rcpts:
        steps += [C("RCPT TO:<%s>\r\n" % r), S("250 2.1.5 Ok\r\n")]
    steps += [C("DATA\r\n"), S("354 End data with <CR><LF>.<CR><LF>\r\n"), C(body),
              S("250 2.0.0 Ok: queued as 4F2A1\r\n"), C("QUIT\r\n"), S("221 2.0.0 Bye\r\n")]
    return steps


DIALOGUES = {
    "mail-multipart": transaction(MULTIPART + ".\r\n"),
    "mail-simple": transaction(SIMPLE_MESSAGE + ".\r\n", size=len(SIMPLE_MESSAGE)),
    "pipelining": [
        GREETING, EHLO, EHLO_REPLY,
        C("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n"
          "DATA\r\n"),
        S("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <c@example.org>: unknown\r\n"
          "354 go ahead\r\n"),
        C(SIMPLE_MESSAGE + ".\r\nQUIT\r\n"), S("250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"),
    ],
    "bdat": [
        GREETING, EHLO, EHLO_REPLY, C("MAIL FROM:<a@example.net> BODY=BINARYMIME\r\n"),
        S("250 Ok\r\n"), C("RCPT TO:<b@example.org>\r\n"), S("250 Ok\r\n"),
        C("BDAT 20\r\nSubject: x\r\n\r\n.\r\nab"), S("250 2.0.0 20 octets\r\n"),
        C("BDAT 7 LAST\r\ncd\r\n.\r\n"), S("250 2.0.0 queued\r\n"),
        C("BDAT 0 LAST\r\n"), S("503 5.5.1 no transaction\r\n"),
    ],
    "auth-login": [
        GREETING, EHLO, EHLO_REPLY, C("AUTH LOGIN\r\n"), S("334 VXNlcm5hbWU6\r\n"),
        C("dXNlcg==\r\n"), S("334 UGFzc3dvcmQ6\r\n"), C("cGFzcw==\r\n"),
        S("235 2.7.0 Authentication successful\r\n"), C("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
        S("503 5.5.1 already authenticated\r\n"),
    ],
    "starttls": [
        GREETING, EHLO, EHLO_REPLY, C("STARTTLS\r\n"), S("220 2.0.0 Ready to start TLS\r\n"),
        C(b"\x16\x03\x01\x00\x2f\x01\x00\x00\x2b\x03\x03" + bytes(range(32))),
        S(b"\x16\x03\x03\x00\x10" + bytes(16)),
    ],
    "starttls-injection": [
        GREETING, EHLO, EHLO_REPLY, C("STARTTLS\r\nRSET\r\n"),
        S("220 2.0.0 Ready to start TLS\r\n"), C(b"\x16\x03\x01\x00\x05hello"),
    ],
    "starttls-server-injection": [
        GREETING, EHLO, EHLO_REPLY, C("STARTTLS\r\n"),
        S("220 2.0.0 Ready to start TLS\r\n250 injected\r\n"), C("EHLO again\r\n"),
    ],
    "starttls-refused": [
        GREETING, C("EHLO x\r\n"), S("250-mx\r\n250 STARTTLS\r\n"), C("STARTTLS\r\n"),
        S("454 4.7.0 TLS not available\r\n"), C("QUIT\r\n"), S("221 Bye\r\n"),
    ],
    "blocked-verbs": [
        GREETING, C("HELO client\r\n"), S("250 mx\r\n"), C("VRFY root\r\n"),
        S("252 2.0.0 root\r\n"), C("EXPN staff\r\n"), S("250 staff\r\n"), C("HELP\r\n"),
        S("214 see RFC 5321\r\n"), C("NOOP\r\nNOOP\r\nNOOP\r\n"),
        S("250 Ok\r\n250 Ok\r\n250 Ok\r\n"), C("ETRN example.org\r\n"), S("250 queuing\r\n"),
        C("XYZZY plugh\r\n"), S("500 5.5.2 unknown\r\n"), C("TURN\r\n"), S("502 no\r\n"),
    ],
    "xlink2state": [GREETING, C("X-LINK2STATE FIRST CHUNK=x\r\n"), S("500 no\r\n")],
    "overlong": [
        GREETING, C("HELO " + "a" * 600 + "\r\n"), S("250 " + "b" * 600 + "\r\n"),
        C("NOOP " + "c" * 1100 + "\r\n"), S("250 Ok\r\n"),
    ],
    "banner-multiline": [
        S("220-mx.example.org ESMTP\r\n220-second line\r\n220 last\r\n"), C("QUIT\r\n"),
        S("221 Bye\r\n"),
    ],
    "ehlo-strip-last": [
        GREETING, EHLO, S("250-mx.example.org\r\n250-PIPELINING\r\n250-X-EXPS GSSAPI\r\n"),
        S("250-CHUNKING\r\n250 AUTH PLAIN\r\n"), C("QUIT\r\n"), S("221 Bye\r\n"),
    ],
    "ehlo-unknown-keywords": [
        GREETING, EHLO,
        S("250-mx\r\n250-XCLIENT NAME\r\n250-TURN\r\n250-XEXCH50\r\n250-X-LINK2STATE\r\n"
          "250 ATRN\r\n"),
    ],
    "partial-lines": [
        GREETING, C("HEL"), force("C"), C("O x\r\n"), S("25"), force("S"), S("0 ok\r\n"),
        C("VRF"), C("Y a\r\n"), S("252 a\r\n"), C("EXP"), tick(10), C("N b\r\n"),
    ],
    "acks": [
        S("220 mx\r\n"), ack("S", 0x7fff), C("EHLO x\r\n"), ack("C", 0x3fff),
        S("250-mx\r\n250-AUTH PLAIN\r\n250 CHUNKING\r\n"), ack("S", 0x7fff),
        C("VRFY a\r\nNOOP\r\n"), ack("C", 0x7fff), S("250 Ok\r\n"), ack("S", 0x7fff),
        ack("S", 0x8010),
    ],
    "rate-limit": [
        GREETING, C("NOOP\r\n"), C("NOOP\r\n"), C("NOOP\r\n"), tick(1500), C("NOOP\r\n"),
        S("250 Ok\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n"),
    ],
    "checks-addresses": [
        GREETING, EHLO, EHLO_REPLY,
        C("MAIL FROM:<a-very-long-sender-address-indeed@example.net> SIZE=99999\r\n"),
        S("250 Ok\r\n"), C("MAIL FROM:<spammer@blocked.example>\r\n"), S("503 nested\r\n"),
        C("RCPT TO:<x|y@example.org>\r\n"), S("250 Ok\r\n"), C("RCPT TO:<c@elsewhere.example>\r\n"),
        S("550 5.1.1 unknown\r\n"), C("RCPT TO:<d@sub.example.org>\r\n"),
        S("550 5.1.1 unknown\r\n"), C("RCPT TO:<e@example.org>\r\n"), S("250 Ok\r\n"),
        C("RCPT TO:<f@example.org>\r\n"), S("250 Ok\r\n"),
    ],
    "checks-message": transaction(
        "To: a@example.org\r\nTo: b@example.org\r\nTo: c@example.org\r\n"
        "Subject: " + "s" * 250 + "\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: application/x-msdownload;\r\n name=\"a-rather-long-file-name.scr\"\r\n"
        "Content-Transfer-Encoding: uuencode\r\n\r\n" + "x" * 130 + "\r\n--b--\r\n.\r\n"),
    "reply-long": [GREETING, C("HELP\r\n"), S("214-" + "h" * 100 + "\r\n214 end\r\n")],
    "unsolicited-and-malformed": [
        S("220 mx\r\n"), S("250 nobody asked\r\n"), S("garbage line\r\n"), C("NOOP\r\n"),
        S("25\r\n"), C("DATA\r\n"), S("554 no valid recipients\r\n"), C("RSET\r\n"),
    ],
    "data-after-quit": [GREETING, C("QUIT\r\nMAIL FROM:<a@b>\r\n"), S("221 Bye\r\n")],
    "answered-pipeline": [
        GREETING, C("EHLO x\r\nVRFY a\r\nNOOP\r\nVRFY b\r\n"),
        S("250 mx\r\n"), S("250 Ok\r\n"), C("QUIT\r\n"), S("221 Bye\r\n"),
    ],
}
for name, seq in SMUGGLING.items():
    DIALOGUES["smuggling-" + name] = transaction(
        SIMPLE_MESSAGE + "a" + seq + "MAIL FROM:<evil@example.net>\r\nb\r\n.\r\n")

# Which profiles each dialogue is seeded with for fuzz_split (all others: one, round-robin).
ALL_PROFILES = {"mail-multipart", "blocked-verbs", "partial-lines", "ehlo-strip-last"}


def encode_dialogue(steps):
    out = bytearray()
    for s in steps:
        if s[0] in ("C", "S"):
            data = s[1]
            while True:  # a record holds at most 65535 bytes
                chunk, data = data[:65535], data[65535:]
                out += s[0].encode() + struct.pack(">H", len(chunk)) + chunk
                if not data:
                    break
        elif s[0] == "F":
            out += b"F" + s[1].encode()
        elif s[0] == "A":
            out += b"A" + s[1].encode() + struct.pack(">H", s[2])
        elif s[0] == "T":
            out += b"T" + struct.pack(">H", s[1])
    return bytes(out)


# ---- packets ---------------------------------------------------------------------------------

CLIENT_ISN = 0xffffffef  # fuzz_pipeline.cpp: the harness's handshake
SERVER_ISN = 999
V4 = (bytes([198, 18, 1, 1]), bytes([198, 18, 2, 1]))
V6 = (bytes.fromhex("20010db8000100000000000000000001"),
      bytes.fromhex("20010db8000200000000000000000001"))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def tcp_packet(v6, from_client, seq, ack, flags, payload):
    src, dst = (V6 if v6 else V4) if from_client else tuple(reversed(V6 if v6 else V4))
    sport, dport = (40000, 25) if from_client else (25, 40000)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xffffffff, ack & 0xffffffff, 5 << 4,
                      flags, 65535, 0, 0) + payload
    if v6:
        pseudo = src + dst + struct.pack("!IxxxB", len(tcp), 6)
    else:
        pseudo = src + dst + struct.pack("!xBH", 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    if v6:
        return struct.pack("!IHBB", 6 << 28, len(tcp), 6, 64) + src + dst + tcp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + tcp


ACK, PSH, FIN = 0x10, 0x08, 0x01


def packets(steps, v6, raw, timestamps=False, segment=1460):
    """The dialogue as the records of fuzz_pipeline: data in segments of at most `segment`
    bytes, each acknowledged by the other side, a FIN from both at the end and a timer tick."""
    nxt = {"C": CLIENT_ISN + 1, "S": SERVER_ISN + 1}
    other = {"C": "S", "S": "C"}
    out = bytearray()

    def send(d, flags, payload):
        if raw:
            p = tcp_packet(v6, d == "C", nxt[d], nxt[other[d]], flags, payload)
            out.extend(b"P" + struct.pack(">H", len(p)) + p)
        else:
            out.extend(d.encode() + bytes([flags]) + struct.pack(">hhB", 0, 0, 1 if timestamps else 0)
                       + struct.pack(">H", len(payload)) + payload)
        nxt[d] += len(payload)

    for s in steps:
        if s[0] == "T":
            out.extend(b"T" + struct.pack(">H", s[1]))
        if s[0] not in ("C", "S"):
            continue
        data = s[1]
        while data:
            piece, data = data[:segment], data[segment:]
            send(s[0], ACK | PSH, piece)
        send(other[s[0]], ACK, b"")
    send("C", ACK | FIN, b"")
    nxt["C"] += 1
    send("S", ACK | FIN, b"")
    nxt["S"] += 1
    send("C", ACK, b"")
    out.extend(b"T" + struct.pack(">H", 3000))
    return bytes(out)


# ---- messages, addresses, patterns -----------------------------------------------------------

MESSAGES = {
    "multipart": MULTIPART,
    "simple": SIMPLE_MESSAGE,
    "folded-headers": "Subject: a folded\r\n\tsubject\r\nTo: b@example.org,\r\n c@example.org\r\n"
                      "to : d@example.org\r\nX-To: e\r\n\r\nTo: not a header\r\n",
    "no-header-end": "Subject: x\r\nthis is the body\r\nTo: y\r\n",
    "long-lines": "Subject: " + "0123456789" * 12 + "\r\n\r\n" + "x" * 1200 + "\r\nshort\r\n",
    "rfc2231": "Content-Type: multipart/mixed; boundary=\"==b\"\r\n\r\n--==b\r\n"
               "Content-Disposition: attachment;\r\n filename*0*=utf-8''a%20very;\r\n"
               " filename*1=\" long name\";\r\n filename*2=.exe\r\n\r\ndata\r\n"
               "--==b\r\nContent-Type: application/octet-stream;\r\n"
               " name=\"=?UTF-8?B?cmVwb3J0LmV4ZQ==?=\"\r\nContent-Transfer-Encoding: BASE64\r\n"
               "\r\nAAAA\r\n--==b\r\nContent-Disposition: attachment; "
               "filename=\"=?iso-8859-1?Q?r=E9sum=E9?= .pdf\"\r\n\r\n--==b--\r\n",
    "nested-rfc822": "Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; "
                     "boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n"
                     "Content-Type: multipart/mixed; boundary=y\r\n\r\n--y\r\n"
                     "Content-Disposition: attachment; filename=deep.exe\r\n\r\nz\r\n--y--\r\n"
                     "--x--\r\n",
    "bad-boundary": "Content-Type: multipart/mixed\r\n\r\n--\r\nbody\r\n"
                    "Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n",
    "dot-stuffed": "Subject: dots\r\n\r\n..leading dot\r\n. space\r\n.x\r\n",
}
for name, seq in SMUGGLING.items():
    MESSAGES["smuggling-" + name] = "Subject: s\r\n\r\na" + seq + "b\r\n"

MAIL_LINES = [
    "MAIL FROM:<alice@example.org>\r\n",
    "RCPT TO:<bob@example.net>\r\n",
    "mail from: <a@b.example> SIZE=12345 BODY=8BITMIME SMTPUTF8\r\n",
    "RCPT TO : <a@b.example>",
    "MAIL FROM:a@b.example SIZE=10\r\n",
    "MAIL FROM:<>\r\n",
    "RCPT TO:<Postmaster>\r\n",
    "MAIL FROM:<a@b.example> SIZE=18446744073709551615\r\n",
    "MAIL FROM:<\"john \\\"jd\\\" doe\"@example.org>\r\n",
    "RCPT TO:<\"a>b@c\"@example.org>\r\n",
    "RCPT TO:<@a.example,@b.example:user@c.example>\r\n",
    "RCPT TO:<a@evil.example@good.example>\r\n",
    "RCPT TO:<j\xc3\xb6rg@b\xc3\xbc.example> SMTPUTF8\r\n",
    "MAIL FROM:<a|b`c\x01@example.org>\r\n",
    "MAIL FROM:<a@b.example\r\n",
    "MAIL FROM:\"a@b.example\r\n",
    "MAIL FROM:<<a@b.example>>\r\n",
    "RCPT TO:<@a.example,:u@c.example>\r\n",
    "MAIL FROM:<a@b.example>SIZE=1\r\n",
    "MAIL FROM:<a@b.example> SIZE=1 SIZE=999999999\r\n",
    "MAIL FROM:<a@b.example> ENVID=a\x01z\r\n",
]

PATTERNS = [
    ("*.exe", "report.EXE"),
    ("*@example.org", "alice@example.org"),
    ("a*b*c*d", "aXbYcZd"),
    ("?*?", "ab"),
    ("*a*a*a*a*b", "a" * 40),
    ("*.example.org", "example.org"),
    ("", ""),
    ("**", "x"),
]

CONFIGS_DIR = ROOT / "systemd"


# ---- writing ---------------------------------------------------------------------------------

def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    goldens = sorted((ROOT / "tests" / "integration" / "golden").glob("*.txt"))
    dialogues = dict(DIALOGUES)
    for g in goldens:
        dialogues["golden-" + g.stem] = golden(g)

    for i, (name, steps) in enumerate(sorted(dialogues.items())):
        enc = encode_dialogue(steps)
        # fuzz_session: the variant profile (4 + byte % 4) round-robin.
        write("fuzz_session", name, bytes([i % 4]) + enc)
        # fuzz_split: the profile, the largest piece, the seed of the pieces.
        profiles = range(len(PROFILES)) if name in ALL_PROFILES else [i % len(PROFILES)]
        if name.startswith("golden-") and name[7:] in PROFILES:
            profiles = [profile_index(name[7:])]
        for p in profiles:
            header = bytes([p, 7]) + struct.pack(">I", 0x5eed0000 + i)
            write("fuzz_split", "%s.%s" % (name, PROFILES[p]), header + enc)

    # fuzz_pipeline: a few dialogues as packets, both record kinds, v4 and v6.
    for i, name in enumerate(["mail-multipart", "pipelining", "blocked-verbs", "starttls",
                              "ehlo-strip-last", "partial-lines", "bdat", "answered-pipeline",
                              "smuggling-lf-dot-lf", "golden-modern", "golden-pix-mailguard"]):
        steps = dialogues[name]
        p = i % len(PROFILES)
        write("fuzz_pipeline", name + ".raw4", bytes([p, 0]) + packets(steps, False, True))
        write("fuzz_pipeline", name + ".seg6", bytes([p + 4 if p < 4 else p - 4, 1])
              + packets(steps, True, False, timestamps=True))
    write("fuzz_pipeline", "partial-lines.seg4-short-hold",
          bytes([0, 4]) + packets(dialogues["partial-lines"], False, False, segment=3))

    # fuzz_body: messages as DATA bodies and BDAT chunks, MAIL/RCPT lines, patterns.
    for i, (name, msg) in enumerate(sorted(MESSAGES.items())):
        header = bytes([0, i * 37 % 256, 15]) + struct.pack(">I", 0xb0d70000 + i)
        write("fuzz_body", "data-" + name, header + (msg + ".\r\n").encode("latin-1"))
        header = bytes([1, i * 53 % 256, 31]) + struct.pack(">I", 0xbda70000 + i)
        write("fuzz_body", "bdat-" + name, header + msg.encode("latin-1"))
    for i, line in enumerate(MAIL_LINES):
        write("fuzz_body", "mail-%02d" % i, bytes([2, 0, 0, 0, 0, 0, 0]) + line.encode("latin-1"))
    for i, (pat, text) in enumerate(PATTERNS):
        write("fuzz_body", "pattern-%02d" % i,
              bytes([3, 0, 0, 0, 0, 0, 0]) + pat.encode() + b"\0" + text.encode())

    conf = CONFIGS_DIR / "smtpguard.conf"
    if conf.exists():
        text = conf.read_text()
        write("fuzz_config", "smtpguard.conf", text.encode())
        # Every commented-out setting and section put in force (as policy_config_test does).
        write("fuzz_config", "smtpguard.conf.uncommented",
              re.sub(r"^#([a-z\[])", r"\1", text, flags=re.M).encode())
    for name, text in CONFIGS.items():
        write("fuzz_config", name, text.encode("latin-1"))

    for target in sorted(os.listdir(OUT)):
        files = list((OUT / target).iterdir())
        print("%-14s %3d seeds, %6d bytes" % (target, len(files),
                                              sum(f.stat().st_size for f in files)))


CONFIGS = {
    "policies.conf": "profile = modern\nhold-timeout-ms = 500\n"
                     "\n[policy]\nbanner = replace\nbanner-text = mail gateway ready\n"
                     "command.VRFY = answer 252 2.1.5 Send some mail\ncommand-rate.NOOP = 5\n"
                     "keyword.AUTH = strip\ncheck.message-size = 10M reset\n"
                     "\n[policy.mx2]\nmatch-server = 198.18.2.0/24, 2001:db8:2::/64\n"
                     "match-port = 25\nprofile = asa-default\ncheck.recipients = 50 reset\n"
                     "check.mime-filetype = reset *.exe, *.scr\n"
                     "\n[policy.legacy]\nmatch-client = 198.18.1.7\nprofile = pix-legacy\n",
    "errors.conf": "queues = 3-1\n[policy.x]\nmatch-server = 300.1.1.1/33\nfrobnicate = yes\n"
                   "check.relay = mask\n[policy.x]\nkey with spaces = 1\n= empty key\n"
                   "[bad section\n",
}

if __name__ == "__main__":
    main()
