#!/usr/bin/env bash
# The benchmark driver (bench/run) in smoke mode, on this test's own lab, so that it cannot rot:
# every configuration (kernel forward, null queue with and without GSO, smtpguardd modern and
# asa-default with 2 workers, modern with 1 worker, a Postfix relay in the gateway) runs every
# workload that applies to it for a fraction of a second, and the flow-memory benchmark runs on
# small tables. Asserted: the driver succeeds, its JSON has every configuration and workload
# with plausible non-zero values, the queue programs really saw the traffic, and the table and
# chart were written. No figure is compared with a target here: this is not a timed test.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init bench_smoke
((IT_DAEMON)) || it_fatal "the benchmark needs the daemon (SMTPGUARD_IT_NO_DAEMON is not supported here)"
for tool in smtp-source smtp-sink iperf3 /usr/bin/python3; do
  command -v "$tool" >/dev/null || it_fatal "missing tool '$tool' (run scripts/install-deps)"
done
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || it_fatal "python3-matplotlib missing (run scripts/install-deps)"
for b in sg_null_queue sg_flow_memory; do
  [[ -x $SMTPGUARD_BUILD/$b ]] || it_fatal "$SMTPGUARD_BUILD/$b not built"
done
it_lab_up

out=$IT_TMP/results
it_section "bench/run --smoke on lab $LAB_PREFIX"
t0=$SECONDS
if timeout 150 /usr/bin/python3 "$SMTPGUARD_SOURCE/bench/run" --smoke --lab "$LAB_PREFIX" \
  --no-build --build "$SMTPGUARD_BUILD" --out "$out" --name smoke >"$IT_TMP/run.out" 2>"$IT_TMP/run.err"; then
  it_pass "bench/run --smoke exits 0 ($((SECONDS - t0))s)"
else
  it_fail "bench/run --smoke exits 0" "$(tail -n 30 "$IT_TMP/run.err")"
fi
sed 's/^/    | /' "$IT_TMP/run.out"

it_section "results"
for ext in json md png; do
  it_check "smoke.$ext written" test -s "$out/smoke.$ext"
done
it_check "smoke.png is a PNG" bash -c "head -c 8 '$out/smoke.png' | od -An -tx1 | grep -q '89 50 4e 47 0d 0a 1a 0a'"

# One line per check from the JSON: "ok DESCRIPTION" or "FAIL DESCRIPTION: DETAIL".
/usr/bin/python3 - "$out/smoke.json" >"$IT_TMP/checks" 2>&1 <<'EOF'
import json, re, sys
doc = json.load(open(sys.argv[1]))
def check(desc, ok, detail=""):
    print(("ok %s" % desc) if ok else ("FAIL %s: %s" % (desc, detail)))

expect = {  # configuration -> metric -> plausible range
    "forward": {"bulk_mb_s": (1, 1e5), "tcp_gbit_s": (0.01, 1000), "msg_rate": (5, 1e6),
                "latency_p50_us": (1, 1e6), "latency_p99_us": (1, 1e6)},
    "null": {"bulk_mb_s": (1, 1e5), "tcp_gbit_s": (0.01, 1000), "msg_rate": (5, 1e6),
             "latency_p50_us": (1, 1e6), "latency_p99_us": (1, 1e6)},
    "null-nogso": {"bulk_mb_s": (0.5, 1e5), "tcp_gbit_s": (0.005, 1000)},
    "modern": {"bulk_mb_s": (1, 1e5), "msg_rate": (5, 1e6), "latency_p50_us": (1, 1e6),
               "latency_p99_us": (1, 1e6)},
    "asa-default": {"bulk_mb_s": (1, 1e5), "msg_rate": (5, 1e6), "latency_p50_us": (1, 1e6),
                    "latency_p99_us": (1, 1e6)},
    "modern-1w": {"msg_rate": (5, 1e6)},
    "postfix-relay": {"msg_rate": (1, 1e6)},
}
check("mode is smoke", doc.get("mode") == "smoke", doc.get("mode"))
check("no workload failed", not doc.get("errors") and not doc.get("aborted"),
      "%s %s" % (doc.get("errors"), doc.get("aborted")))
res = doc.get("results", {})
for cfg, metrics in expect.items():
    check("configuration %s listed" % cfg, cfg in doc.get("configurations", {}), "")
    for m, (lo, hi) in metrics.items():
        s = (res.get(cfg) or {}).get(m)
        v = s["median"] if s else None
        check("%s %s plausible (%s)" % (cfg, m, v), v is not None and lo <= v <= hi,
              "expected %g..%g" % (lo, hi))
