#!/usr/bin/python3
"""Capture one TCP frame an interface sends and send it again later: a stale
duplicate on demand (the kind of copy a network makes when it duplicates and
delays a segment), for the integration tests. Run inside a lab namespace, as root.

  replay.py capture --iface IF --sport PORT --prefix TEXT --out FILE [--timeout S]
      wait (bounded) for the first frame leaving IF with TCP source port PORT
      whose payload starts with TEXT; write it to FILE (hex). Prints 'ready'
      once the socket listens, 'captured' when done. Exit 1 on timeout.
  replay.py send --iface IF FILE
      send the frame again, unchanged except for a complete TCP checksum
      (a captured outgoing frame may carry only the pseudo-header sum that the
      offload would have completed).

IPv4 and IPv6 over Ethernet (veth); stdlib only.
"""
import argparse
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def tcp_offsets(frame):
    """(l3 offset, l4 offset, family) or None for a TCP frame."""
    ethertype = struct.unpack("!H", frame[12:14])[0]
    if ethertype == 0x0800:
        ihl = (frame[14] & 0x0F) * 4
        if frame[14 + 9] != 6:
            return None
        return 14, 14 + ihl, 4
    if ethertype == 0x86DD:
        if frame[14 + 6] != 6:  # no extension headers in the lab
            return None
        return 14, 14 + 40, 6
    return None


def fix_tcp_checksum(frame):
    frame = bytearray(frame)
    l3, l4, fam = tcp_offsets(frame)
    if fam == 4:
        total = struct.unpack("!H", frame[l3 + 2:l3 + 4])[0]
        seg = frame[l4:l3 + total]
        pseudo = bytes(frame[l3 + 12:l3 + 20]) + struct.pack("!BBH", 0, 6, len(seg))
    else:
        plen = struct.unpack("!H", frame[l3 + 4:l3 + 6])[0]
        seg = frame[l4:l4 + plen]
        pseudo = bytes(frame[l3 + 8:l3 + 40]) + struct.pack("!IxxxB", len(seg), 6)
    seg[16:18] = b"\0\0"
    frame[l4 + 16:l4 + 18] = struct.pack("!H", csum(pseudo + bytes(seg)))
    return bytes(frame)


def cmd_capture(a):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((a.iface, 0))
    print("ready", flush=True)
    deadline = time.monotonic() + a.timeout
    want = a.prefix.encode("latin-1")
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], 0.2)
        if not r:
            continue
        frame, addr = s.recvfrom(65535)
        if addr[2] != PACKET_OUTGOING:
            continue
        off = tcp_offsets(frame)
        if off is None:
            continue
        _, l4, _ = off
        sport = struct.unpack("!H", frame[l4:l4 + 2])[0]
        doff = (frame[l4 + 12] >> 4) * 4
        if sport == a.sport and frame[l4 + doff:].startswith(want):
            with open(a.out, "w") as f:
                f.write(frame.hex() + "\n")
            print("captured", flush=True)
            return 0
    print(f"replay: no frame from port {a.sport} starting with {a.prefix!r} on {a.iface}", file=sys.stderr)
    return 1


def cmd_send(a):
    with open(a.file) as f:
        frame = fix_tcp_checksum(bytes.fromhex(f.read().strip()))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((a.iface, 0))
    s.send(frame)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--iface", required=True)
    c.add_argument("--sport", type=int, required=True)
    c.add_argument("--prefix", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--timeout", type=float, default=10)
    c.set_defaults(fn=cmd_capture)
    s = sub.add_parser("send")
    s.add_argument("--iface", required=True)
    s.add_argument("file")
    s.set_defaults(fn=cmd_send)
    a = p.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
