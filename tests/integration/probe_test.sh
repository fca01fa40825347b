#!/usr/bin/env bash
# smtpguard-probe against the lab's Postfix, run in the client namespace through the gateway:
# with no inspection, then with smtpguardd in each profile. Every run asserts the exit status
# and the exact set of findings (from --json, validated against src/probe/report.schema.json).
#
# --direct needs the server without the gateway in between: a second smtpd on port 2525 of the
# same Postfix (same banner, same EHLO reply). The gateway's rules queue port 25 only, so the
# client reaches 2525 through plain forwarding.
#
# Also: the gateway's own traffic is not inspected (the rules hook forward only), so the probe
# run from the gateway namespace sees no inspection while the daemon runs; and every way the
# probe can fail (refused, no answer, a server that never greets, a bad name, a bad port) ends
# with exit status 2, a clear message, and within its timeouts.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init probe
IT_PROBE=$SMTPGUARD_BUILD/smtpguard-probe
IT_SCHEMA=$SMTPGUARD_SOURCE/src/probe/report.schema.json
[[ -x $IT_PROBE ]] || it_fatal "probe binary $IT_PROBE not found or not executable (set SMTPGUARD_BUILD)"
$IT_PY -c 'import jsonschema' 2>/dev/null || it_fatal "python3-jsonschema missing (run scripts/install-deps)"
it_lab_up

# probe NAME NS ARGS...: the probe in namespace NS; NAME.out, NAME.err, NAME.rc, NAME.secs.
# Each step may take probe_timeout seconds (5 unless set for the call).
probe() {
  local name=$1 ns=$2 t0=$SECONDS
  shift 2
  lab_exec "$ns" timeout 120 "$IT_PROBE" --helo-name client.example.org \
    --timeout "${probe_timeout:-5}" "$@" \
    >"$IT_TMP/$name.out" 2>"$IT_TMP/$name.err"
  echo $? >"$IT_TMP/$name.rc"
  echo $((SECONDS - t0)) >"$IT_TMP/$name.secs"
}
rc_of() { cat "$IT_TMP/$1.rc"; }

# json_facts NAME: validates NAME.out against the schema, then prints
#   ids=<sorted finding ids> result=<result> exit=<exit_code> tls=<path TLS ok|failed|none>
json_facts() {
  $IT_PY - "$IT_SCHEMA" "$IT_TMP/$1.out" <<'EOF'
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
report = json.load(open(sys.argv[2]))
jsonschema.Draft7Validator.check_schema(schema)
jsonschema.Draft7Validator(schema).validate(report)
ids = " ".join(sorted(f["id"] for f in report["findings"]))
tls = report["transcripts"]["path"]["tls"]
tls = "none" if tls is None else ("ok" if tls["ok"] else "failed")
print(f"ids={ids} result={report['result']} exit={report['exit_code']} tls={tls}")
EOF
}

# check_json NAME DESC RC IDS TLS: exit status, schema, findings, result and TLS as expected.
check_json() {
  local name=$1 desc=$2 rc=$3 ids=$4 tls=$5 facts result
  result=$([[ $rc == 0 ]] && echo clean || { [[ $rc == 1 ]] && echo inspection || echo error; })
  it_assert_eq "$desc: exit status $rc" "$rc" "$(rc_of "$name")"
  if facts=$(json_facts "$name" 2>&1); then
    it_pass "$desc: the JSON report is valid against report.schema.json"
  else
    it_fail "$desc: the JSON report is valid against report.schema.json" "$facts"
    return
  fi
  it_assert_eq "$desc: findings" "ids=$ids result=$result exit=$rc tls=$tls" "$facts"
}

direct4="$LAB_SERVER4:2525"
direct6="[$LAB_SERVER6]:2525"

it_section "setup: a second smtpd on port 2525, not queued by the gateway's rules"
# Its own syslog name keeps its sessions apart from the inspected ones in the maillog.
postconf -c "$LAB_PF_CONF" -M '2525/inet=2525 inet n - n - - smtpd -o syslog_name=postfix-direct' ||
  it_fatal "postconf -M failed"
lab_exec server postfix -c "$LAB_PF_CONF" reload >/dev/null 2>&1 || it_fatal "postfix reload failed"
lab_wait_smtp client "$LAB_SERVER4" 2525 15 || it_fatal "no smtpd on port 2525"
lab_wait_smtp client "$LAB_SERVER6" 2525 5 || it_fatal "no smtpd on port 2525 (IPv6)"
it_assert_eq "port 2525 greets like port 25" "$(lab_read_banner server "$LAB_SERVER4" 25)" \
  "$(lab_read_banner client "$LAB_SERVER4" 2525)"

