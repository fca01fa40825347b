#!/usr/bin/env bash
# Configuration file and SIGHUP reload under load:
#  - smtpguardd --check-config passes the shipped example (systemd/smtpguard.conf) and names
#    FILE:LINE of a bad value (exit 1);
#  - the daemon runs with --config: a [policy.lab-servers] rule for the lab's server prefixes
#    (IPv4 and IPv6) with profile modern;
#  - 50 sessions (IPv4 and IPv6) connect and send EHLO, and are held open while SIGHUP switches
#    the rule to pix-mailguard: sessions started afterwards see the masked banner and a refused
#    EHLO; the 50 held ones keep modern (their second EHLO is answered 250), then each sends a
#    mail: all 50 complete and every body is stored byte-identical;
#  - a reload with an invalid file logs "reload failed: FILE:LINE: ...; keeping the running
#    configuration" and the policy stays as it was;
#  - a reload that also changes max-flows switches the policy back and logs that max-flows
#    needs a restart.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init reload
it_lab_up

HOLD=("$IT_PY" "$IT_DIR/hold_sessions.py")
CONF=$IT_TMP/smtpguard.conf
SESSIONS=50
HOLD_TIMEOUT=50 # s: every held session's waits; below Postfix's smtpd_timeout (60 s)

it_section "--check-config"
if ((IT_DAEMON)); then
  out=$("$IT_DAEMON_BIN" --check-config --config "$SMTPGUARD_SOURCE/systemd/smtpguard.conf" 2>&1)
  it_assert_eq "the shipped example configuration passes --check-config (exit 0)" 0 "$?"
  it_assert_match "... and the summary names it" "configuration: $SMTPGUARD_SOURCE/systemd/smtpguard.conf" "$out"
  printf '%s\n' 'port = 25' '[policy.x]' 'match-server = 198.18.2.0/24' 'check.body-line-length = 998 mask' >"$IT_TMP/bad.conf"
  out=$("$IT_DAEMON_BIN" --check-config --config "$IT_TMP/bad.conf" 2>&1)
  it_assert_eq "a bad value fails --check-config (exit 1)" 1 "$?"
  it_assert_match "... naming the file, the line, the option and what is allowed" \
    "^$IT_TMP/bad.conf:4: option 'policy.x.check.body-line-length': 'mask' only works on checks of command lines.* \(allowed: 'N ACTION' with N 1-1048576 and ACTION off, log, reset, drop-connection; or 'off'\)$" "$out"
fi

# write_conf PROFILE [TOP-LEVEL LINES...]: the lab's rule with PROFILE. Replaced by a rename, as
# an editor or a configuration manager would.
write_conf() {
  local profile=$1
  shift
  {
    printf '%s\n' "# smtpguard reload test"
    printf '%s\n' "$@"
    printf '%s\n' "" "[policy.lab-servers]" "match-server = $LAB_SERVER_NET4, $LAB_SERVER_NET6" \
      "profile = $profile"
  } >"$CONF.tmp" && mv "$CONF.tmp" "$CONF"
}

# daemon_reload NAME: SIGHUP, then wait (bounded) for the daemon's reload line; the lines it
# logged meanwhile go to $IT_TMP/reload.NAME.
daemon_reload() {
  local log=$IT_TMP/reload.$1 before i
  ((IT_DAEMON)) || { : >"$log"; return 0; }
  before=$(wc -l <"$IT_DAEMON_ERR")
  kill -HUP "$IT_DAEMON_PID"
  for ((i = 0; i < 100; i++)); do
    tail -n "+$((before + 1))" "$IT_DAEMON_ERR" |
      grep -qE '^smtpguardd: reload(: [0-9]+ polic| failed)' && break
    sleep 0.1
  done
  tail -n "+$((before + 1))" "$IT_DAEMON_ERR" | grep -E '^smtpguardd: reload' >"$log"
  sed 's/^/    daemon | /' "$log"
}

# banner ADDR: the greeting's first line as a new client sees it.
banner() {
  lab_exec client "${HOLD[@]}" banner --host "$1" --timeout 20 2>&1
}

direct=$(lab_exec server "${HOLD[@]}" banner --host "$LAB_SERVER4" --timeout 20 2>&1)
it_assert_match "precondition: the server's banner, seen directly" '^220 ' "$direct"
masked=$(it_mask_banner "$direct")
it_say "direct banner: $direct"
it_say "masked banner: $masked"

write_conf modern
it_daemon_start modern --config "$CONF"
if ((IT_DAEMON)); then
  it_assert_contains_line "the daemon reads the file: two policies (the rule and the default)" \
    "smtpguardd: configuration $CONF: 2 policies" "$IT_DAEMON_ERR"
fi

it_section "before the reload: profile modern"
for addr in "$LAB_SERVER4" "$LAB_SERVER6"; do
  it_assert_eq "[$addr] a new session sees the banner untouched" "$direct" "$(banner "$addr")"
done

it_section "$SESSIONS sessions held open (IPv4 and IPv6)"
rm -f "$IT_TMP/ready" "$IT_TMP/go"
lab_exec client "${HOLD[@]}" hold --hosts "$LAB_SERVER4,$LAB_SERVER6" --count "$SESSIONS" \
  --ready-file "$IT_TMP/ready" --go-file "$IT_TMP/go" --out "$IT_TMP/sessions.out" \
  --timeout "$HOLD_TIMEOUT" >"$IT_TMP/hold.log" 2>&1 &
