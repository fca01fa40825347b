#!/usr/bin/python3
"""Scripted SMTP client: send a fixed list of commands, record every reply line.

usage: dialogue.py HOST PORT [COMMANDS] [-c CMD ...] [--byte-writes] [--nodelay]
                   [--byte-delay S] [--timeout S] [--show-sent] [--port-file F]
                   [--raw-file F]

COMMANDS is a file with one command per line ('-' for stdin); -c adds commands
after it. Blank lines and lines starting with '#' are skipped, except inside a
DATA body. The client reads the greeting, then for each command sends it with
CRLF and reads the complete reply (up to the line 'NNN ' or 'NNN'). After a 354
reply the following lines are the message body: they are sent with one send()
call, up to and including the line '.', then the reply is read.

A line '<pause S>' sends nothing and sleeps S seconds (e.g. so that every byte
received has been acknowledged before the next command goes out).

A line '{' starts a pipelined batch (RFC 2920) and a line '}' ends it: the
commands in between are sent with a single send() call (one segment unless
--byte-writes), then one complete reply is read per command, in order. If the
last reply of a batch is 354 the following lines are the message body, as above.

Every line received is printed (without CR LF), one per line; with --show-sent
sent lines are printed too, as 'C: ...' (received ones then as 'S: ...').
--raw-file F records every byte received, exactly as received (CR LF included).

--byte-writes sends every byte with its own send() call (sleeping --byte-delay
between bytes so that the kernel cannot coalesce them); --nodelay sets
TCP_NODELAY. --port-file writes the local port (to find the session in the
server's log). Exit status: 0 done, 2 timeout, 3 connection closed early,
4 connection error.
"""
import argparse
import re
import socket
import sys
import time

FINAL = re.compile(rb"^\d{3}(?: |$)")
PAUSE = re.compile(r"^<pause ([0-9]+(?:\.[0-9]*)?)>$")


class Closed(Exception):
    pass


class Dialogue:
    def __init__(self, sock, args):
        self.sock = sock
        self.args = args
        self.buf = b""
        self.prefix_in = "S: " if args.show_sent else ""
        self.raw = open(args.raw_file, "wb") if args.raw_file else None

    def emit(self, prefix, line):
        sys.stdout.write(prefix + line.decode("latin-1") + "\n")
        sys.stdout.flush()

    def readline(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if self.raw is not None and chunk:
                self.raw.write(chunk)
                self.raw.flush()
            if not chunk:
                if self.buf:
                    line, self.buf = self.buf, b""
                    self.emit(self.prefix_in, line)
                raise Closed()
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        line = line[:-1] if line.endswith(b"\r") else line
        self.emit(self.prefix_in, line)
        return line

    def read_reply(self):
        """Read lines up to the final line of a reply; return its code."""
        for _ in range(1000):  # a reply of more lines is a broken peer
            line = self.readline()
            if FINAL.match(line):
                return int(line[:3])
        raise Closed()

    def send(self, text):
        self.send_lines([text])

    def send_lines(self, lines):
        data = b"".join(t.encode("latin-1") + b"\r\n" for t in lines)
        if self.args.show_sent:
            for t in lines:
                self.emit("C: ", t.encode("latin-1"))
        if self.args.byte_writes:
            for i in range(len(data)):
                self.sock.sendall(data[i:i + 1])
                if self.args.byte_delay > 0:
                    time.sleep(self.args.byte_delay)
        else:
            self.sock.sendall(data)

    def run(self, commands):
        self.read_reply()
        i = 0
        while i < len(commands):
            cmd = commands[i]
            i += 1
            if cmd == "" or cmd.startswith("#"):
                continue
            pause = PAUSE.match(cmd)
            if pause:
                time.sleep(float(pause.group(1)))
                continue
            if cmd == "{":
                batch = []
                while i < len(commands) and commands[i] != "}":
                    if commands[i] != "" and not commands[i].startswith("#"):
                        batch.append(commands[i])
                    i += 1
                i += 1  # the '}'
                if not batch:
                    continue
                self.send_lines(batch)
                for _ in batch:
                    code = self.read_reply()
                cmd = batch[-1]
            else:
                self.send(cmd)
                code = self.read_reply()
            if code == 354:
                body = []
                while i < len(commands):
                    body.append(commands[i])
                    i += 1
                    if body[-1] == ".":
                        break
                self.send_lines(body)
                self.read_reply()
            if cmd.upper() == "QUIT":
                return


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("commands", nargs="?")
    p.add_argument("-c", "--command", action="append", default=[])
    p.add_argument("--byte-writes", action="store_true")
    p.add_argument("--byte-delay", type=float, default=0.001)
    p.add_argument("--nodelay", action="store_true")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--show-sent", action="store_true")
    p.add_argument("--port-file")
    p.add_argument("--raw-file")
    a = p.parse_args()

    commands = []
    if a.commands:
        f = sys.stdin if a.commands == "-" else open(a.commands, encoding="latin-1")
        commands = [ln.rstrip("\r\n") for ln in f]
    commands += a.command

    try:
        sock = socket.create_connection((a.host, a.port), timeout=a.timeout)
    except OSError as e:
        print(f"dialogue: connect [{a.host}]:{a.port}: {e}", file=sys.stderr)
        return 4
    if a.port_file:
        with open(a.port_file, "w") as f:
            f.write(f"{sock.getsockname()[1]}\n")
    if a.nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    d = Dialogue(sock, a)
    try:
        d.run(commands)
    except socket.timeout:
        print(f"dialogue: timeout after {a.timeout}s waiting for a reply", file=sys.stderr)
        return 2
    except Closed:
        print("dialogue: connection closed by the peer before the dialogue ended", file=sys.stderr)
        return 3
    except OSError as e:
        print(f"dialogue: {e}", file=sys.stderr)
        return 4
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
