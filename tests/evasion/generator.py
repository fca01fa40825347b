#!/usr/bin/python3
"""generator.py - seeded random TCP-level mangling of a dialogue that carries blocked verbs.

    generator.py show --seed S --case I                 the ops of one case (JSON)
    generator.py run  --mode M --seed S --count N --port-base P --gw-mac MAC --out DIR
                      [--jobs J] [--deadline SECS] [--first I] [--replay FILE]
    generator.py judge --out DIR --maillog LOG --mode M [--allowed pix|any]

A case is the dialogue below, sent after the greeting as one client byte stream cut and
mangled at random (rng = Random("SEED:CASE"), so a case is reproduced from its seed and index):
segmentation at random points, overlapping copies with other bytes (a verb swapped for another
of the same length, or random letters) placed before or after the real copy, reordering within
a window, duplicates, segments far out of window carrying blocked verbs, bad-checksum copies,
and RST / FIN / SYN with random sequence numbers (never at the exact next seq: that would just
end the session). Then the client waits (bounded) for the 221 of QUIT, retransmitting what the
server did not acknowledge, as TCP does.

`run` writes DIR/results.jsonl (one line per case played: index, port, ops, replies). `judge`
reads Postfix's log per case: a case FAILS through the daemon when Postfix executed a blocked
verb (VRFY/EXPN as the verb, after leading blanks, split on SP HT VT FF) or - with
--allowed pix - read a command line whose verb pix-mailguard would not have let through as
itself (HELO MAIL RCPT DATA RSET NOOP QUIT, or X's): such a line was not inspected. Failures are
written as reproducers (seed, case, ops) to DIR/failures/. In control mode it counts the cases
where Postfix executed a blocked verb.
"""

import argparse
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import judge as judge_mod  # noqa: E402

DIALOGUE = (b"HELO x\r\n" b"NOOP a\r\n" b"VRFY postmaster\r\n" b"NOOP b\r\n" b"EXPN root\r\n"
            b"RSET\r\n" b"QUIT\r\n")
SWAP = {b"NOOP": b"VRFY", b"VRFY": b"NOOP", b"EXPN": b"NOOP", b"RSET": b"EXPN", b"HELO": b"VRFY",
        b"QUIT": b"EXPN"}
PIX_ALLOWED = {"HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", ""}
BLOCKED = ("VRFY", "EXPN")
SERVER4 = "198.18.2.1"


def decoy_stream(rng):
    """A same-length other version of the dialogue: verbs swapped or random letters."""
    d = bytearray(DIALOGUE)
    if rng.random() < 0.6:
        i = 0
        for line in DIALOGUE.split(b"\r\n")[:-1]:
            v = line[:4]
            if v in SWAP:
                d[i:i + 4] = SWAP[v]
            i += len(line) + 2
    else:
        for i in range(len(d)):
            if 65 <= d[i] <= 90:
                d[i] = rng.randint(65, 90)
    return bytes(d)


