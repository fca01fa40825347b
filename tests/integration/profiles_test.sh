#!/usr/bin/env bash
# Each built-in profile through the lab against Postfix: the dialogue the client sees must be the
# recorded golden transcript of that profile (tests/integration/golden/PROFILE.txt: banner, EHLO
# reply, the answers to goodmorning, VRFY, X-LINK2STATE, AUTH and STARTTLS), the daemon must log
# one decision line per action, and a mail sent the way a real client would (swaks, EHLO with
# HELO fallback) must arrive byte-identical wherever the profile lets mail through.
# The same transcript without the daemon is recorded as golden/none.txt, so a change of the
# lab's Postfix shows up as a failure there rather than as a confusing profile difference.
# UPDATE_GOLDEN=1 rewrites the golden files from this run (review the diff before committing).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init profiles
it_lab_up

golden_dir=$(dirname "${BASH_SOURCE[0]}")/golden
auth=$(printf '\0%s\0%s' "$LAB_SASL_USER@$LAB_SASL_REALM" "$LAB_SASL_PASS" | base64 -w0)
# STARTTLS comes last: where it passes, TLS would start and nothing else could be read.
printf '%s\n' 'EHLO client.example.org' 'goodmorning' 'VRFY labuser' 'X-LINK2STATE FIRST CHUNK=x' \
  "AUTH PLAIN $auth" 'NOOP' 'STARTTLS' >"$IT_TMP/cmds"

# transcript NAME: runs the dialogue; the transcript (C: sent, S: received) goes to stdout.
transcript() {
  lab_exec client $IT_DIALOGUE "$LAB_SERVER4" 25 "$IT_TMP/cmds" --show-sent --timeout 20 \
    2>"$IT_TMP/$1.err" | sed "s/$auth/<credentials>/"
}

compare_golden() {
  local name=$1 got=$2
  local want=$golden_dir/$name.txt
  sed 's/^/    | /' "$got"
  if [[ ${UPDATE_GOLDEN:-0} == 1 ]]; then
    cp "$got" "$want"
    it_say "golden/$name.txt rewritten"
  fi
  if diff -u "$want" "$got" >"$IT_TMP/$name.diff"; then
    it_pass "$name: the client's dialogue matches golden/$name.txt"
  else
    it_fail "$name: the client's dialogue matches golden/$name.txt" "$(cat "$IT_TMP/$name.diff")"
  fi
}

# send_mail PROFILE: one mail by swaks (ESMTP, falls back to HELO when EHLO is refused).
send_mail() {
  local name=$1 body=$IT_TMP/body.$1 msg=$IT_TMP/msg.$1 msgid="profile.$1.$$@client.example.org"
  $IT_MAILTOOL genbody --seed 7 --size 65536 "$body" || it_fatal "genbody"
  $IT_MAILTOOL mkmsg --for-swaks --body "$body" --msgid "$msgid" "$msg" || it_fatal "mkmsg"
  if lab_exec client timeout 120 swaks --ehlo client.example.org --from sender@example.org \
    --to user@example.org --server "$LAB_SERVER4" --timeout 60 --data "@$msg" --suppress-data \
    >"$IT_TMP/swaks.$name" 2>&1; then
    it_pass "$name: swaks delivered a 64 KiB mail"
  else
    it_fail "$name: swaks delivered a 64 KiB mail" "$(tail -n 15 "$IT_TMP/swaks.$name")"
  fi
  it_check_delivered "$name: the stored body is byte-identical" "$msgid" "$($IT_MAILTOOL sha "$body")"
}

it_section "no inspection (reference)"
transcript none >"$IT_TMP/none.txt"
compare_golden none "$IT_TMP/none.txt"

# profile: decisions the daemon must have logged (event names), one per line
declare -A expect_events=(
  [pix-legacy]="banner_masked command_noop"
  [pix-mailguard]="banner_masked command_masked"
  [asa-default]="banner_masked keyword_masked command_masked"
  [modern]="command_masked starttls"
)
for profile in pix-legacy pix-mailguard asa-default modern; do
  it_section "$profile"
  it_daemon_start "$profile" --verbose
  transcript "$profile" >"$IT_TMP/$profile.txt"
  compare_golden "$profile" "$IT_TMP/$profile.txt"
  send_mail "$profile"
  for event in ${expect_events[$profile]}; do
    if grep -q "$event" "$IT_DAEMON_ERR"; then
      it_pass "$profile: the daemon logged a $event decision"
    else
      it_fail "$profile: the daemon logged a $event decision" "$(grep -i decision "$IT_DAEMON_ERR" | tail -n 5)"
    fi
  done
  it_daemon_alive
  it_daemon_stop
done
it_finish