for cfg in ("forward", "null", "modern", "asa-default"):
    s = (res.get(cfg) or {})
    p50, p99 = s.get("latency_p50_us"), s.get("latency_p99_us")
    check("%s p99 >= p50" % cfg, p50 and p99 and p99["median"] >= p50["median"], "%s %s" % (p50, p99))
# The traffic really went through the queue programs. details: config -> round -> workload -> info
det = doc.get("details", {})
def infos(cfg):
    return list(((det.get(cfg) or {}).get("1") or {}).values())
def counters(cfg):
    total = {}
    for i in infos(cfg):
        for k, v in i.get("counters", {}).items():
            total[k] = total.get(k, 0) + v
    return total
for cfg in ("null", "null-nogso"):
    lines = [l for i in infos(cfg) for l in i.get("null_queue", [])]
    pk = sum(int(m.group(1)) for l in lines for m in [re.search(r" packets=(\d+)", l)] if m)
    check("%s saw the packets (%d)" % (cfg, pk), pk > 100, lines)
gso = sum(int(m.group(1)) for i in infos("null-nogso") for l in i.get("null_queue", [])
          for m in [re.search(r"gso_packets=(\d+)", l)] if m)
check("null-nogso got no GSO super-packets (%d)" % gso, gso == 0, "")
for cfg in ("modern", "asa-default", "modern-1w"):
    c = counters(cfg)
    check("%s: smtpguardd saw the packets (%s) and the transactions (%s flows)" % (
        cfg, c.get("packets"), c.get("flows_created")),
        c.get("packets", 0) > 100 and c.get("flows_created", 0) >= 40, c)
    check("%s: smtpguardd exited 0 after each workload" % cfg,
          infos(cfg) and all(i.get("exit") == 0 for i in infos(cfg)), infos(cfg))
c = counters("asa-default")
check("asa-default masked the banner (%s)" % c.get("edit_banner_masked"),
      c.get("edit_banner_masked", 0) > 0, c)
ratios = doc.get("ratios", {})
for key in ("bulk_modern_vs_null", "bulk_asa-default_vs_null", "bulk_null-nogso_vs_null",
            "msgrate_modern_vs_forward", "msgrate_modern_vs_relay", "scaling_2w_vs_1w",
            "p99_added_modern_vs_null", "p50_added_modern_us", "p99_added_null_us"):
    check("ratio %s present" % key, key in ratios, sorted(ratios))
mem = doc.get("memory_runs", [])
check("two flow-memory runs", len(mem) >= 2, mem)
for d in mem:
    check("flow memory %d flows: all tracked, %.0f bytes/flow" % (d["flows"], d["bytes_per_flow"]),
          d["flows_created"] == d["flows"] and d["flows_evicted"] == 0 and d["bytes_per_flow"] > 0, d)
targets = doc.get("targets", [])
check("all 7 targets evaluated", len(targets) == 7 and all(t["value"] is not None for t in targets),
      targets)
EOF
[[ -s $IT_TMP/checks ]] || it_fail "JSON checks ran" "$(cat "$IT_TMP/checks")"
while IFS= read -r line; do
  case $line in
    "ok "*) it_pass "${line#ok }" ;;
    "FAIL "*) it_fail "${line#FAIL }" ;;
    *) it_fail "JSON checker output" "$line" ;;
  esac
done <"$IT_TMP/checks"

# The driver cleaned up after itself: no queue rule, no gateway Postfix, no process of its own
# left in the lab (the lab's server Postfix stays: it belongs to the lab).
rules=$(lab_exec gw nft list ruleset 2>/dev/null | grep -iE 'queue' || true)
it_assert_eq "no queue rule left in the gateway" "" "$rules"
left=$(ip netns pids "$(lab_ns gw)" 2>/dev/null | wc -l)
it_assert_eq "no process left in the gateway namespace" 0 "$left"
left=$(for p in $(ip netns pids "$(lab_ns server)" 2>/dev/null); do cat "/proc/$p/comm" 2>/dev/null; done |
  grep -cE 'smtp-sink|iperf3|python3' || true)
it_assert_eq "no benchmark server left in the server namespace" 0 "$left"
it_finish
