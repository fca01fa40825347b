#!/usr/bin/env bash
# What the rewrite does on the wire, checked at both ends:
#  pix-mailguard: the client sees the banner masked ('*' except the digits 2
#    and 0, the code and its separator); forbidden commands (goodmorning,
#    VRFY) reach Postfix as X's of the same length and Postfix answers 500.
#  asa-default: EHLO passes, STARTTLS in the EHLO reply reads XXXXXXXA; a
#    STARTTLS sent anyway reaches Postfix masked and is refused.
# The expected banner is computed from the banner the server really sends,
# read inside the server's own namespace (never through the gateway).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init rewrite
it_lab_up

it_section "reference: the server seen directly (inside its namespace)"
direct_banner=$(lab_read_banner server "$LAB_SERVER4" 25) || it_fatal "no banner from the server"
it_say "server banner:       $direct_banner"
expected_banner=$(it_mask_banner "$direct_banner")
it_say "pix-mailguard shows: $expected_banner"
lab_exec server $IT_DIALOGUE "$LAB_SERVER4" 25 -c 'EHLO client.example.org' -c QUIT >"$IT_TMP/ehlo.direct" 2>&1 ||
  it_fatal "direct EHLO failed: $(cat "$IT_TMP/ehlo.direct")"
it_assert_contains_line "precondition: Postfix advertises STARTTLS" "250-STARTTLS" "$IT_TMP/ehlo.direct"

# --- pix-mailguard ------------------------------------------------------------------
it_daemon_start pix-mailguard

it_section "pix-mailguard: banner and forbidden commands (client -> [$LAB_SERVER4])"
printf '%s\n' 'HELO client.example.org' 'goodmorning' 'VRFY x' 'NOOP' 'QUIT' >"$IT_TMP/pix.cmds"
lab_exec client $IT_DIALOGUE "$LAB_SERVER4" 25 "$IT_TMP/pix.cmds" --port-file "$IT_TMP/pix.port" \
  >"$IT_TMP/pix.out" 2>"$IT_TMP/pix.err" || it_fail "dialogue ended cleanly" "$(cat "$IT_TMP/pix.err")"
sed 's/^/    client got | /' "$IT_TMP/pix.out"
mapfile -t got <"$IT_TMP/pix.out"
if ((IT_DAEMON)); then
  it_assert_eq "client sees the masked banner" "$expected_banner" "${got[0]:-}"
  it_assert_match "goodmorning is answered 500 by the server" '^500[ -]' "${got[2]:-}"
  it_assert_match "VRFY x is answered 500 by the server" '^500[ -]' "${got[3]:-}"
else
  it_assert_eq "client sees the server's banner (no daemon)" "$direct_banner" "${got[0]:-}"
  it_assert_match "goodmorning is answered 500 by the server" '^500[ -]' "${got[2]:-}"
  it_assert_match "VRFY x is answered 252 by the server (no daemon)" '^252[ -]' "${got[3]:-}"
fi
it_assert_match "NOOP still works" '^250[ -]' "${got[4]:-}"
it_assert_match "QUIT still works" '^221[ -]' "${got[5]:-}"

it_server_commands "$(cat "$IT_TMP/pix.port")" >"$IT_TMP/pix.server"
sed 's/^/    server got | /' "$IT_TMP/pix.server"
if ((IT_DAEMON)); then
  expected=$'HELO client.example.org\nXXXXXXXXXXX\nXXXXXX\nNOOP\nQUIT'
  it_assert_eq "Postfix received the X'd lines (same length)" "$expected" "$(cat "$IT_TMP/pix.server")"
  it_assert_no_line_matching "Postfix never received goodmorning or VRFY" '^(goodmorning|VRFY)' "$IT_TMP/pix.server"
else
  expected=$'HELO client.example.org\ngoodmorning\nVRFY x\nNOOP\nQUIT'
  it_assert_eq "Postfix received the original lines (no daemon)" "$expected" "$(cat "$IT_TMP/pix.server")"
fi

it_section "pix-mailguard: banner over IPv6 and as swaks sees it"
v6=$(lab_exec client $IT_DIALOGUE "$LAB_SERVER6" 25 -c QUIT 2>"$IT_TMP/v6.err" | head -n 1)
swaks_banner=$(lab_exec client timeout 30 swaks --protocol SMTP --helo client.example.org --quit-after HELO \
  --server "$LAB_SERVER4" 2>&1 | sed -n 's/^<-  \(220.*\)$/\1/p' | head -n 1)
if ((IT_DAEMON)); then
  it_assert_eq "IPv6 client sees the masked banner" "$expected_banner" "$v6"
  it_assert_eq "swaks sees the masked banner" "$expected_banner" "$swaks_banner"
else
  it_assert_eq "IPv6 client sees the server's banner (no daemon)" "$direct_banner" "$v6"
  it_assert_eq "swaks sees the server's banner (no daemon)" "$direct_banner" "$swaks_banner"
fi
gw_banner=$(lab_read_banner gw "$LAB_SERVER4" 25 2>/dev/null || echo "(none)")
it_say "info: banner seen from the gateway's own namespace (not forwarded): $gw_banner"
it_daemon_alive
it_daemon_stop

# --- asa-default ---------------------------------------------------------------------
it_daemon_start asa-default
it_section "asa-default: STARTTLS hidden in the EHLO reply and refused"
if ((IT_DAEMON)); then
  printf '%s\n' 'EHLO client.example.org' 'STARTTLS' 'NOOP' 'QUIT' >"$IT_TMP/asa.cmds"
else
  # Without the daemon a STARTTLS would start TLS for real: leave it out.
  printf '%s\n' 'EHLO client.example.org' 'NOOP' 'QUIT' >"$IT_TMP/asa.cmds"
fi
lab_exec client $IT_DIALOGUE "$LAB_SERVER4" 25 "$IT_TMP/asa.cmds" --port-file "$IT_TMP/asa.port" \
  >"$IT_TMP/asa.out" 2>"$IT_TMP/asa.err" || it_fail "dialogue ended cleanly" "$(cat "$IT_TMP/asa.err")"
sed 's/^/    client got | /' "$IT_TMP/asa.out"
it_server_commands "$(cat "$IT_TMP/asa.port")" >"$IT_TMP/asa.server"
sed 's/^/    server got | /' "$IT_TMP/asa.server"
if ((IT_DAEMON)); then
  it_assert_contains_line "EHLO reply shows 250-XXXXXXXA" "250-XXXXXXXA" "$IT_TMP/asa.out"
  it_assert_no_line_matching "EHLO reply does not show STARTTLS" 'STARTTLS' "$IT_TMP/asa.out"
  starttls_reply=$(grep -A1 -x '250 .*' "$IT_TMP/asa.out" | sed -n 2p)
  it_assert_match "a STARTTLS sent anyway is refused (5xx)" '^5[0-9][0-9][ -]' "$starttls_reply"
  it_assert_contains_line "Postfix received STARTTLS masked (XXXXXXXX)" "XXXXXXXX" "$IT_TMP/asa.server"
  it_assert_no_line_matching "Postfix never received STARTTLS" '^STARTTLS' "$IT_TMP/asa.server"
else
  it_assert_contains_line "EHLO reply shows 250-STARTTLS (no daemon)" "250-STARTTLS" "$IT_TMP/asa.out"
fi
it_assert_contains_line "Postfix received the EHLO" "EHLO client.example.org" "$IT_TMP/asa.server"
it_daemon_alive
it_daemon_stop
it_finish
