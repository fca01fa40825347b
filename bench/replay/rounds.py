#!/usr/bin/env python3
"""Runs sg_replay in rounds and writes the raw runs (JSON) and the medians (Markdown).

    bench/replay/rounds.py --binary build-rel/sg_replay --rounds 5 \
        --out bench/results/2026-12-07-replay

A round runs every kind with 1 thread and with 2 threads, one after the other (the order of the
thread counts alternates from round to round, so that a steady drift of the machine's load
favours neither); the 2-thread / 1-thread ratio of messages per second is taken per round, from
runs seconds apart, and summarised over the rounds like every other figure (median, min-max).
Any run that fails (sg_replay's checks) stops the whole thing: no figures from a broken replay.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

KINDS = [("clean", "modern"), ("pipelined", "modern"), ("edits", "modern"),
         ("answer", "modern"), ("clean", "asa-default")]
FIGURES = [("us_per_message", "µs/msg (per thread)", "{:.1f}"),
           ("cpu_us_per_message", "CPU µs/msg", "{:.1f}"),
           ("messages_per_s", "msg/s (all threads)", "{:,.0f}"),
           ("data_mb_s", "MB/s of DATA", "{:.0f}"),
           ("packets_per_s", "packets/s", "{:,.0f}"),
           ("allocations_per_message", "allocations/msg", "{:.1f}")]


def run(binary, kind, profile, threads, messages, body):
    cmd = [binary, "--kind", kind, "--profile", profile, "--threads", str(threads),
           "--messages", str(messages), "--body-bytes", str(body), "--json"]
    load = open("/proc/loadavg").read().split()[0]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    r = json.loads(p.stdout)
    r["loadavg_1m"] = float(load)
    r["command"] = " ".join(cmd)
    return r


def spread(values, fmt):
    med = statistics.median(values)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build-rel/sg_replay")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--body-bytes", type=int, default=10240)
    ap.add_argument("--out", required=True, help="path without extension")
    a = ap.parse_args()

    runs = []
    for rnd in range(a.rounds):
        order = [1, 2] if rnd % 2 == 0 else [2, 1]
        for kind, profile in KINDS:
            for threads in order:
                r = run(a.binary, kind, profile, threads, a.messages, a.body_bytes)
                r["round"] = rnd
                runs.append(r)
                print(f"round {rnd} {kind}/{profile} x{threads}: {r['us_per_message']:.1f} µs/msg, "
                      f"{r['messages_per_s']:.0f} msg/s, {r['allocations_per_message']} allocs/msg, "
                      f"load {r['loadavg_1m']}", file=sys.stderr)

    def pick(kind, profile, threads):
        # "modern+answer-vrfy": sg_replay names the profile it changed for --kind answer.
        return [r for r in runs if r["kind"] == kind and r["threads"] == threads
                and r["profile"].split("+")[0] == profile]

    lines = [
        f"# sg_replay: the pipeline's own cost, in-process ({time.strftime('%Y-%m-%d')})",
        "",
        f"`bench/replay/rounds.py --binary {a.binary} --rounds {a.rounds} --messages {a.messages} "
        f"--body-bytes {a.body_bytes} --out {a.out}`",
        "",
        f"Machine: {os.cpu_count()} cores, shared with other work; {platform.machine()}, "
        f"kernel {platform.release()}; 1-minute load average at the start of the runs "
        f"{min(r['loadavg_1m'] for r in runs)}–{max(r['loadavg_1m'] for r in runs)}. "
        f"{a.rounds} rounds; median (min–max) over the rounds. Each run: {a.messages} messages per "
        "thread after 20,000 of warm-up, one message per session, "
        f"{runs[0]['data_bytes_per_message']} bytes of DATA per message.",
        "",
        "| kind | profile | threads | packets/msg | " + " | ".join(f[1] for f in FIGURES) + " |",
        "|---|---|---|---|" + "---|" * len(FIGURES),
    ]
    summary = {"rounds": a.rounds, "runs": runs, "medians": [], "scaling": []}
    for kind, profile in KINDS:
        for threads in (1, 2):
            rs = pick(kind, profile, threads)
            cells = [spread([r[k] for r in rs], fmt) for k, _, fmt in FIGURES]
            lines.append(f"| {kind} | {profile} | {threads} | {rs[0]['packets_per_message']} | "
                         + " | ".join(cells) + " |")
            summary["medians"].append({"kind": kind, "profile": profile, "threads": threads,
                                       **{k: statistics.median(r[k] for r in rs)
                                          for k, _, _ in FIGURES}})
    lines += ["", "2 threads / 1 thread, messages per second, per round:", "",
              "| kind | profile | median | min–max | per round |", "|---|---|---|---|---|"]
    for kind, profile in KINDS:
        one = {r["round"]: r["messages_per_s"] for r in pick(kind, profile, 1)}
        two = {r["round"]: r["messages_per_s"] for r in pick(kind, profile, 2)}
        ratios = [two[k] / one[k] for k in sorted(one)]
        summary["scaling"].append({"kind": kind, "profile": profile, "ratios": ratios,
                                   "median": statistics.median(ratios)})
        lines.append(f"| {kind} | {profile} | {statistics.median(ratios):.2f} | "
                     f"{min(ratios):.2f}–{max(ratios):.2f} | "
                     + ", ".join(f"{x:.2f}" for x in ratios) + " |")
    with open(a.out + ".json", "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    with open(a.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
