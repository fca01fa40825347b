# shellcheck shell=bash
# Shared helpers of the evasion tests (sourced by tests/evasion/*_test.sh), on top of
# tests/integration/lib.sh (lab, daemon start/stop, checks).
#
# A vector is played twice or more: a CONTROL run with no daemon in the path (plain kernel
# forwarding through the lab gateway) that must show the blocked verb executed by Postfix -
# otherwise the vector proves nothing and fails - and a run THROUGH the daemon for each daemon
# configuration the vector names (vectors.py), where Postfix's log must show the verb never
# executed as itself. The raw client (rawtcp.py) plays every vector of a batch at once, one
# client port each, so the waits (12 to 66 s) overlap.
#
# Environment:
#   EVASION_VECTORS=a,b     only these vectors (development; a test with none of them skips,
#                           which CI=true turns into a failure); "generator" selects
#                           generator_test.sh
#   EVASION_KEEP_RESULTS=DIR  copy every batch's results (JSON, transcripts, verdicts) there
#   plus lib.sh's (SMTPGUARD_BUILD, SMTPGUARD_SOURCE, SMTPGUARD_LAB_KEEP, ...)

EV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/lib.sh
source "$EV_DIR/../integration/lib.sh"

EV_PY=/usr/bin/python3
EV_PORT_LO=40000 # the raw client's source ports (the client kernel's RSTs from them are dropped)
EV_PORT_HI=44999
EV_NEXT_PORT=$EV_PORT_LO
EV_GW_MAC=""
EV_RAW_READY=0
EV_TABLE=""

# The daemon configurations a vector can name (vectors.py): label -> it_daemon_start arguments.
ev_daemon_args() {
  case $1 in
    pix) printf '%s\n' pix-mailguard ;;
    modern) printf '%s\n' modern --answer-verb VRFY --reset-verb EXPN ;;
    pix_nosmuggling) printf '%s\n' pix-mailguard --config "$IT_TMP/nosmuggling.conf" ;;
    modern_nosmuggling) printf '%s\n' modern --answer-verb VRFY --reset-verb EXPN --config "$IT_TMP/nosmuggling.conf" ;;
    *) it_fatal "unknown daemon configuration $1" ;;
  esac
}
EV_DAEMONS=(pix modern pix_nosmuggling modern_nosmuggling)

_ev_cleanup() {
  local rc=$?
  ev_raw_unprepare >/dev/null 2>&1
  (exit "$rc")
  _it_cleanup
}

