#!/usr/bin/env bash
# The same scripted dialogue (tests/integration/dialogue.py, pix-mailguard)
#   (a) normal writes, offloads on (the gateway sees up to 64 KiB per packet)
#   (b) one byte per write with TCP_NODELAY
#   (c) MSS clamped to 48 (36-byte payloads) and offloads off on the endpoints
# must give the client identical transcripts (Postfix queue ids normalised),
# Postfix the same received command lines, and deliver identical bodies.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init segmentation
it_lab_up
it_daemon_start pix-mailguard

long_line=$(printf 'L%.0s' {1..300})
make_commands() { # RUN-NAME
  cat <<EOC
HELO client.example.org
goodmorning
VRFY postmaster
NOOP
MAIL FROM:<sender@example.org>
RCPT TO:<user@example.org>
DATA
From: sender@example.org
To: user@example.org
Subject: segmentation
Message-ID: <seg-$1.$$@client.example.org>

first line
..a line that starts with a dot (dot-stuffed: these are wire lines)
..
$long_line
QUIT and RSET inside the body are not commands
.
RSET
NOOP
QUIT
EOC
}

declare -A transcript server_cmds segs
run_case() { # NAME DIALOGUE-OPTIONS...
  local name=$1
  shift
  make_commands "$name" >"$IT_TMP/$name.cmds"
  local before after
  before=$(it_tcp_out_segs client)
  if ! lab_exec client $IT_DIALOGUE "$LAB_SERVER4" 25 "$IT_TMP/$name.cmds" --timeout 20 \
    --port-file "$IT_TMP/$name.port" "$@" >"$IT_TMP/$name.out" 2>"$IT_TMP/$name.err"; then
    it_fail "($name) dialogue completed" "$(cat "$IT_TMP/$name.err")"
  fi
  after=$(it_tcp_out_segs client)
  segs[$name]=$((after - before))
  transcript[$name]=$(sed -E 's/(queued as )[0-9A-Za-z]+/\1QUEUEID/' "$IT_TMP/$name.out")
  server_cmds[$name]=$(it_server_commands "$(cat "$IT_TMP/$name.port")")
  it_say "($name) $(wc -l <"$IT_TMP/$name.out") reply lines, client sent ${segs[$name]} TCP segments"
}

it_section "(a) normal writes"
run_case a
it_section "(b) 1-byte writes, TCP_NODELAY"
run_case b --byte-writes --nodelay
it_section "(c) MSS 48, offloads off on the endpoint veths"
lab_segmentation 48 || it_fatal "lab_segmentation failed"
run_case c

it_section "comparison"
printf '%s\n' "${transcript[a]}" | sed 's/^/    (a) client got | /'
printf '%s\n' "${server_cmds[a]}" | sed 's/^/    (a) server got | /'
it_assert_eq "transcript (b) == (a)" "${transcript[a]}" "${transcript[b]}"
it_assert_eq "transcript (c) == (a)" "${transcript[a]}" "${transcript[c]}"
it_assert_eq "server commands (b) == (a)" "${server_cmds[a]}" "${server_cmds[b]}"
it_assert_eq "server commands (c) == (a)" "${server_cmds[a]}" "${server_cmds[c]}"
# The dialogue is long enough that (b) and (c) only pass if really segmented.
bytes=$(($(wc -c <"$IT_TMP/a.cmds") + $(wc -l <"$IT_TMP/a.cmds")))
it_assert_match "(b) really sent small segments (${segs[b]} for $bytes bytes)" '^[0-9]+$' "${segs[b]}"
(( segs[b] * 4 >= bytes )) && it_pass "(b) >= 1 segment per 4 bytes" || it_fail "(b) >= 1 segment per 4 bytes" "segments: ${segs[b]}, bytes: $bytes"
(( segs[c] * 36 >= bytes )) && it_pass "(c) >= 1 segment per 36 bytes" || it_fail "(c) >= 1 segment per 36 bytes" "segments: ${segs[c]}, bytes: $bytes"

if ((IT_DAEMON)); then
  it_assert_eq "banner masked" "$(it_mask_banner "$(lab_read_banner server "$LAB_SERVER4" 25)")" \
    "$(sed -n 1p "$IT_TMP/a.out")"
  it_assert_match "Postfix received goodmorning and VRFY masked" \
    $'^HELO client.example.org\nXXXXXXXXXXX\nXXXXXXXXXXXXXXX\nNOOP\n' "${server_cmds[a]}"
else
  it_assert_match "Postfix received goodmorning and VRFY (no daemon)" \
    $'^HELO client.example.org\ngoodmorning\nVRFY postmaster\nNOOP\n' "${server_cmds[a]}"
fi

shas=""
for name in a b c; do
  shas+="$(it_delivered_body_sha "seg-$name.$$@client.example.org") "
done
read -r sha_a sha_b sha_c <<<"$shas"
it_assert_match "mail (a) delivered" '^[0-9a-f]{64}$' "$sha_a"
it_assert_eq "stored body (b) == (a)" "$sha_a" "$sha_b"
it_assert_eq "stored body (c) == (a)" "$sha_a" "$sha_c"

it_daemon_alive
it_daemon_stop
it_finish
