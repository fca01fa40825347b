# shellcheck shell=bash
# Mail delivery through the gateway under pix-mailguard, shared by
# mail_v4_test.sh and mail_v6_test.sh: one mail by swaks, one by smtplib, both
# with HELO (pix-mailguard passes only HELO MAIL RCPT DATA RSET NOOP QUIT);
# the body Postfix stores must be byte-identical to the body sent.

# mail_test NAME SERVER_ADDR
mail_test() {
  local name=$1 server=$2
  it_init "$name"
  it_lab_up
  it_daemon_start pix-mailguard

  local sender body msg msgid sent_sha got_sha seed=11
  for sender in swaks smtplib; do
    it_section "$sender -> [$server]:25 through the gateway"
    seed=$((seed + 1))
    body=$IT_TMP/body.$sender
    msg=$IT_TMP/msg.$sender
    msgid="$sender.$name.$$@client.example.org"
    # 256 KiB of lines up to 998 chars, dot-stuffing cases included.
    $IT_MAILTOOL genbody --seed "$seed" --size 262144 "$body" || it_fatal "genbody"
    sent_sha=$($IT_MAILTOOL sha "$body")
    if [[ $sender == swaks ]]; then
      $IT_MAILTOOL mkmsg --for-swaks --body "$body" --msgid "$msgid" "$msg" || it_fatal "mkmsg"
      if it_send_swaks "$server" "$msg" "$IT_TMP/swaks.log"; then
        it_pass "swaks delivered a 256 KiB mail (HELO) via [$server]"
      else
        it_fail "swaks delivered a 256 KiB mail (HELO) via [$server]" "$(tail -n 15 "$IT_TMP/swaks.log")"
      fi
      it_say "banner seen by swaks: $(grep -m1 '^<-  220' "$IT_TMP/swaks.log" | cut -c5-)"
    else
      $IT_MAILTOOL mkmsg --body "$body" --msgid "$msgid" "$msg" || it_fatal "mkmsg"
      local secs
      if secs=$(it_send_smtplib "$server" "$msg" 2>"$IT_TMP/smtplib.err"); then
        it_pass "smtplib delivered a 256 KiB mail (HELO) via [$server] in ${secs}s"
      else
        it_fail "smtplib delivered a 256 KiB mail (HELO) via [$server]" "$(cat "$IT_TMP/smtplib.err")"
      fi
    fi
    got_sha=$(it_delivered_body_sha "$msgid")
    it_assert_eq "stored body of the $sender mail is byte-identical (SHA-256)" "$sent_sha" "$got_sha"
  done
  it_daemon_alive
  it_daemon_stop
  it_finish
}
