# shellcheck shell=bash
# lab-bench.sh — what the benchmark adds to the lab of scripts/lab-lib.sh (source that first,
# then this, then lab_load PREFIX).
#
#   P-server srv0  198.18.2.1  the lab's Postfix (left alone)
#                  198.18.2.2  smtp-sink            (message rate, command latency)
#                  198.18.2.3  bench/smtp_load.py sink (bulk DATA)
#                  198.18.2.4  iperf3 -s            (raw TCP reference)
#                  198.18.2.5  smtp-sink, real-time priority (command latency)
#   P-gw     gw-cl 198.18.1.254  a Postfix relay (store and forward) to [198.18.2.2]:25,
#                                 started only for the "postfix-relay" configuration
#
# All servers listen on port 25, so the queue rules (tcp port 25) divert their traffic. Only
# addresses of 198.18.0.0/15 inside the lab's own namespaces are used. Every function returns
# non-zero on failure and never exits the caller.

BENCH_SINK4=198.18.2.2
BENCH_BULK4=198.18.2.3
BENCH_IPERF4=198.18.2.4
BENCH_LAT4=198.18.2.5

bench_log() { printf 'bench: %s\n' "$*" >&2; }

# bench_server_addrs_up: the extra server addresses (idempotent).
bench_server_addrs_up() {
  local a
  for a in "$BENCH_SINK4" "$BENCH_BULK4" "$BENCH_IPERF4" "$BENCH_LAT4"; do
    lab_exec server ip addr replace "$a/24" dev "$LAB_IF_SERVER" || return 1
  done
}

# --- a Postfix relay in the gateway namespace ---------------------------------------------------
# Listens on the gateway's client-side address and relays everything to the sink: the
# store-and-forward alternative to inspecting in the forwarding path. Postfix's performance
# defaults are kept (process limits, in_flow_delay, connection cache); only what a private
# instance in a namespace needs is set (no chroot, no DNS, a log file).

bench_gw_postfix_dir() { printf '%s/gw-postfix' "$LAB_RUN"; }

# bench_gw_postfix_up [RELAYHOST]: start it (default [198.18.2.2]:25); bounded wait for its
# greeting.
bench_gw_postfix_up() {
  local relay=${1:-[$BENCH_SINK4]:25} run conf
  run=$(bench_gw_postfix_dir)
  conf=$run/conf
  (
    set -euo pipefail
    lab_relay_postfix_config "$conf" "$run" "$run/maillog" gw.example.org "$relay" \
      "error:no local delivery on the benchmark relay" \
      "inet_interfaces = $LAB_GW_CLIENT4" \
      "inet_protocols = ipv4" \
      "mynetworks = 127.0.0.0/8 $LAB_CLIENT_NET4" \
      "smtpd_relay_restrictions = permit_mynetworks, reject" \
      "smtpd_peername_lookup = no" \
      "smtpd_tls_security_level = none"
  ) >"$run.config.log" 2>&1 || {
    bench_log "gateway Postfix config failed:"
    cat "$run.config.log" >&2
    return 1
  }
  _lab_altdirs_edit add "$conf" || return 1
  lab_exec gw postfix -c "$conf" start >"$run.start.log" 2>&1 || {
    bench_log "gateway postfix start failed:"
    cat "$run.start.log" >&2
    tail -n 20 "$run/maillog" >&2 2>/dev/null
    return 1
  }
  lab_wait_smtp client "$LAB_GW_CLIENT4" 25 20
}

# bench_gw_postfix_spool: its queue directory (the driver counts queued files there).
bench_gw_postfix_spool() { printf '%s/spool' "$(bench_gw_postfix_dir)"; }

# bench_gw_postfix_down: stop it and forget its config directory (safe when it is not up).
bench_gw_postfix_down() {
  local conf
  conf=$(bench_gw_postfix_dir)/conf
  [[ -d $conf ]] || return 0
  if ip netns list | grep -q "^$(lab_ns gw)\b"; then
    timeout 15 ip netns exec "$(lab_ns gw)" postfix -c "$conf" stop >/dev/null 2>&1 || true
  fi
  _lab_altdirs_edit remove "$conf"
}