def make_case(seed, index):
    """The ops of case INDEX: a list of dicts, each one segment or one pause."""
    rng = random.Random("%d:%d" % (seed, index))
    L = len(DIALOGUE)
    decoy = decoy_stream(rng)
    ncuts = rng.randint(0, min(14, L - 1))
    cuts = sorted(rng.sample(range(1, L), ncuts))
    bounds = [0] + cuts + [L]
    segs = [dict(op="data", off=a, data=DIALOGUE[a:b].hex()) for a, b in zip(bounds, bounds[1:])]
    ops = []
    for sg in segs:
        a = sg["off"]
        n = len(bytes.fromhex(sg["data"]))
        r = rng.random()
        extra = []
        if r < 0.25:
            # an overlapping copy with other bytes, before or after the real one
            lo = max(0, a - rng.randint(0, 6))
            hi = min(L, a + n + rng.randint(0, 6))
            ov = dict(op="data", off=lo, data=decoy[lo:hi].hex(), note="decoy")
            extra.append(("before" if rng.random() < 0.5 else "after", ov))
        elif r < 0.35:
            extra.append(("before", dict(op="data", off=a, data=decoy[a:a + n].hex(), badsum=True,
                                         note="decoy, bad checksum")))
        elif r < 0.45:
            extra.append(("after", dict(sg, note="duplicate")))
        elif r < 0.5:
            lo = max(0, a - rng.randint(1, 4))
            extra.append(("before", dict(op="data", off=lo, data=decoy[lo:a + n].hex(), ack_delta=100000,
                                         note="decoy, ack beyond the server's data")))
        for where, e in extra:
            if where == "before":
                ops.append(e)
        ops.append(sg)
        for where, e in extra:
            if where == "after":
                ops.append(e)
        # injected control segments and out-of-window data
        r = rng.random()
        if r < 0.05:
            ops.append(dict(op="rst", delta=rng.choice([100000, -100000, rng.randint(1, 3000),
                                                        rng.getrandbits(31)]),
                            badsum=rng.random() < 0.3))
        elif r < 0.09:
            ops.append(dict(op="fin", delta=rng.choice([100000, rng.getrandbits(31), rng.randint(1, 3000)])))
        elif r < 0.12:
            ops.append(dict(op="syn", isn=rng.getrandbits(32)))
        elif r < 0.17:
            ops.append(dict(op="data", off=a + rng.choice([1 << 20, -(1 << 20), 70000]),
                            data=b"VRFY postmaster\r\n".hex(), note="out of window"))
        if ops and ops[-1]["op"] in ("rst", "fin", "syn") and rng.random() < 0.15:
            ops.append(dict(op="sleep", secs=12))  # the silence a state timeout needs
        elif rng.random() < 0.2:
            ops.append(dict(op="sleep", secs=round(rng.choice([0.01, 0.05, 0.2]), 2)))
    # reordering: shuffle within a small window
    if rng.random() < 0.5:
        w = rng.randint(2, 4)
        i = 0
        while i < len(ops):
            chunk = ops[i:i + w]
            rng.shuffle(chunk)
            ops[i:i + w] = chunk
            i += w
    return ops


def play(hub, rawtcp, seed, index, ops, port, out_lines, lock, deadline):
    s = rawtcp.Session(hub, SERVER4, sport=port, name="case%d" % index, out=None, rto=0.5,
                       max_retrans=8)
    err = None
    try:
        if not s.connect(timeout=5):
            raise RuntimeError("no handshake")
        s.expect(5)  # greeting
        for op in ops:
            k = op["op"]
            if k == "data":
                data = bytes.fromhex(op["data"])
                real = "note" not in op or op["note"] == "duplicate"
                kw = {}
                if op.get("badsum"):
                    kw["badsum"] = True
                if op.get("ack_delta"):
                    kw["ack"] = (s.rcv_nxt + op["ack_delta"]) & 0xFFFFFFFF
                if real:
                    s.send(data, off=op["off"], **kw)
                else:
                    s.send_at(data, op["off"], note=" (%s)" % op["note"], **kw)
            elif k == "rst":
                s.rst(delta=op["delta"], badsum=op.get("badsum", False))
            elif k == "fin":
                s.fin(delta=op["delta"])
            elif k == "syn":
                s.syn(op["isn"])
            elif k == "sleep":
                time.sleep(max(0.0, min(op["secs"], deadline - time.monotonic() - 8)))
            time.sleep(0.002)
        # wait for QUIT's 221 (bounded), retransmitting what was not acknowledged
        end = min(deadline, time.monotonic() + 6)
        while time.monotonic() < end:
            r = s.expect(max(0.1, end - time.monotonic()))
            if r is None or r[-1].startswith("221"):
                break
    except Exception as e:  # noqa: BLE001 - recorded
        err = "%s: %s" % (type(e).__name__, e)
    try:
        s.finish()
    except Exception as e:  # noqa: BLE001 - recorded
        err = err or "finish: %s: %s" % (type(e).__name__, e)
    rec = dict(seed=seed, case=index, port=port, ops=ops, error=err,
               replies=[r[-1] for r in s.replies], rst_rcvd=s.rst_rcvd, fin_rcvd=s.fin_rcvd,
               transcript=s.transcript[-200:])
    with lock:
        out_lines.append(rec)


