#!/usr/bin/env bash
# Real SMTP clients over a stripped and answered dialogue:
# smtpguardd --profile modern --strip-keyword AUTH,CHUNKING --answer-verb VRFY.
#  - swaks (EHLO, PIPELINING): sees no AUTH/CHUNKING, mail stored intact;
#  - python smtplib: VRFY gets the gateway's answer, then send_message, mail
#    stored intact;
#  - Postfix's own smtp client: a second private Postfix in the client
#    namespace relays to [server]:25 (IPv4, then IPv6); its log shows it saw
#    no AUTH/CHUNKING, every message is sent (none deferred) and stored intact.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init clients
it_lab_up

ANSWER="550 5.7.1 Command blocked by policy"
it_daemon_start modern --strip-keyword AUTH,CHUNKING --answer-verb VRFY

# new_message NAME SIZE [--for-swaks]: writes $IT_TMP/NAME.{body,msg}; sets
# MSGID and SENT_SHA.
new_message() {
  local name=$1 size=$2
  shift 2
  MSGID="clients-$name.$$@client.example.org"
  $IT_MAILTOOL genbody --seed "$((size % 1000 + ${#name}))" --size "$size" "$IT_TMP/$name.body" || it_fatal "genbody"
  $IT_MAILTOOL mkmsg --body "$IT_TMP/$name.body" --msgid "$MSGID" --subject "clients test $name" "$@" \
    "$IT_TMP/$name.msg" || it_fatal "mkmsg"
  SENT_SHA=$($IT_MAILTOOL sha "$IT_TMP/$name.body")
}

for fam in 4 6; do
  if [[ $fam == 4 ]]; then addr=$LAB_SERVER4; else addr=$LAB_SERVER6; fi

  it_section "swaks via [$addr]:25"
  new_message "swaks-v$fam" 262144 --for-swaks
  log=$IT_TMP/swaks-v$fam.log
  if it_send_swaks_esmtp "$addr" "$IT_TMP/swaks-v$fam.msg" "$log"; then
    it_pass "(v$fam) swaks --pipeline delivered a 256 KiB mail"
  else
    it_fail "(v$fam) swaks --pipeline delivered a 256 KiB mail" "$(tail -n 15 "$log")"
  fi
  it_swaks_ehlo_reply "$log" >"$log.ehlo"
  if ((IT_DAEMON)); then
    it_assert_no_line_matching "(v$fam) swaks saw no AUTH or CHUNKING" '^250[ -](AUTH|CHUNKING)' "$log.ehlo"
  else
    it_assert_contains_line "(v$fam) swaks saw AUTH (no daemon)" "250-AUTH PLAIN LOGIN" "$log.ehlo"
  fi
  it_assert_match "(v$fam) swaks saw a final EHLO line" '^250 ' "$(tail -n 1 "$log.ehlo")"
  it_check_delivered "(v$fam) swaks: stored body byte-identical (SHA-256)" "$MSGID" "$SENT_SHA"

  it_section "smtplib (VRFY, send_message) via [$addr]:25"
  new_message "smtplib-v$fam" 262144
  # send_message itself writes body lines "From ..." as ">From ..." (its
  # generator mangles From_ lines): that is what the server must store.
  SENT_SHA=$($IT_MAILTOOL sha --mangle-from "$IT_TMP/smtplib-v$fam.body")
  if ((IT_DAEMON)); then want_vrfy=$ANSWER; else want_vrfy="252 2.0.0 x"; fi
  if lab_exec client timeout 120 $IT_MAILTOOL send --send-message --vrfy x --expect-vrfy "$want_vrfy" \
    --host "$addr" --msg "$IT_TMP/smtplib-v$fam.msg" >"$IT_TMP/smtplib-v$fam.out" 2>"$IT_TMP/smtplib-v$fam.err"; then
    it_pass "(v$fam) smtplib: VRFY x got '$want_vrfy', send_message delivered a 256 KiB mail"
  else
    it_fail "(v$fam) smtplib: VRFY x got '$want_vrfy', send_message delivered a 256 KiB mail" \
      "$(cat "$IT_TMP/smtplib-v$fam.err")"
  fi
  it_check_delivered "(v$fam) smtplib: stored body byte-identical (SHA-256)" "$MSGID" "$SENT_SHA"