# ev_init NAME: it_init, the lab, the raw client's namespace settings.
ev_init() {
  it_init "$1"
  trap _ev_cleanup EXIT
  if [[ ${EV_GROUP:-} == generator ]]; then
    [[ -z ${EVASION_VECTORS:-} || ,${EVASION_VECTORS// /,}, == *,generator,* ]] || ev_nothing_selected
  else
    [[ -n $(ev_list "${EV_GROUP:-}") ]] || ev_nothing_selected
  fi
  it_lab_up
  ev_raw_prepare
  EV_TABLE=$IT_TMP/table
  : >"$EV_TABLE"
  printf '%s\n' '[policy]' 'check.smuggling = off' >"$IT_TMP/nosmuggling.conf"
}

# ev_nothing_selected: EVASION_VECTORS names none of this test's vectors.
ev_nothing_selected() {
  if [[ ${CI:-} == true ]]; then
    it_fatal "EVASION_VECTORS=${EVASION_VECTORS:-} selects none of this test's vectors (CI=true: no skipping)"
  fi
  it_say "EVASION_VECTORS=${EVASION_VECTORS:-} selects none of this test's vectors: skipped"
  exit 77
}

# ev_raw_prepare: in the client namespace, drop the kernel's RSTs from the raw client's ports
# (it has no socket for them), keep the kernel from choosing those ports, and find the
# gateway's MAC address (the raw client writes Ethernet frames).
ev_raw_prepare() {
  local t
  for t in iptables ip6tables; do
    lab_exec client "$t" -w -A OUTPUT -p tcp --sport "$EV_PORT_LO:$EV_PORT_HI" \
      --tcp-flags RST RST -j DROP || it_fatal "$t rule in the client namespace"
  done
  lab_exec client sysctl -qw net.ipv4.ip_local_reserved_ports="$EV_PORT_LO-$EV_PORT_HI" ||
    it_fatal "reserved ports in the client namespace"
  EV_GW_MAC=$(lab_exec gw cat "/sys/class/net/$LAB_IF_GW_CLIENT/address") || it_fatal "gateway MAC"
  EV_RAW_READY=1
  it_say "raw client: RSTs from ports $EV_PORT_LO-$EV_PORT_HI dropped in $(lab_ns client); gateway MAC $EV_GW_MAC"
  it_say "gateway rp_filter: all=$(lab_exec gw sysctl -n net.ipv4.conf.all.rp_filter)" \
    "$LAB_IF_GW_CLIENT=$(lab_exec gw sysctl -n "net.ipv4.conf.$LAB_IF_GW_CLIENT.rp_filter")" \
    "default=$(lab_exec gw sysctl -n net.ipv4.conf.default.rp_filter)"
}

ev_raw_unprepare() {
  ((EV_RAW_READY)) || return 0
  EV_RAW_READY=0
  [[ -n ${LAB_PREFIX:-} ]] || return 0
  local t
  for t in iptables ip6tables; do
    lab_exec client "$t" -w -D OUTPUT -p tcp --sport "$EV_PORT_LO:$EV_PORT_HI" \
      --tcp-flags RST RST -j DROP 2>/dev/null
  done
  return 0
}

# ev_list [GROUP]: the selected vectors of GROUP.
ev_list() {
  $EV_PY "$EV_DIR/vectors.py" list ${1:+--group "$1"}
}

# ev_daemons_of NAME: the daemon configurations NAME is played through.
ev_daemons_of() {
  $EV_PY "$EV_DIR/vectors.py" meta "$1" | $EV_PY -c 'import json,sys; print(" ".join(json.load(sys.stdin)["daemons"]))'
}

# ev_batch MODE NAME...: play the vectors at once (vectors.py run), results in $IT_TMP/MODE.
ev_batch() {
  local mode=$1
  shift
  local n=$#
  local base=$EV_NEXT_PORT
  EV_NEXT_PORT=$((EV_NEXT_PORT + n))
  ((EV_NEXT_PORT <= EV_PORT_HI)) || it_fatal "out of raw client ports"
  local dir=$IT_TMP/$mode
  mkdir -p "$dir"
  local names
  names=$(IFS=,; printf '%s' "$*")
  it_say "playing $n vector(s) [$mode] on ports $base-$((base + n - 1)): $names"
  lab_exec client timeout 240 "$EV_PY" "$EV_DIR/vectors.py" run --mode "$mode" --names "$names" \
    --port-base "$base" --gw-mac "$EV_GW_MAC" --iface "$LAB_IF_CLIENT" --out "$dir" \
    >"$dir/run.log" 2>&1
  local rc=$?
  sed 's/^/    | /' "$dir/run.log"
  ((rc == 0)) || it_fail "[$mode] the raw client ran (exit $rc)" "$(tail -n 20 "$dir/run.log")"
  # Postfix logs the disconnect once the session ended: a bounded wait (6 s) for all of them.
  local ports i port missing files=() n
  for n in "$@"; do files+=("$dir/$n.json"); done
  ports=$($EV_PY -c 'import json,sys
for f in sys.argv[1:]:
    try: print(json.load(open(f))["port"])
    except (OSError, ValueError, KeyError): pass' "${files[@]}" 2>/dev/null)
  ports=${ports//$'\n'/ }
  for ((i = 0; i < 60; i++)); do
    missing=0
    for port in $ports; do
      [[ $port =~ ^[0-9]+$ ]] || continue
      grep -qE "disconnect from [^ ]*\]:$port( |$)" "$LAB_MAILLOG" || { missing=1; break; }
    done
    ((missing)) || break
    sleep 0.1
  done
}

ev_json_get() {
  [[ -r $1 ]] || return 1
  $EV_PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# ev_judge MODE NAME: the check of one vector's run (control: the verb executed; through the
# daemon: it never did, and a must_complete vector's session completed).
ev_judge() {
  local mode=$1 name=$2 dir=$IT_TMP/$1 out rc
  out=$($EV_PY "$EV_DIR/judge.py" verdict "$dir/$name.json" "$LAB_MAILLOG" "$mode")
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$mode" "$out" >>"$EV_TABLE"
  local desc
  if [[ $mode == control ]]; then
    desc="$name [control, no daemon]: the vector reaches Postfix (the verb executes)"
  else
    desc="$name [through smtpguardd $mode]: the blocked verb never executes"
  fi
  if ((rc == 0)); then
    it_pass "$desc"
    printf '    %s\n' "$out"
  else
    it_fail "$desc" "$out" "transcript: $dir/$name.transcript" \
      "$(sed 's/^/  | /' "$dir/$name.transcript" | tail -n 40)"
  fi
}

# ev_run_group GROUP: control batch, then one batch per daemon configuration.
ev_run_group() {
  local group=$1 names=() n d
  mapfile -t names < <(ev_list "$group")
  ((${#names[@]})) || ev_nothing_selected
  it_section "control: no daemon in the path (plain forwarding)"
  ev_batch control "${names[@]}"
  for n in "${names[@]}"; do ev_judge control "$n"; done
  for d in "${EV_DAEMONS[@]}"; do
    local sub=()
    for n in "${names[@]}"; do
      [[ " $(ev_daemons_of "$n") " == *" $d "* ]] && sub+=("$n")
    done
    ((${#sub[@]})) || continue
    local args=()
    mapfile -t args < <(ev_daemon_args "$d")
    it_section "through smtpguardd $d (${args[*]})"
    it_daemon_start "${args[@]}"
    ev_batch "$d" "${sub[@]}"
    for n in "${sub[@]}"; do ev_judge "$d" "$n"; done
    it_say "daemon counters:"
    it_daemon_counters | sed 's/^/    | /'
    it_daemon_alive
    it_daemon_stop
  done
  ev_report
}

# ev_report: the table of this test's verdicts (and a copy under EVASION_KEEP_RESULTS).
ev_report() {
  it_section "summary"
  awk -F'\t' '{ printf "  %-26s %-20s %s\n", $1, $2, $3 }' "$EV_TABLE"
  if [[ -n ${EVASION_KEEP_RESULTS:-} ]]; then
    mkdir -p "$EVASION_KEEP_RESULTS/$IT_NAME"
    cp -r "$IT_TMP"/. "$EVASION_KEEP_RESULTS/$IT_NAME/" 2>/dev/null
    cp "$LAB_MAILLOG" "$EVASION_KEEP_RESULTS/$IT_NAME/maillog" 2>/dev/null
  fi
}