hold_pid=$!
for ((i = 0; i < HOLD_TIMEOUT * 10; i++)); do
  [[ -e $IT_TMP/ready ]] && break
  kill -0 "$hold_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -e $IT_TMP/ready ]]; then
  it_pass "$SESSIONS sessions connected and sent EHLO"
else
  wait "$hold_pid"
  it_fatal "the held sessions did not all get through EHLO: $(cat "$IT_TMP/hold.log" "$IT_TMP/sessions.out" 2>/dev/null | grep -v ' ok ' | head -n 10)"
fi

it_section "SIGHUP: the rule switches to pix-mailguard while $SESSIONS sessions are open"
write_conf pix-mailguard
daemon_reload switch
if ((IT_DAEMON)); then
  it_assert_contains_line "the daemon logs the reload" \
    "smtpguardd: reload: 2 policies, default profile modern" "$IT_TMP/reload.switch"
  want=$masked
else
  want=$direct
fi
for addr in "$LAB_SERVER4" "$LAB_SERVER6"; do
  it_assert_eq "[$addr] a session started after the reload sees the new profile's banner" \
    "$want" "$(banner "$addr")"
done
lab_exec client $IT_DIALOGUE "$LAB_SERVER4" 25 -c 'EHLO client.example.org' -c QUIT --timeout 20 \
  >"$IT_TMP/new-ehlo.out" 2>&1
ehlo_reply=$(it_reply_lines 1 "$IT_TMP/new-ehlo.out" | tail -n 1)
if ((IT_DAEMON)); then
  it_assert_match "a new session's EHLO is masked (pix-mailguard): the server refuses it" '^5[0-9][0-9] ' "$ehlo_reply"
else
  it_assert_match "a new session's EHLO is answered (no daemon)" '^250 ' "$ehlo_reply"
fi

it_section "SIGHUP with an invalid file: the running configuration stays"
write_conf pix-mailguard "log-rate = 10" "[policy]" "check.recipients = 0 reset"
daemon_reload broken
if ((IT_DAEMON)); then
  it_assert_match "the daemon logs why the reload failed, with the file and line" \
    "^smtpguardd: reload failed: $CONF:4: option 'policy.check.recipients': bad limit '0' \(allowed: [^)]*\); keeping the running configuration$" \
    "$(cat "$IT_TMP/reload.broken")"
  it_assert_no_line_matching "... and reports no successful reload" 'reload: [0-9]+ polic' "$IT_TMP/reload.broken"
fi
it_assert_eq "a new session still sees the running profile's banner" "$want" "$(banner "$LAB_SERVER4")"
it_daemon_alive

it_section "the $SESSIONS held sessions go on: second EHLO, one mail each, QUIT"
touch "$IT_TMP/go"
wait "$hold_pid"
hold_rc=$?
it_assert_eq "every held session completed (hold_sessions.py exit 0)" 0 "$hold_rc"
if [[ $hold_rc -ne 0 ]]; then
  grep -v ' ok ' "$IT_TMP/sessions.out" | head -n 10 | sed 's/^/    failed | /'
fi
ok=$(awk '$3 == "ok"' "$IT_TMP/sessions.out" | wc -l)
it_assert_eq "$SESSIONS of $SESSIONS sessions ok" "$SESSIONS" "$ok"
ehlo250=$(awk '$6 == 250' "$IT_TMP/sessions.out" | wc -l)
it_assert_eq "every held session kept its profile (modern): the second EHLO was answered 250" \
  "$SESSIONS" "$ehlo250"
unmasked=$(awk -v b="$direct" '{ l = $0; for (i = 1; i <= 6; i++) sub(/^[^ ]+ /, "", l); if (l == b) n++ } END { print n + 0 }' "$IT_TMP/sessions.out")
it_assert_eq "every held session had seen the untouched banner" "$SESSIONS" "$unmasked"
intact=0
missing=""
while read -r _ _ result msgid sha _; do
  [[ $result == ok ]] || continue
  got=$(it_delivered_body_sha "$msgid")
  if [[ $got == "$sha" ]]; then
    intact=$((intact + 1))
  else
    missing+=" $msgid($got)"
  fi
done <"$IT_TMP/sessions.out"
if ((intact == SESSIONS)); then
  it_pass "all $SESSIONS mails stored with byte-identical bodies (SHA-256)"
else
  it_fail "all $SESSIONS mails stored with byte-identical bodies (SHA-256)" "$intact intact; not:${missing:0:600}"
fi

it_section "SIGHUP back to modern, with a change that needs a restart"
write_conf modern "max-flows = 1000"
daemon_reload back
if ((IT_DAEMON)); then
  it_assert_contains_line "the daemon says max-flows needs a restart" \
    "smtpguardd: reload: max-flows changed; it needs a restart, keeping the running value" "$IT_TMP/reload.back"
  it_assert_contains_line "... and reloads the policies" \
    "smtpguardd: reload: 2 policies, default profile modern" "$IT_TMP/reload.back"
fi
for addr in "$LAB_SERVER4" "$LAB_SERVER6"; do
  it_assert_eq "[$addr] a new session sees the banner untouched again" "$direct" "$(banner "$addr")"
done

it_say "reload test: sessions ok=$ok/$SESSIONS kept-profile=$ehlo250 delivered-intact=$intact"
it_daemon_report_and_finish