# --- could not probe -------------------------------------------------------------------
it_section "could not probe: exit status 2, a clear message, bounded time"
probe refused client --json "$LAB_SERVER4:26"
check_json refused "connection refused" 2 "" none
it_assert_eq "connection refused: the message" \
  "smtpguard-probe: cannot connect to $LAB_SERVER4:26: Connection refused" "$(cat "$IT_TMP/refused.err")"

probe_timeout=2 probe nohost client 198.18.2.99
it_assert_eq "an address nobody answers: exit status 2" 2 "$(rc_of nohost)"
it_assert_match "an address nobody answers: the message" \
  '^smtpguard-probe: cannot connect to 198\.18\.2\.99:25: (no answer within 2000 ms|No route to host)' \
  "$(cat "$IT_TMP/nohost.err")"
it_assert_match "an address nobody answers: over within 8 s" '^[0-7]$' "$(cat "$IT_TMP/nohost.secs")"

# A listener that accepts and never says a word (bounded by its own timeout).
lab_exec server timeout 30 "$IT_PY" -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 2526)); s.listen(1)
c, _ = s.accept(); time.sleep(25)' "$LAB_SERVER4" &
silent_pid=$!
wait_listener() { # bounded wait until something listens on ADDR PORT in the server namespace
  local i
  for ((i = 0; i < 50; i++)); do
    lab_exec server ss -Htln "sport = :$2" | grep -q . && return 0
    sleep 0.1
  done
  return 1
}
wait_listener "$LAB_SERVER4" 2526 || it_fatal "the silent listener did not start"
probe_timeout=2 probe silent client "$LAB_SERVER4:2526"
kill "$silent_pid" 2>/dev/null
wait "$silent_pid" 2>/dev/null
it_assert_eq "a server that never greets: exit status 2" 2 "$(rc_of silent)"
it_assert_eq "a server that never greets: the message" \
  "smtpguard-probe: no greeting from $LAB_SERVER4:2526: no complete reply within 2000 ms" \
  "$(cat "$IT_TMP/silent.err")"
it_assert_match "a server that never greets: over within 8 s" '^[2-7]$' "$(cat "$IT_TMP/silent.secs")"

probe_timeout=2 probe badname client nowhere.invalid
it_assert_eq "a name that does not resolve: exit status 2" 2 "$(rc_of badname)"
it_assert_match "a name that does not resolve: the message" \
  "^smtpguard-probe: cannot connect to nowhere\.invalid:25: cannot resolve 'nowhere\.invalid'" \
  "$(cat "$IT_TMP/badname.err")"
probe badport client mx.example.org:99999
it_assert_eq "a bad port: exit status 2" 2 "$(rc_of badport)"
it_assert_match "a bad port: the message" "bad port in 'mx\.example\.org:99999'" "$(cat "$IT_TMP/badport.err")"

# --- no inspection ---------------------------------------------------------------------------
it_section "no inspection: plain forwarding"
probe none4 client --json --auth-check --direct "$direct4" "$LAB_SERVER4"
check_json none4 "no inspection, IPv4 with --direct" 0 "" ok
probe none6 client --direct "$direct6" "[$LAB_SERVER6]"
it_assert_eq "no inspection, IPv6 (text report): exit status 0" 0 "$(rc_of none6)"
it_assert_contains_line "no inspection, IPv6 (text report): the verdict" \
  "RESULT: no SMTP inspection visible (exit status 0)" "$IT_TMP/none6.out"
it_assert_contains_line "no inspection, IPv6: TLS through the path" \
  "  T: ok TLSv1.3 TLS_AES_256_GCM_SHA384" "$IT_TMP/none6.out"
probe byname client --json mx.example.org
check_json byname "no inspection, by name (the lab's hosts file)" 0 "" ok