done

it_section "Postfix relay in the client namespace"
lab_client_postfix_up "[$LAB_SERVER4]" || it_fatal "client Postfix up"
it_say "client Postfix: config $LAB_CPF_CONF, log $LAB_CPF_MAILLOG"
declare -a relay_ids=() relay_shas=()
n_sent=0
for fam in 4 6; do
  if [[ $fam == 6 ]]; then
    lab_client_postfix_relayhost "[ipv6:$LAB_SERVER6]" || it_fatal "relayhost IPv6"
  fi
  relay_ids=()
  relay_shas=()
  k=0
  for size in 2000 262144 1048576; do
    k=$((k + 1))
    new_message "relay-v$fam-$k" "$size"
    if lab_client_sendmail "$IT_TMP/relay-v$fam-$k.msg" sender@example.org user@example.org 2>"$IT_TMP/relay.err"; then
      n_sent=$((n_sent + 1))
    else
      it_fail "(v$fam) message $k injected into the client Postfix" "$(cat "$IT_TMP/relay.err")"
    fi
    relay_ids+=("$MSGID")
    relay_shas+=("$SENT_SHA")
  done
  if lab_client_queue_wait 60; then
    it_pass "(v$fam) the client Postfix's queue drained"
  else
    it_fail "(v$fam) the client Postfix's queue drained" "$(lab_exec client postqueue -c "$LAB_CPF_CONF" -p 2>&1 | head -n 20)" \
      "$(grep -E 'status=|warning|error|fatal' "$LAB_CPF_MAILLOG" | tail -n 10)"
  fi
  for k in 0 1 2; do
    it_check_delivered "(v$fam) relayed message $((k + 1)): stored body byte-identical (SHA-256)" \
      "${relay_ids[$k]}" "${relay_shas[$k]}"
  done
done

sent=$(grep -c 'postfix/smtp\[[0-9]*\]: .*status=sent' "$LAB_CPF_MAILLOG")
it_assert_eq "the client Postfix sent every message ($n_sent), deferred and bounced none" \
  "$n_sent sent, 0 not sent" "$sent sent, $(grep -cE 'status=(deferred|bounced)' "$LAB_CPF_MAILLOG") not sent"
grep -E 'status=(deferred|bounced)' "$LAB_CPF_MAILLOG" | head -n 5 | sed 's/^/    | /'
it_assert_eq "the client Postfix relayed 3 over IPv4 and 3 over IPv6" "3 3" \
  "$(grep -F "relay=${LAB_SERVER4}[${LAB_SERVER4}]:25," "$LAB_CPF_MAILLOG" | grep -c status=sent) $(grep -F "relay=${LAB_SERVER6}[${LAB_SERVER6}]:25," "$LAB_CPF_MAILLOG" | grep -c status=sent)"
grep -E 'postfix/smtp\[[0-9]+\]: < [^ ]*: 250[ -]' "$LAB_CPF_MAILLOG" | sed -E 's/^.*: < [^ ]*: //' |
  sort | uniq -c | sed 's/^/    client Postfix got (count) | /'
if ((IT_DAEMON)); then
  it_assert_no_line_matching "the client Postfix never saw AUTH or CHUNKING" \
    'postfix/smtp\[[0-9]+\]: < [^ ]*: 250[ -](AUTH|CHUNKING)' "$LAB_CPF_MAILLOG"
else
  it_assert_match "the client Postfix saw AUTH (no daemon)" '250-AUTH PLAIN LOGIN' "$(cat "$LAB_CPF_MAILLOG")"
fi
it_assert_no_line_matching "the server received no BDAT and no AUTH" \
  'postfix/smtpd\[[0-9]+\]: < [^ ]*: (BDAT|AUTH)' "$LAB_MAILLOG"

it_daemon_report_and_finish
