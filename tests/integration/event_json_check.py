#!/usr/bin/python3
"""event_json_check.py SCHEMA FILE [--summary]

Validates every line of FILE (the daemon's --event-json output) against the JSON Schema SCHEMA
(docs/event.schema.json, with the ipv4/ipv6 formats checked). Prints one line per problem and
a last line "N lines, M invalid"; with --summary also one line per decision:
"EVENT ACTION DIR SRC_IP:SRC_PORT>DEST_IP:DEST_PORT FLOW_ID SUBJECT helo=H from=F rcpts=N".
Exit 0 when every line is
valid and there is at least one.
"""
import json
import sys

import jsonschema


def main():
    schema = json.load(open(sys.argv[1]))
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    summary = "--summary" in sys.argv[3:]
    n = bad = 0
    with open(sys.argv[2], "rb") as f:
        for raw in f:
            n += 1
            try:
                text = raw.decode("ascii")
                obj = json.loads(text)
            except (UnicodeDecodeError, ValueError) as e:
                bad += 1
                print("line %d: not ASCII JSON: %s" % (n, e))
                continue
            errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
            if errors:
                bad += 1
                for e in errors[:3]:
                    print("line %d: %s at %s" % (n, e.message, "/".join(map(str, e.path))))
                continue
            if summary and obj["event_type"] == "smtpguard":
                g = obj["smtpguard"]
                s = obj["smtp"]
                print("%s %s %s %s:%d>%s:%d %d %s helo=%s from=%s rcpts=%d" % (
                    g["event"], g["action"], g["dir"], obj["src_ip"], obj["src_port"],
                    obj["dest_ip"], obj["dest_port"], obj["flow_id"], g["subject"], s["helo"],
                    s["mail_from"], s["rcpt_count"]))
    print("%d lines, %d invalid" % (n, bad))
    return 0 if n > 0 and bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
