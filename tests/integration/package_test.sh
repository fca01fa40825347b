#!/usr/bin/env bash
# The Debian package, built, installed and used as docs/deploy.md "Installing and operating"
# and "Fitting into an existing firewall" say (no lab needed; namespaces of its own):
#  - scripts/package builds the .deb; dpkg-deb -I / -c: name, Depends, conffile, maintainer
#    scripts that never start the service, binaries, unit, man pages, rulesets, README.md and
#    docs/*.md;
#  - the man pages cannot drift: every option of --help has its entry in smtpguardd.8 and
#    smtpguard.conf.5 (and no entry names an option that is gone), smtpguardctl's in
#    smtpguardctl.8; smtpguard.conf.5's example passes --check-config;
#  - apt-get install ./FILE.deb; the installed programs run (--version, --help);
#    systemd-analyze verify and security (exposure at most 2.0) on the installed unit, and
#    verify with each drop-in docs/deploy.md shows;
#  - the unit's ExecStart= and ExecReload= lines run as systemd runs them (systemd is not PID 1
#    here): user smtpguard, only CAP_NET_ADMIN and CAP_NET_RAW, no_new_privs, NOTIFY_SOCKET and
#    WATCHDOG_USEC: READY=1 once the rules are in, STATUS=, WATCHDOG=1, a reload, smtpguardctl,
#    STOPPING=1, rules gone, exit 0;
#  - the firewall recipes of docs/deploy.md (a)-(d) with the installed files, in a namespace;
#  - the conffile survives a reinstall and a remove, and purge leaves nothing of the package.
#
# Under CI=true nothing may skip: a missing tool is a failure.
source "$(dirname "$0")/lib.sh"
it_init package

ROOT=$SMTPGUARD_SOURCE
DEPLOY_DOC=$ROOT/docs/deploy.md
UNIT=/lib/systemd/system/smtpguardd.service
CONF=/etc/smtpguard/smtpguard.conf
DROPIN_DIR=/etc/systemd/system/smtpguardd.service.d
PKG_NS=sgpkg$$
PKG_PIDS=()
USER_EXISTED=0
getent passwd smtpguard >/dev/null && USER_EXISTED=1

need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null && continue
    [[ ${CI:-} == true ]] && it_fatal "missing tool '$t' (scripts/install-deps installs it)"
    echo "package: SKIP: missing tool '$t'" >&2
    exit 77
  done
}
need dpkg-deb dpkg-shlibdeps apt-get cpack systemd-analyze man setpriv nft iptables ip6tables \
  adduser deluser zcat

