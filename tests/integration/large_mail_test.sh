#!/usr/bin/env bash
# A 20 MiB mail passes intact (SHA-256 of the stored body) through the
# gateway, first by plain kernel forwarding, then through smtpguardd
# (pix-mailguard, offloads on: the daemon sees GSO super-packets). The two
# timings are printed for information; only integrity is asserted.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init large_mail
it_lab_up

size=$((20 * 1024 * 1024))
body=$IT_TMP/body
$IT_MAILTOOL genbody --seed 20 --size "$size" "$body" || it_fatal "genbody"
sent_sha=$($IT_MAILTOOL sha "$body")
bytes=$(wc -c <"$body")
it_say "body: $bytes bytes, sha256 $sent_sha"

send_one() { # LABEL: sends, checks, prints throughput
  local label=$1 msgid="large-$1.$$@client.example.org" secs got
  $IT_MAILTOOL mkmsg --body "$body" --msgid "$msgid" "$IT_TMP/msg.$label" || it_fatal "mkmsg"
  if secs=$(it_send_smtplib "$LAB_SERVER4" "$IT_TMP/msg.$label" 2>"$IT_TMP/send.$label.err"); then
    it_pass "($label) 20 MiB mail accepted by Postfix in ${secs}s"
  else
    it_fail "($label) 20 MiB mail accepted by Postfix" "$(cat "$IT_TMP/send.$label.err")"
    secs=""
  fi
  got=$(it_delivered_body_sha "$msgid")
  it_assert_eq "($label) stored body is byte-identical (SHA-256)" "$sent_sha" "$got"
  if [[ -n $secs ]]; then
    it_say "info: ($label) $(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.1f MiB in %.2fs = %.0f Mbit/s", b / 1048576, s, (s > 0 ? b * 8 / s / 1e6 : 0) }')"
  fi
}

it_section "without the daemon (plain forwarding)"
send_one forward
it_section "through smtpguardd (pix-mailguard)"
it_daemon_start pix-mailguard
send_one daemon
it_daemon_alive
it_daemon_stop
it_finish
