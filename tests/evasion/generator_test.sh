#!/usr/bin/env bash
# Seeded random TCP mangling (generator.py) of a dialogue carrying VRFY and EXPN: random
# segmentation, overlapping copies with other bytes, reordering, duplicates, bad checksums,
# out-of-window data, injected RST/FIN/SYN with random sequence numbers.
#  - control (no daemon): how many cases Postfix executed a blocked verb in; must be > 0.
#  - through smtpguardd pix-mailguard: in no case does Postfix execute VRFY/EXPN, nor read a
#    command line whose verb pix-mailguard would have masked (an uninspected line).
#  - through smtpguardd modern --answer-verb VRFY --reset-verb EXPN: no VRFY/EXPN executed.
# Each failing case is saved as a reproducer (seed, case, ops: JSON) under the test's temp dir
# and printed; replay one with generator.py run --replay FILE.
#
# Environment: EVASION_COUNT (cases per phase, 200), EVASION_SEED (1), EVASION_JOBS (sessions
# at once, 16), EVASION_DEADLINE (seconds for the whole test, 480: a phase that cannot play all
# its cases in time fails).
EV_GROUP=generator
source "$(dirname "${BASH_SOURCE[0]}")/lib_evasion.sh"
COUNT=${EVASION_COUNT:-200}
SEED=${EVASION_SEED:-1}
JOBS=${EVASION_JOBS:-16}
BUDGET=${EVASION_DEADLINE:-480}
[[ $COUNT =~ ^[1-9][0-9]*$ && $COUNT -le 1300 ]] || { echo "EVASION_COUNT must be 1-1300" >&2; exit 1; }
T_END=$((SECONDS + BUDGET))
ev_init evasion_generator
it_say "seed $SEED, $COUNT case(s) per phase, $JOBS at once, ${BUDGET}s budget"

# gen_phase MODE PHASE_NO SHARE ALLOWED: play COUNT cases, judge them from Postfix's log.
gen_phase() {
  local mode=$1 no=$2 share=$3 allowed=$4 dir=$IT_TMP/gen-$1
  local left=$((T_END - SECONDS))
  local limit=$((left / share))
  ((limit > 20)) || limit=20
  mkdir -p "$dir"
  it_say "[$mode] playing $COUNT case(s), at most ${limit}s"
  lab_exec client timeout $((limit + 60)) "$EV_PY" "$EV_DIR/generator.py" run --mode "$mode" \
    --seed "$SEED" --count "$COUNT" --port-base $((41000 + no * 1300)) --gw-mac "$EV_GW_MAC" \
    --iface "$LAB_IF_CLIENT" --out "$dir" --jobs "$JOBS" --deadline "$limit" >"$dir/run.log" 2>&1
  local rc=$?
  tail -n 5 "$dir/run.log" | sed 's/^/    | /'
  ((rc == 0)) || it_fail "[$mode] the generator ran (exit $rc)" "$(tail -n 20 "$dir/run.log")"
  sleep 1 # postlogd
  local played
  played=$(wc -l <"$dir/results.jsonl" 2>/dev/null || echo 0)
  it_assert_eq "[$mode] all $COUNT cases played within the time budget" "$COUNT" "$played"
  local out
  out=$("$EV_PY" "$EV_DIR/generator.py" judge --out "$dir" --maillog "$LAB_MAILLOG" --mode "$mode" \
    --allowed "$allowed")
  rc=$?
  printf '%s\n' "$out" | sed 's/^/    /'
  printf 'generator\t%s\t%s\n' "$mode" "$(printf '%s' "$out" | head -n 2 | tr '\n' ' ')" >>"$EV_TABLE"
  if [[ $mode == control ]]; then
    if ((rc == 0)); then
      it_pass "[control] the generated cases reach Postfix: $(head -n 1 <<<"$out")"
    else
      it_fail "[control] the generated cases reach Postfix (a blocked verb executed in > 0 cases)" "$out"
    fi
  elif ((rc == 0)); then
    local also=""
    [[ $allowed == pix ]] && also=" nor reached Postfix uninspected"
    it_pass "[$mode] no generated case executed a blocked verb$also"
  else
    it_fail "[$mode] no generated case executed a blocked verb or reached Postfix uninspected" \
      "reproducers: $dir/failures/"
  fi
}

it_section "control: no daemon in the path"
gen_phase control 0 3 any
it_section "through smtpguardd pix-mailguard"
it_daemon_start pix-mailguard
gen_phase pix 1 2 pix
it_daemon_alive
it_daemon_stop
it_section "through smtpguardd modern --answer-verb VRFY --reset-verb EXPN"
it_daemon_start modern --answer-verb VRFY --reset-verb EXPN
gen_phase modern 2 1 any
it_daemon_alive
it_daemon_stop
ev_report
it_finish
