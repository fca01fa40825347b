#!/usr/bin/python3
"""judge.py - what Postfix did on one session, from its own log (the receiver is the judge).

    judge.py MAILLOG PORT [--verbs VRFY,EXPN]
    judge.py verdict RESULT.json MAILLOG MODE     PASS/FAIL line of one vector's run

Prints JSON: the command lines Postfix read on the last session from client port PORT (its
debug_peer "< host[addr]:PORT: LINE" lines), each with the replies Postfix sent to it, and
"executed": the commands whose verb (after leading blanks, case-insensitive, split on SP HT VT
FF; Postfix logs those control bytes as '?', counted as blanks too) is a blocked verb, or
that Postfix answered 252 (its VRFY answer), with their replies. Exit status 0.
"""
import json
import re
import sys

# Postfix's log shows a control byte (HT, VT, FF, ...) of a command line as '?': here '?' counts
# as a blank too (a literal '?' never makes a verb VRFY or EXPN, so this only errs towards
# finding an execution).
BLANKS = " \t\x0b\x0c?"
BLOCKED = ("VRFY", "EXPN")
PIX_ALLOWED = {"HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", ""}


def verb_of(line):
    t = line.lstrip(BLANKS)
    return re.split(r"[ \t\x0b\x0c?]+", t, maxsplit=1)[0].upper() if t else ""


def executed_verb(c, verbs):
    """A blocked verb executed as itself: its verb read, or Postfix's VRFY answer (252)."""
    if c["verb"] in verbs:
        return True
    return "VRFY" in verbs and any(r.startswith("252") for r in c["replies"])


def session(maillog, port):
    lines = open(maillog, encoding="latin-1").read().splitlines()
    start = None
    pat_conn = re.compile(r"postfix/smtpd\[\d+\]: connect from [^ ]*\]:%d$" % port)
    for i, l in enumerate(lines):
        if pat_conn.search(l):
            start = i
    if start is None:
        return None, []
    pid = re.search(r"postfix/smtpd\[(\d+)\]", lines[start]).group(1)
    out = []
    pat = re.compile(r"postfix/smtpd\[%s\]: ([<>]) [^ ]*\]:%d: (.*)$" % (pid, port))
    for l in lines[start:]:
        if re.search(r"postfix/smtpd\[%s\]: disconnect from [^ ]*\]:%d( |$)" % (pid, port), l):
            out.append(("disconnect", l.split(": ", 1)[-1]))
            break
        m = pat.search(l)
        if m:
            out.append((m.group(1), m.group(2)))
    return pid, out


def analyse(maillog, port, verbs=("VRFY", "EXPN")):
    pid, ev = session(maillog, port)
    cmds = []
    disconnect = None
    for kind, text in ev:
        if kind == "<":
            cmds.append({"line": text, "verb": verb_of(text), "replies": []})
        elif kind == ">" and cmds:
            cmds[-1]["replies"].append(text)
        elif kind == "disconnect":
            disconnect = text
    executed = [c for c in cmds if executed_verb(c, verbs)]
    return {"port": port, "smtpd_pid": pid, "connected": pid is not None,
            "commands": cmds, "executed": executed, "disconnect": disconnect}


def short(c):
    code = c["replies"][-1][:3] if c["replies"] else "-"
    line = c["line"] if len(c["line"]) <= 40 else c["line"][:37] + "..."
    return "%s>%s" % (line, code)


def verdict(result_json, maillog, mode):
    try:
        r = json.load(open(result_json))
    except (OSError, ValueError) as e:
        print("FAIL no result from the raw client (%s)" % e)
        return 1
    a = analyse(maillog, r["port"])
    client = []
    if r.get("error"):
        client.append("error " + r["error"])
    sm = r["summary"]
    client.append("%d replies" % len(sm["replies"]))
    if r["completed"]:
        client.append("QUIT answered 221")
    if sm["rst_rcvd"]:
        client.append("got RST")
    if sm["fin_rcvd"]:
        client.append("got FIN")
    cmds = a["commands"]
    shown = [short(c) for c in cmds]
    if len(shown) > 8:
        shown = shown[:3] + ["...(%d)" % (len(shown) - 6)] + shown[-3:]
    text = "Postfix read: %s; client: %s" % (" | ".join(shown) if a["connected"] else "(no session)",
                                              ", ".join(client))
    if a["executed"]:
        text = "EXECUTED %s; " % " ; ".join(short(c) for c in a["executed"]) + text
    if mode.startswith("pix"):
        odd = [c for c in cmds if c["verb"] not in PIX_ALLOWED and not executed_verb(c, BLOCKED)
               and not (c["verb"] and set(c["verb"]) == {"X"})]
        if odd:
            # not a verdict (the blocked verb is): a line pix-mailguard masks reached Postfix as
            # itself, so the gateway did not inspect it as a command
            text += "; NOTE uninspected: " + " ; ".join(short(c) for c in odd)
    if mode == "control":
        ok = bool(a["executed"])
        if r.get("must_complete") and not r["completed"]:
            ok = False
            text += " (the session did not complete)"
    else:
        ok = not a["executed"]
        if r.get("must_complete") and not r["completed"]:
            ok = False
            text += " (the session did not complete)"
        if r.get("must_end") and not (r["completed"] or sm["rst_rcvd"]):
            ok = False
            text += " (the session neither completed nor was reset: it hung)"
        bound = r.get("bound")
        if bound:
            sent = r.get("stats", {}).get("unanswered_sent")
            if not sm["rst_rcvd"] or sent is None or sent > bound:
                ok = False
                text += " (no RST from the gateway within %d unanswered bytes: %s sent)" % (
                    bound, sent)
            else:
                text += "; RST after %d unanswered bytes (bound %d)" % (sent, bound)
    print(("PASS " if ok else "FAIL ") + text)
    return 0 if ok else 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "verdict":
        return verdict(sys.argv[2], sys.argv[3], sys.argv[4])
    maillog, port = sys.argv[1], int(sys.argv[2])
    verbs = ("VRFY", "EXPN")
    if len(sys.argv) > 4 and sys.argv[3] == "--verbs":
        verbs = tuple(sys.argv[4].upper().split(","))
    print(json.dumps(analyse(maillog, port, verbs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