def cmd_run(a):
    import rawtcp
    os.makedirs(a.out, exist_ok=True)
    hub = rawtcp.Hub(a.iface, a.gw_mac)
    t_end = time.monotonic() + a.deadline
    lock = threading.Lock()
    recs = []
    if a.replay:
        rep = json.load(open(a.replay))
        cases = [(rep["case"], rep["ops"])]
    else:
        cases = [(i, None) for i in range(a.first, a.first + a.count)]
    if a.port_base < 40000 or a.port_base + len(cases) > 44999:
        raise SystemExit("generator.py: ports must stay in 40000-44999")
    sem = threading.Semaphore(a.jobs)
    threads = []
    played = 0
    for n, (i, ops) in enumerate(cases):
        if time.monotonic() > t_end - 8:
            print("generator: deadline reached after %d of %d cases" % (played, len(cases)))
            break
        sem.acquire()
        ops = ops if ops is not None else make_case(a.seed, i)

        def job(i=i, ops=ops, port=a.port_base + n):
            try:
                play(hub, rawtcp, a.seed, i, ops, port, recs, lock, t_end)
            finally:
                sem.release()
        t = threading.Thread(target=job)
        t.start()
        threads.append(t)
        played += 1
    for t in threads:
        t.join(max(1.0, t_end + 40 - time.monotonic()))
    hub.close()
    with open(os.path.join(a.out, "results.jsonl"), "w") as f:
        for r in sorted(recs, key=lambda r: r["case"]):
            f.write(json.dumps(r) + "\n")
    print("generator: played %d case(s) [%s], seed %d" % (len(recs), a.mode, a.seed))
    return 0


def cmd_judge(a):
    recs = [json.loads(l) for l in open(os.path.join(a.out, "results.jsonl"))]
    fails = []
    executed = 0
    for r in recs:
        an = judge_mod.analyse(a.maillog, r["port"])
        ex = an["executed"]
        bad = []
        if ex:
            executed += 1
            bad.append("executed: " + " ; ".join(judge_mod.short(c) for c in ex))
        if a.allowed == "pix":
            odd = [c for c in an["commands"] if c["verb"] not in PIX_ALLOWED and c["verb"] not in BLOCKED
                   and not (c["verb"] and set(c["verb"]) == {"X"})]
            if odd:
                bad.append("uninspected (a verb pix-mailguard masks reached Postfix as itself): " +
                           " ; ".join(judge_mod.short(c) for c in odd))
        r["postfix"] = [judge_mod.short(c) for c in an["commands"]]
        if bad and a.mode != "control":
            r["why"] = bad
            fails.append(r)
    done = sum(1 for r in recs if r["replies"] and r["replies"][-1].startswith("221"))
    print("generator [%s]: %d case(s) judged; Postfix executed a blocked verb in %d; "
          "the client got QUIT's 221 in %d, a RST in %d" % (
              a.mode, len(recs), executed, done, sum(1 for r in recs if r["rst_rcvd"])))
    if a.mode == "control":
        return 0 if executed > 0 else 1
    if fails:
        d = os.path.join(a.out, "failures")
        os.makedirs(d, exist_ok=True)
        for r in fails:
            p = os.path.join(d, "seed%d-case%d.json" % (r["seed"], r["case"]))
            with open(p, "w") as f:
                json.dump(r, f, indent=1)
        print("generator [%s]: %d FAILED case(s); reproducers in %s" % (a.mode, len(fails), d))
        for r in fails[:int(a.show)]:
            print("  case %d (port %d): %s" % (r["case"], r["port"], " | ".join(r["why"])))
            print("    Postfix read: %s" % " | ".join(r["postfix"]))
            print("    reproducer: %s" % json.dumps({"seed": r["seed"], "case": r["case"], "ops": r["ops"]}))
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["show", "run", "judge"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--case", type=int, default=0)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--mode", default="control")
    ap.add_argument("--port-base", type=int, default=41000)
    ap.add_argument("--gw-mac")
    ap.add_argument("--iface", default="cl0")
    ap.add_argument("--out", default=".")
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--deadline", type=float, default=300)
    ap.add_argument("--replay")
    ap.add_argument("--maillog")
    ap.add_argument("--allowed", default="any")
    ap.add_argument("--show", default="5")
    a = ap.parse_args()
    if a.what == "show":
        print(json.dumps(make_case(a.seed, a.case), indent=1))
        return 0
    if a.what == "run":
        return cmd_run(a)
    return cmd_judge(a)


if __name__ == "__main__":
    sys.exit(main())