pkg_cleanup() {
  local rc=$? pid
  for pid in "${PKG_PIDS[@]}"; do
    { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null
  done
  ip netns del "$PKG_NS" 2>/dev/null
  rm -rf "$DROPIN_DIR"
  if dpkg-query -W -f='${Status}' smtpguard 2>/dev/null | grep -q installed; then
    apt-get purge -y -q smtpguard >/dev/null 2>&1
  fi
  if ((USER_EXISTED == 0)) && getent passwd smtpguard >/dev/null; then
    deluser --system --quiet smtpguard >/dev/null 2>&1
  fi
  pkg_status() { return "$1"; }
  pkg_status "$rc"
  _it_cleanup # reads $?: the test's exit status
}
trap pkg_cleanup EXIT

# deploy_block REGEX: the fenced block of docs/deploy.md whose first line matches REGEX (without
# fences).
deploy_block() {
  awk -v re="$1" '
    /^```/ { if (inb) { if (hit) exit; inb = 0; next } inb = 1; first = 1; next }
    inb && first { first = 0; if ($0 ~ re) hit = 1 }
    inb && hit { print }' "$DEPLOY_DOC"
}

# Unescapes roff: \- to -, drops font escapes.
unroff() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(em/--/g'; }

if dpkg-query -W -f='${Status}' smtpguard 2>/dev/null | grep -q installed; then
  it_say "smtpguard was installed already: purging it first"
  apt-get purge -y -q smtpguard >/dev/null 2>&1 || it_fatal "cannot purge the installed smtpguard"
fi

# ---- build -----------------------------------------------------------------------------------
it_section "scripts/package"
pkg_log=$IT_TMP/package.log
if ! bash "$ROOT/scripts/package" >"$pkg_log" 2>&1; then
  tail -n 30 "$pkg_log" >&2
  it_fatal "scripts/package failed"
fi
DEB=$(tail -n 1 "$pkg_log")
[[ -f $DEB ]] || it_fatal "scripts/package printed '$DEB', not a file"
it_say "built $DEB ($(stat -c %s "$DEB") bytes)"
version=$(sed -n 's/^project(smtpguard VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")
it_assert_eq "the .deb is build-pkg/smtpguard_VERSION_ARCH.deb" \
  "$ROOT/build-pkg/smtpguard_${version}_$(dpkg --print-architecture).deb" "$DEB"
deploy_install=$(deploy_block '^bash scripts/package' |
  sed -n 's/^\(apt-get install [^ ]*\).*/\1/p')
it_assert_eq "docs/deploy.md's apt-get install line names the file scripts/package builds" \
  "apt-get install ./${DEB#"$ROOT"/}" "$deploy_install"

# ---- what the package declares and holds ------------------------------------------------------
it_section "dpkg-deb -I / -c"
info=$(dpkg-deb -I "$DEB")
field() { dpkg-deb -f "$DEB" "$1"; }
it_assert_eq "Package: smtpguard" smtpguard "$(field Package)"
it_assert_eq "Version: $version" "$version" "$(field Version)"
depends=$(field Depends | sed 's/ *([^)]*)//g; s/, */\n/g')
for dep in adduser libnetfilter-queue1 libmnl0 libnftnl11 libboost-program-options1.74.0 libssl3 \
  libc6 libstdc++6; do
  it_assert_eq "Depends names $dep" "$dep" "$(grep -xF -- "$dep" <<<"$depends")"
done
it_assert_eq "Recommends: nftables" nftables "$(field Recommends)"
it_assert_match "Maintainer is set" '.+ <.+@.+>' "$(field Maintainer)"
ctl=$IT_TMP/control
dpkg-deb -e "$DEB" "$ctl"
it_assert_eq "conffiles lists the configuration file and the logrotate snippet" \
  "$CONF"$'\n'/etc/logrotate.d/smtpguard "$(cat "$ctl/conffiles")"
for s in postinst prerm postrm; do
  it_check "$s is executable" test -x "$ctl/$s"
  it_check "$s is valid sh" sh -n "$ctl/$s"
done
it_assert_eq "no maintainer script enables or starts the service" "" \
  "$(grep -hE '^[[:space:]]*(systemctl|deb-systemd-invoke|invoke-rc.d)[[:space:]]+(start|enable|restart|try-restart|reload)' \
    "$ctl/postinst" "$ctl/prerm" "$ctl/postrm" || true)"
dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|' >"$IT_TMP/contents"
for f in /usr/sbin/smtpguardd /usr/sbin/smtpguardctl /usr/bin/smtpguard-probe "$UNIT" "$CONF" \
  /usr/share/smtpguard/smtpguard.nft /usr/share/smtpguard/smtpguard-iptables.sh \
  /usr/share/man/man8/smtpguardd.8.gz /usr/share/man/man8/smtpguardctl.8.gz \
  /usr/share/man/man5/smtpguard.conf.5.gz /usr/share/man/man1/smtpguard-probe.1.gz \
  /usr/share/doc/smtpguard/README.md; do
  it_assert_contains_line "the package holds $f" "$f" "$IT_TMP/contents"
done
for f in "$ROOT"/docs/*.md; do
  f=/usr/share/doc/smtpguard/docs/${f##*/}
  it_assert_contains_line "the package holds $f" "$f" "$IT_TMP/contents"
done
it_assert_no_line_matching "no test or bench tool in the package" \
  'sg_|unit_tests|fault_injector' "$IT_TMP/contents"
dpkg-deb --fsys-tarfile "$DEB" | tar -xO ".$UNIT" >"$IT_TMP/unit"
it_check "the packaged unit is systemd/smtpguardd.service as it is" \
  cmp "$IT_TMP/unit" "$ROOT/systemd/smtpguardd.service"
dpkg-deb --fsys-tarfile "$DEB" | tar -xO ".$CONF" >"$IT_TMP/conf"
it_check "the packaged configuration is systemd/smtpguard.conf" \
  cmp "$IT_TMP/conf" "$ROOT/systemd/smtpguard.conf"

# ---- install ---------------------------------------------------------------------------------
it_section "apt-get install ./FILE.deb"
if (cd "$ROOT" && apt-get install -y -q "./${DEB#"$ROOT"/}") >"$IT_TMP/install.log" 2>&1; then
  it_pass "apt-get install ./${DEB#"$ROOT"/}"
else
  it_fatal "apt-get install failed: $(tail -n 20 "$IT_TMP/install.log")"
fi
it_check "the smtpguard user exists" getent passwd smtpguard
it_check "the smtpguard group exists" getent group smtpguard
it_assert_eq "smtpguardd --version (installed)" "smtpguardd $version" "$(/usr/sbin/smtpguardd --version)"
it_assert_eq "smtpguardctl --version (installed)" "smtpguardctl $version" \
  "$(/usr/sbin/smtpguardctl --version)"
it_assert_eq "smtpguard-probe --version (installed)" "smtpguard-probe $version" \
  "$(/usr/bin/smtpguard-probe --version)"
it_assert_match "smtpguardctl --help" 'Usage: smtpguardctl' "$(/usr/sbin/smtpguardctl --help)"
it_assert_match "smtpguard-probe --help" 'smtpguard-probe' "$(/usr/bin/smtpguard-probe --help 2>&1)"
it_assert_match "smtpguardctl is on root's PATH" '^/usr/sbin/smtpguardctl$' \
  "$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v smtpguardctl)"
check=$(cd / && /usr/sbin/smtpguardd --check-config 2>&1)
it_assert_match "smtpguardd --check-config reads the installed $CONF" "$CONF" "$check"

# ---- man pages -------------------------------------------------------------------------------
it_section "man pages"
for page in smtpguardd smtpguardctl smtpguard.conf smtpguard-probe; do
  it_check "man -w $page" man -w "$page"
  warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings "$page" 2>&1 >/dev/null)
  it_assert_eq "man $page renders without warnings" "" "$warn"
done
# Boost.Program_options prints each option at an indent of two ("  --name", "  -s [ --name ]").
help_options() { "$@" --help | sed -n 's/^  \(-[a-z] \[ \)\{0,1\}--\([a-z][a-z-]*\).*/\2/p' | sort -u; }
man_options() { # the .TP headings of the OPTIONS section
  zcat "$1" | unroff | awk '/^\.SH/ { on = ($2 == "OPTIONS") } on && prev == ".TP" { print } { prev = $0 }' |
    grep -oE -- '--[a-z][a-z-]*' | sed 's/^--//' | sort -u
}
diff_lines() { diff <(printf '%s\n' "$1") <(printf '%s\n' "$2") | grep '^[<>]' | tr '\n' ' '; }
daemon_help=$(help_options /usr/sbin/smtpguardd)
daemon_man=$(man_options /usr/share/man/man8/smtpguardd.8.gz)
it_assert_match "smtpguardd --help lists options" 'install-rules' "$daemon_help"
it_assert_eq "smtpguardd.8 has an entry for exactly the options of --help (< help only, > man only)" \
  "" "$(diff_lines "$daemon_help" "$daemon_man")"
ctl_help=$(help_options /usr/sbin/smtpguardctl)
ctl_man=$(man_options /usr/share/man/man8/smtpguardctl.8.gz)
it_assert_eq "smtpguardctl.8 has an entry for exactly the options of --help" \
  "" "$(diff_lines "$ctl_help" "$ctl_man")"
file_options=$(printf '%s\n' "$daemon_help" | grep -vxE 'config|check-config|help|version')
conf_man=$(zcat /usr/share/man/man5/smtpguard.conf.5.gz | unroff |
  awk '/^\.SH DAEMON OPTIONS/ { on = 1; next } /^\.SH/ { on = 0 } on' |
  sed -n 's/^\([a-z][a-z-]*\) = .*/\1/p' | sort -u)
it_assert_eq "smtpguard.conf.5 lists exactly the options a file may set" "" \
  "$(diff_lines "$file_options" "$conf_man")"
zcat /usr/share/man/man5/smtpguard.conf.5.gz | unroff |
  awk '/^\.SH EXAMPLE/ { on = 1; next } /^\.SH/ { on = 0 } on && /^\.nf/ { body = 1; next }
       on && /^\.fi/ { body = 0 } on && body' >"$IT_TMP/example.conf"
out=$(/usr/sbin/smtpguardd --check-config --config "$IT_TMP/example.conf" 2>&1)
it_assert_match "smtpguard.conf.5's example passes --check-config" 'legacy-mx' "$out"

# ---- the unit --------------------------------------------------------------------------------
it_section "systemd-analyze"
out=$(systemd-analyze verify "$UNIT" 2>&1)
rc=$?
it_assert_eq "systemd-analyze verify $UNIT: status 0, nothing to say" "0:" "$rc:$out"
sec=$(systemd-analyze security --offline=yes --threshold=20 "$UNIT" 2>&1)
rc=$?
score=$(printf '%s\n' "$sec" | sed -n 's/.*Overall exposure level for smtpguardd.service: \([0-9.]*\).*/\1/p')
it_say "systemd-analyze security: exposure $score"
it_assert_eq "systemd-analyze security: exposure at most 2.0" 0 "$rc"
mkdir -p "$DROPIN_DIR"
for name in rules-from-nftables-conf rules-from-file; do
  deploy_block "^# $DROPIN_DIR/$name.conf\$" >"$DROPIN_DIR/$name.conf"
  it_assert_match "docs/deploy.md shows the drop-in $name.conf" 'ExecStart=/usr/sbin/smtpguardd' \
    "$(cat "$DROPIN_DIR/$name.conf")"
  out=$(systemd-analyze verify "$UNIT" 2>&1)
  rc=$?
  it_assert_eq "systemd-analyze verify with docs/deploy.md's drop-in $name.conf" "0:" "$rc:$out"
  rm -f "$DROPIN_DIR/$name.conf"
done
rmdir "$DROPIN_DIR"

# ---- the unit's commands, run as systemd runs them -------------------------------------------
it_section "ExecStart= and ExecReload= as systemd runs them"
ip netns add "$PKG_NS" || it_fatal "ip netns add"
ip -n "$PKG_NS" link set lo up
# (Not for a background daemon: `in_ns CMD &` forks a subshell, and $! would be its pid. Those
# run `ip netns exec` directly, which execs.)
in_ns() { ip netns exec "$PKG_NS" "$@"; }
# As the unit says: User=smtpguard, the two capabilities (bounding, ambient), NoNewPrivileges.
as_service() {
  setpriv --reuid=smtpguard --regid=smtpguard --init-groups \
    --inh-caps=-all,+net_admin,+net_raw --ambient-caps=-all,+net_admin,+net_raw \
    --bounding-set=-all,+net_admin,+net_raw --no-new-privs -- "$@"
}
unit_lines() { sed -n "s/^$1=//p" "$UNIT"; }
read -r -a exec_start <<<"$(unit_lines ExecStart)"
mapfile -t exec_reload < <(unit_lines ExecReload)
it_assert_eq "ExecStart runs the installed daemon with the installed configuration" \
  "/usr/sbin/smtpguardd --config $CONF --install-rules" "${exec_start[*]}"
it_assert_eq "two ExecReload lines: the check, then SIGHUP" 2 "${#exec_reload[@]}"
# RuntimeDirectory=smtpguard, mode 0750, owned by the service's user. A directory of this test
# stands in for /run/smtpguard, which a daemon of the host may be using.
rundir=$IT_TMP/run/smtpguard
mkdir -p "$rundir"
chown smtpguard:smtpguard "$rundir"
chmod 0750 "$rundir"
sock=$rundir/smtpguardd.sock
# The service manager's end of NOTIFY_SOCKET: one line per datagram (newlines as '|').
notify=$IT_TMP/notify.sock
notes=$IT_TMP/notify.log
: >"$notes"
/usr/bin/python3 - "$notify" "$notes" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
with open(sys.argv[2], "a") as out:
    while True:
        data = s.recv(4096)
        out.write(data.decode(errors="replace").replace("\n", "|") + "\n")
        out.flush()
PY
PKG_PIDS+=($!)
for ((i = 0; i < 50; i++)); do [[ -S $notify ]] && break; sleep 0.1; done
chmod 755 "$IT_TMP"
daemon_log=$IT_TMP/unit-daemon.log
# sh replaces itself (exec) with setpriv, which execs the daemon: WATCHDOG_PID=$$ is its pid.
ip netns exec "$PKG_NS" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin NOTIFY_SOCKET="$notify" WATCHDOG_USEC=2000000 \
  sh -c 'export WATCHDOG_PID=$$; exec "$@"' sh \
  setpriv --reuid=smtpguard --regid=smtpguard --init-groups \
  --inh-caps=-all,+net_admin,+net_raw --ambient-caps=-all,+net_admin,+net_raw \
  --bounding-set=-all,+net_admin,+net_raw --no-new-privs -- \
  "${exec_start[@]}" --control-socket "$sock" >"$daemon_log" 2>&1 &
mainpid=$!
PKG_PIDS+=("$mainpid")
ready_tables=""
for ((i = 0; i < 150; i++)); do
  if grep -q '^READY=1' "$notes"; then
    ready_tables=$(in_ns nft list tables 2>/dev/null)
    break
  fi
  kill -0 "$mainpid" 2>/dev/null || break
  sleep 0.1
done
if grep -q '^READY=1' "$notes"; then
  it_pass "READY=1 from the daemon run as the unit says"
else
  it_fail "READY=1 from the daemon run as the unit says" "notifications: $(tr '\n' ' ' <"$notes")" \
    "daemon: $(tail -n 15 "$daemon_log")"
fi
it_assert_match "the rules are in when READY=1 comes" 'table inet smtpguard' "$ready_tables"
it_assert_match "READY=1 carries a STATUS= naming the queues" '^READY=1.*STATUS=.*queue' \
  "$(grep '^READY=1' "$notes" | head -n 1)"
sleep 3.5
pings=$(grep -c '^WATCHDOG=1$' "$notes")
it_assert_match "WATCHDOG=1 pings with WATCHDOG_USEC=2000000 (every second): $pings in 3.5 s" \
  '^([2-9]|[1-9][0-9])$' "$pings"
it_check "the control socket is there" test -S "$sock"
it_assert_eq "the control socket is 0660 smtpguard:smtpguard" "660 smtpguard:smtpguard" \
  "$(stat -c '%a %U:%G' "$sock" 2>/dev/null)"
out=$(smtpguardctl --socket "$sock" status 2>&1)
it_assert_eq "smtpguardctl status (root): exit 0" "0" "$?"
it_assert_match "smtpguardctl status names the version" "$version" "$out"
setpriv --reuid=nobody --regid=nogroup --clear-groups -- smtpguardctl --socket "$sock" status \
  >/dev/null 2>&1
it_assert_eq "smtpguardctl as a user outside group smtpguard: exit 2 (no permission)" 2 "$?"
# ExecReload: the check as the service's user, then kill -HUP $MAINPID.
read -r -a reload_check <<<"${exec_reload[0]}"
it_check "ExecReload's check (${exec_reload[0]}) as user smtpguard" as_service "${reload_check[@]}"
read -r -a reload_kill <<<"${exec_reload[1]//\$MAINPID/$mainpid}"
it_check "ExecReload's ${exec_reload[1]}" "${reload_kill[@]}"
for ((i = 0; i < 50; i++)); do grep -q 'reload' "$daemon_log" && break; sleep 0.1; done
it_assert_match "the daemon reloaded" 'reload: ' "$(grep reload "$daemon_log")"
kill -TERM "$mainpid"
for ((i = 0; i < 100; i++)); do kill -0 "$mainpid" 2>/dev/null || break; sleep 0.1; done
wait "$mainpid"
it_assert_eq "the daemon exits 0 on SIGTERM" 0 "$?"
it_assert_match "STOPPING=1 when it stops" '^STOPPING=1' "$(grep STOPPING "$notes")"
it_assert_eq "no smtpguard table left" "" "$(in_ns nft list tables | grep smtpguard)"
it_say "notifications: $(sort "$notes" | uniq -c | tr -s ' \n' ' ')"

# ---- docs/deploy.md: fitting into an existing firewall, with the installed files -------------
it_section "firewall recipes (docs/deploy.md (a)-(d))"
# The queue statement: native, or (kernel without nft_queue) the same file with accept in its
# place, so that the rest of it is still loaded and checked.
nft_file=/usr/share/smtpguard/smtpguard.nft
if in_ns nft -c -f "$nft_file" >/dev/null 2>&1; then
  loadable=$nft_file
else
  it_say "no native nft queue statement: loading smtpguard.nft with accept in place of queue"
  loadable=$IT_TMP/smtpguard-noqueue.nft
  sed -E 's/queue num 0-1( bypass)?$/accept/' "$nft_file" >"$loadable"
fi
# (a) the host ruleset of docs/deploy.md beside the daemon's own table
deploy_block '^table inet filter ' >"$IT_TMP/filter.nft"
it_check "(a) docs/deploy.md's host ruleset loads" in_ns nft -f "$IT_TMP/filter.nft"
ip netns exec "$PKG_NS" /usr/sbin/smtpguardd --queues 0-1 --install-rules --control-socket "$sock" \
  >"$IT_TMP/a.log" 2>&1 &
apid=$!
PKG_PIDS+=("$apid")
for ((i = 0; i < 100; i++)); do grep -q 'smtpguardd: ready' "$IT_TMP/a.log" && break; sleep 0.1; done
ruleset=$(in_ns nft list ruleset 2>/dev/null)
it_assert_match "(a) the host's forward chain at priority filter" \
  'table inet filter.*hook forward priority filter; policy drop' "$(tr '\n' ' ' <<<"$ruleset")"
it_assert_match "(a) smtpguard's at filter + 10" \
  'table inet smtpguard.*hook forward priority filter \+ 10' "$(tr '\n' ' ' <<<"$ruleset")"
printf 'flush ruleset\n' | cat - "$IT_TMP/filter.nft" >"$IT_TMP/nftables.conf"
in_ns nft -f "$IT_TMP/nftables.conf"
# The flush deletes inet smtpguard; the daemon puts it back at once (docs/deploy.md (a)).
for ((i = 0; i < 40; i++)); do
  in_ns nft list tables 2>/dev/null | grep -q 'inet smtpguard' && break
  sleep 0.05
done
it_assert_match "(a) after a reload of a ruleset that starts with flush ruleset the daemon's table is back, beside the host's" \
  'filter.*smtpguard' "$(in_ns nft list tables | tr '\n' ' ')"
for ((i = 0; i < 20; i++)); do grep -q 'smtpguardd: rules: table inet smtpguard was removed' "$IT_TMP/a.log" && break; sleep 0.05; done
it_assert_match "(a) ... and the daemon says so" \
  'smtpguardd: rules: table inet smtpguard was removed under the daemon \(nft flush ruleset\?\); reinstalled in [0-9]+ ms' \
  "$(cat "$IT_TMP/a.log")"
kill -TERM "$apid"
wait "$apid"
it_assert_eq "(a) the daemon exits 0" 0 "$?"
it_assert_eq "(a) ... and leaves no table smtpguard" "" "$(in_ns nft list tables | grep smtpguard)"
# (b) include from /etc/nftables.conf
include=$(deploy_block '^include "/usr/share/smtpguard/smtpguard.nft"$')
it_assert_eq "(b) docs/deploy.md's include line" "include \"$nft_file\"" "$include"
{
  printf 'flush ruleset\n'
  cat "$IT_TMP/filter.nft"
  printf '%s\n' "${include//$nft_file/$loadable}"
} >"$IT_TMP/nftables.conf"
it_check "(b) an nftables.conf with the include loads" in_ns nft -f "$IT_TMP/nftables.conf"
it_check "(b) ... and loads again (it replaces itself)" in_ns nft -f "$IT_TMP/nftables.conf"
it_assert_match "(b) both tables present" 'filter.*smtpguard' "$(in_ns nft list tables | tr '\n' ' ')"
# (b) the unit loading the file: the drop-in's commands, as the service's user
deploy_block "^# $DROPIN_DIR/rules-from-file.conf\$" >"$IT_TMP/rules-from-file.conf"
in_ns nft delete table inet smtpguard
for key in ExecStartPost ExecStop ExecStopPost; do
  line=$(sed -n "s/^$key=-\{0,1\}//p" "$IT_TMP/rules-from-file.conf")
  read -r -a cmd <<<"${line//$nft_file/$loadable}"
  it_check "(b) drop-in $key=$line, as user smtpguard" in_ns setpriv --reuid=smtpguard \
    --regid=smtpguard --init-groups --inh-caps=-all,+net_admin,+net_raw \
    --ambient-caps=-all,+net_admin,+net_raw --bounding-set=-all,+net_admin,+net_raw \
    --no-new-privs -- "${cmd[@]}"
done
it_assert_eq "(b) the drop-in's commands leave no smtpguard table" "" \
  "$(in_ns nft list tables | grep smtpguard)"
# (c) iptables
ipt_script=/usr/share/smtpguard/smtpguard-iptables.sh
mapfile -t ipt_doc < <(deploy_block '^/usr/share/smtpguard/smtpguard-iptables.sh add' |
  sed 's/ *#.*//')
it_assert_eq "(c) docs/deploy.md shows add, -S, disarm, remove" 4 "${#ipt_doc[@]}"
for line in "${ipt_doc[@]}"; do
  read -r -a cmd <<<"$line"
  out=$(in_ns "${cmd[@]}" 2>&1)
  it_assert_eq "(c) $line" 0 "$?"
  if [[ $line == "iptables -t security -S SMTPGUARD" ]]; then
    it_assert_eq "(c) the SMTPGUARD chain is what docs/deploy.md shows" \
      "$(deploy_block '^-N SMTPGUARD$')" "$out"
  fi
done
it_assert_eq "(c) nothing left after remove" "" \
  "$(in_ns iptables -w -t security -S 2>/dev/null | grep SMTPGUARD)"
# (d) a mail server on the gateway: input and output hooks
read -r -a cmd <<<"$(deploy_block '^smtpguardd --queues 0-1 --hooks input,output')"
ip netns exec "$PKG_NS" "${cmd[@]}" --control-socket none >"$IT_TMP/d.log" 2>&1 &
dpid=$!
PKG_PIDS+=("$dpid")
for ((i = 0; i < 100; i++)); do grep -q 'smtpguardd: ready' "$IT_TMP/d.log" && break; sleep 0.1; done
chains=$(in_ns nft list table inet smtpguard 2>/dev/null | sed -n 's/^\tchain \([a-z_]*\) {/\1/p' | sort | tr '\n' ' ')
it_assert_eq "(d) ${cmd[*]}: input and output chains" "input input_mark output output_mark " "$chains"
kill -TERM "$dpid"
wait "$dpid"
it_assert_eq "(d) the daemon exits 0" 0 "$?"

# ---- conffile, remove, purge -----------------------------------------------------------------
it_section "conffile, remove, purge"
echo "# changed by package_test" >>"$CONF"
(cd "$ROOT" && apt-get install -y -q --reinstall "./${DEB#"$ROOT"/}") >>"$IT_TMP/install.log" 2>&1
it_assert_eq "reinstall keeps the changed conffile" "# changed by package_test" "$(tail -n 1 "$CONF")"
deploy_block '^apt-get remove smtpguard' | sed 's/ *#.*//' >"$IT_TMP/uninstall"
mapfile -t uninstall <"$IT_TMP/uninstall"
it_assert_eq "docs/deploy.md: remove, purge, deluser" 3 "${#uninstall[@]}"
read -r -a cmd <<<"${uninstall[0]}"
"${cmd[@]}" -y -q >>"$IT_TMP/install.log" 2>&1
it_assert_eq "${uninstall[0]}: the binaries are gone" "" "$(ls /usr/sbin/smtpguardd 2>/dev/null)"
it_assert_eq "${uninstall[0]}: the changed conffile stays" "# changed by package_test" \
  "$(tail -n 1 "$CONF" 2>/dev/null)"
read -r -a cmd <<<"${uninstall[1]}"
"${cmd[@]}" -y -q >>"$IT_TMP/install.log" 2>&1
it_assert_eq "${uninstall[1]}: dpkg forgets the package" "" \
  "$(dpkg-query -W -f='${Status}' smtpguard 2>/dev/null)"
left=""
while IFS= read -r f; do
  [[ -z $f || $f == */ ]] && continue
  [[ -e $f ]] && left+="$f "
done <"$IT_TMP/contents"
for d in /etc/smtpguard /usr/share/smtpguard /usr/share/doc/smtpguard; do
  [[ -e $d ]] && left+="$d "
done
it_assert_eq "${uninstall[1]}: nothing of the package is left" "" "$left"
if ((USER_EXISTED == 0)); then
  read -r -a cmd <<<"${uninstall[2]}"
  it_check "${uninstall[2]}" "${cmd[@]}"
  it_assert_eq "... the user is gone" "" "$(getent passwd smtpguard)"
fi

it_finish
