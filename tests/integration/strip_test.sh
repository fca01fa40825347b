#!/usr/bin/env bash
# EHLO keyword stripping (a length-changing rewrite of the server's stream):
# smtpguardd --profile modern --strip-keyword AUTH,CHUNKING.
#  - the client (dialogue.py and swaks) sees the EHLO reply without the AUTH
#    and CHUNKING lines; the line before the removed final `250 CHUNKING`
#    becomes the final line (`250-` -> `250 `); every other byte the client
#    receives is exactly what the server sends (read directly inside the
#    server's namespace);
#  - everything after the shortened reply is mapped: whole mails (swaks with
#    PIPELINING, smtplib with EHLO, a pipelined MAIL/RCPT/DATA batch) arrive
#    byte-identical (SHA-256 of the stored body);
#  - IPv4 and IPv6, offloads on (GSO super-packets) and offloads off with a
#    48-byte MSS (the EHLO reply crosses the gateway in many 36-byte segments).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init strip
it_lab_up

STRIP=AUTH,CHUNKING

it_section "reference: the server seen directly (inside its namespace)"
lab_exec server $IT_DIALOGUE "$LAB_SERVER4" 25 -c 'EHLO client.example.org' -c QUIT \
  --raw-file "$IT_TMP/direct.raw" >"$IT_TMP/direct.out" 2>&1 || it_fatal "direct EHLO failed: $(cat "$IT_TMP/direct.out")"
sed 's/^/    server sends | /' "$IT_TMP/direct.out"
it_assert_contains_line "precondition: Postfix advertises 250-AUTH PLAIN LOGIN" "250-AUTH PLAIN LOGIN" "$IT_TMP/direct.out"
it_assert_contains_line "precondition: Postfix's last EHLO line is 250 CHUNKING" "250 CHUNKING" "$IT_TMP/direct.out"
lab_exec server timeout 30 swaks --server "$LAB_SERVER4" --ehlo client.example.org --auth PLAIN \
  --auth-user "$LAB_SASL_USER" --auth-password "$LAB_SASL_PASS" --quit-after AUTH >"$IT_TMP/direct.auth" 2>&1
it_assert_match "precondition: swaks --auth PLAIN succeeds directly (235)" $'\n<-  235 ' "$(cat "$IT_TMP/direct.auth")"
$IT_MAILTOOL ehlostrip --strip "$STRIP" "$IT_TMP/direct.raw" "$IT_TMP/expected.raw" || it_fatal "ehlostrip"
tr -d '\r' <"$IT_TMP/expected.raw" >"$IT_TMP/expected.out"
it_reply_lines 1 "$IT_TMP/expected.out" >"$IT_TMP/expected.ehlo"
it_say "the client must see (EHLO reply):"
sed 's/^/    expected | /' "$IT_TMP/expected.ehlo"
expected_final=$(tail -n 1 "$IT_TMP/expected.ehlo")
it_assert_match "precondition: the expected EHLO reply ends with a '250 ' line" '^250 ' "$expected_final"
if ((IT_DAEMON)); then
  want_raw=$IT_TMP/expected.raw
else
  want_raw=$IT_TMP/direct.raw
fi
want_ehlo=$IT_TMP/want.ehlo
tr -d '\r' <"$want_raw" >"$IT_TMP/want.out"
it_reply_lines 1 "$IT_TMP/want.out" >"$want_ehlo"

it_daemon_start modern --strip-keyword "$STRIP"

# ehlo_checks LABEL ADDR: the EHLO reply as dialogue.py and swaks see it.
ehlo_checks() {
  local label=$1 addr=$2 f=$IT_TMP/$1
  if ! lab_exec client $IT_DIALOGUE "$addr" 25 -c 'EHLO client.example.org' -c QUIT --timeout 20 \
    --raw-file "$f.raw" >"$f.out" 2>"$f.err"; then
    it_fail "($label) EHLO dialogue completed" "$(cat "$f.err")"
  fi
  sed 's/^/    client got | /' "$f.out"
  it_reply_lines 1 "$f.out" >"$f.ehlo"
  if ((IT_DAEMON)); then
    it_assert_no_line_matching "($label) no AUTH line in the EHLO reply" '^250[ -]AUTH' "$f.ehlo"
    it_assert_no_line_matching "($label) no CHUNKING line in the EHLO reply" '^250[ -]CHUNKING' "$f.ehlo"
    it_assert_eq "($label) the EHLO reply's final line is '$expected_final'" "$expected_final" "$(tail -n 1 "$f.ehlo")"
  else
    it_assert_contains_line "($label) AUTH advertised (no daemon)" "250-AUTH PLAIN LOGIN" "$f.ehlo"
  fi
  if cmp -s "$want_raw" "$f.raw"; then
    it_pass "($label) every byte received (greeting, EHLO reply, 221) is as expected"
  else
    it_fail "($label) every byte received (greeting, EHLO reply, 221) is as expected" \
      "expected $(wc -c <"$want_raw") bytes, got $(wc -c <"$f.raw"); diff (cat -A):" \
      "$(diff <(cat -A "$want_raw") <(cat -A "$f.raw") | head -n 20)"
  fi

  lab_exec client timeout 30 swaks --server "$addr" --ehlo client.example.org --quit-after EHLO \
    >"$f.swaks" 2>&1 || it_fail "($label) swaks --quit-after EHLO" "$(tail -n 10 "$f.swaks")"
  it_swaks_ehlo_reply "$f.swaks" >"$f.swaks.ehlo"
  it_assert_eq "($label) swaks sees the expected EHLO reply" "$(cat "$want_ehlo")" "$(cat "$f.swaks.ehlo")"
  lab_exec client timeout 30 swaks --server "$addr" --ehlo client.example.org --auth PLAIN \
    --auth-user "$LAB_SASL_USER" --auth-password "$LAB_SASL_PASS" --quit-after AUTH >"$f.swaks.auth" 2>&1
  if ((IT_DAEMON)); then
    it_assert_match "($label) swaks --auth: the server (as the client sees it) offers no AUTH" \
      'Host did not advertise authentication' "$(cat "$f.swaks.auth")"
  else
    it_assert_match "($label) swaks --auth PLAIN succeeds (no daemon)" $'\n<-  235 ' "$(cat "$f.swaks.auth")"
  fi
}