# --- each profile ------------------------------------------------------------------------------
# profile_runs PROFILE RC IDS_DIRECT TLS IDS_V6 [EXTRA ARGS for the IPv4 run]
profile_runs() {
  local p=$1 rc=$2 ids=$3 tls=$4 ids6=$5
  shift 5
  it_daemon_start "$p"
  it_section "$p: IPv4 with --direct $*"
  probe "$p.4" client --json --direct "$direct4" "$@" "$LAB_SERVER4"
  check_json "$p.4" "$p, IPv4 with --direct" "$rc" "$ids" "$tls"
  it_section "$p: IPv6 without --direct"
  probe "$p.6" client --json "[$LAB_SERVER6]"
  check_json "$p.6" "$p, IPv6 alone" "$rc" "$ids6" "$tls"
  probe "$p.text" client --direct "$direct4" "$@" "$LAB_SERVER4"
  it_assert_eq "$p: the text report exits like the JSON one" "$rc" "$(rc_of "$p.text")"
}

profile_runs pix-legacy 1 \
  "8bitmime_hidden auth_blocked auth_hidden banner_asterisks chunking_hidden ehlo_answered_ok pipelining_hidden smtputf8_hidden starttls_hidden unknown_command_ok" \
  none "banner_asterisks ehlo_answered_ok unknown_command_ok" --auth-check
it_assert_contains_line "pix-legacy: 'goodmorning' answered OK, as KB 320027 says" \
  "      S: 250 2.0.0 Ok" "$IT_TMP/pix-legacy.text.out"
it_daemon_stop

profile_runs pix-mailguard 1 \
  "8bitmime_hidden auth_blocked auth_hidden banner_masked chunking_hidden ehlo_refused pipelining_hidden smtputf8_hidden starttls_hidden" \
  none "banner_masked ehlo_refused" --auth-check
it_section "pix-mailguard: the gateway's own traffic is not inspected (forward hook only)"
probe gw-own gw --json "$LAB_SERVER4"
check_json gw-own "pix-mailguard, probed from the gateway namespace" 0 "" ok
it_daemon_stop

profile_runs asa-default 1 \
  "banner_masked chunking_hidden ehlo_keyword_masked smtputf8_hidden starttls_hidden starttls_refused" \
  none "banner_masked chunking_hidden ehlo_keyword_masked smtputf8_hidden starttls_hidden starttls_refused"
it_say "asa-default: the text report (IPv4, --direct $direct4):"
sed 's/^/    | /' "$IT_TMP/asa-default.text.out"
it_assert_contains_line "asa-default: the masked keywords named with --direct" \
  "    certain: 3 EHLO keywords are masked: XXXXXXXA = STARTTLS, XXXXXXXA =" \
  "$IT_TMP/asa-default.text.out"
it_assert_contains_line "asa-default: STARTTLS sent anyway is refused (the ESA note's symptom)" \
  "      S: 500 5.5.2 Error: command not recognized" "$IT_TMP/asa-default.text.out"
it_daemon_stop

# modern masks only what Postfix rejects anyway: invisible to a client, even with --deep.
maillog_before=$(wc -l <"$LAB_MAILLOG")
profile_runs modern 0 "" ok "" --deep --auth-check --mail-from sender@example.org \
  --rcpt-to user@example.org
tail -n "+$((maillog_before + 1))" "$LAB_MAILLOG" >"$IT_TMP/modern.maillog"
# postfix/smtpd: the inspected port 25 (the direct one logs as postfix-direct/smtpd)
masked_deep=$(grep -cE 'postfix/smtpd\[[0-9]+\]: < [^ ]*\]:[0-9]+: (XXXXXXX|XXXXXXXXXXXX)$' \
  "$IT_TMP/modern.maillog")
it_assert_eq "modern: Postfix received XEXCH50 and X-LINK2STATE masked, twice each (the gateway acted)" \
  4 "$masked_deep"
it_assert_no_line_matching "modern: Postfix never received XEXCH50 or X-LINK2STATE through the gateway" \
  'postfix/smtpd\[[0-9]+\]: < [^ ]*\]:[0-9]+: (XEXCH50|X-LINK2STATE)$' "$IT_TMP/modern.maillog"
it_assert_match "modern: the direct sessions sent them unmasked" '^[1-9]' \
  "$(grep -cE 'postfix-direct/smtpd\[[0-9]+\]: < [^ ]*\]:[0-9]+: XEXCH50$' "$IT_TMP/modern.maillog")"
it_assert_contains_line "modern: the report says why --deep shows nothing here" \
  '  - --deep: XEXCH50 and X-LINK2STATE got the reply the server gives any' \
  "$IT_TMP/modern.text.out"
it_daemon_report_and_finish