# mail_checks LABEL ADDR BODY-SIZE: swaks --pipeline, smtplib (EHLO) and a
# pipelined dialogue batch; each body must be stored byte-identical.
mail_checks() {
  local label=$1 addr=$2 size=$3 f=$IT_TMP/$1 sender seed=0 msgid sent_sha
  for sender in swaks smtplib batch; do
    seed=$((seed + 1))
    msgid="strip-$label-$sender.$$@client.example.org"
    $IT_MAILTOOL genbody --seed "$((${#label} * 100 + seed))" --size "$size" "$f.$sender.body" || it_fatal "genbody"
    sent_sha=$($IT_MAILTOOL sha "$f.$sender.body")
    case $sender in
      swaks)
        $IT_MAILTOOL mkmsg --for-swaks --body "$f.$sender.body" --msgid "$msgid" "$f.$sender.msg" || it_fatal "mkmsg"
        if it_send_swaks_esmtp "$addr" "$f.$sender.msg" "$f.$sender.log"; then
          it_pass "($label) swaks --pipeline delivered a $size-byte mail"
        else
          it_fail "($label) swaks --pipeline delivered a $size-byte mail" "$(tail -n 15 "$f.$sender.log")"
        fi
        it_assert_match "($label) swaks pipelined MAIL/RCPT/DATA" $'\n -> MAIL FROM:[^\n]*\n -> RCPT TO:[^\n]*\n -> DATA' \
          "$(cat "$f.$sender.log")"
        ;;
      smtplib)
        $IT_MAILTOOL mkmsg --body "$f.$sender.body" --msgid "$msgid" "$f.$sender.msg" || it_fatal "mkmsg"
        if lab_exec client timeout 120 $IT_MAILTOOL send --ehlo --host "$addr" --msg "$f.$sender.msg" \
          >"$f.$sender.log" 2>&1; then
          it_pass "($label) smtplib (EHLO) delivered a $size-byte mail in $(cat "$f.$sender.log")s"
        else
          it_fail "($label) smtplib (EHLO) delivered a $size-byte mail" "$(cat "$f.$sender.log")"
        fi
        ;;
      batch)
        $IT_MAILTOOL mkmsg --body "$f.$sender.body" --msgid "$msgid" "$f.$sender.msg" || it_fatal "mkmsg"
        {
          printf '%s\n' 'EHLO client.example.org' '{' 'MAIL FROM:<sender@example.org>' \
            'RCPT TO:<user@example.org>' 'DATA' '}'
          $IT_MAILTOOL wirelines "$f.$sender.msg"
          printf '%s\n' 'NOOP' 'QUIT'
        } >"$f.$sender.cmds"
        if lab_exec client $IT_DIALOGUE "$addr" 25 "$f.$sender.cmds" --timeout 30 \
          >"$f.$sender.out" 2>"$f.$sender.err"; then
          it_pass "($label) pipelined MAIL/RCPT/DATA batch: dialogue completed"
        else
          it_fail "($label) pipelined MAIL/RCPT/DATA batch: dialogue completed" "$(cat "$f.$sender.err")"
        fi
        local codes
        codes=$(grep -E '^[0-9]{3}( |$)' "$f.$sender.out" | cut -c1-3 | tr '\n' ' ')
        it_assert_eq "($label) batch reply codes (greeting EHLO MAIL RCPT DATA end-of-data NOOP QUIT)" \
          "220 250 250 250 354 250 250 221 " "$codes"
        ;;
    esac
    it_check_delivered "($label) stored body of the $sender mail is byte-identical (SHA-256)" "$msgid" "$sent_sha"
  done
}

for fam in 4 6; do
  if [[ $fam == 4 ]]; then addr=$LAB_SERVER4; else addr=$LAB_SERVER6; fi
  it_section "offloads on, IPv$fam: EHLO reply via [$addr]:25"
  ehlo_checks "v$fam" "$addr"
  it_section "offloads on, IPv$fam: mails via [$addr]:25"
  mail_checks "v$fam" "$addr" 262144
done

lab_segmentation 48 || it_fatal "lab_segmentation 48"
for fam in 4 6; do
  if [[ $fam == 4 ]]; then addr=$LAB_SERVER4; else addr=$LAB_SERVER6; fi
  it_section "MSS 48, offloads off, IPv$fam: EHLO reply via [$addr]:25"
  before=$(it_tcp_out_segs server)
  ehlo_checks "seg-v$fam" "$addr"
  after=$(it_tcp_out_segs server)
  # The dialogue's and swaks' replies together are > 900 bytes: in 36-byte
  # segments that is well over 20 segments from the server.
  ((after - before >= 20)) && it_pass "(seg-v$fam) the server sent small segments ($((after - before)))" ||
    it_fail "(seg-v$fam) the server sent small segments" "only $((after - before)) segments"
  it_section "MSS 48, offloads off, IPv$fam: mails via [$addr]:25"
  mail_checks "seg-v$fam" "$addr" 32768
done

it_daemon_report_and_finish
