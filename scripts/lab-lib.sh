# shellcheck shell=bash
# lab-lib.sh — the smtpguard test network as a sourceable library.
#
# Three network namespaces joined by two veth pairs, addressed only with the
# ranges of DESIGN.md §8:
#
#   P-client  cl0  198.18.1.1   2001:db8:1::1
#                |
#   P-gw     gw-cl 198.18.1.254 2001:db8:1::fe   (forwarding on)
#            gw-srv 198.18.2.254 2001:db8:2::fe
#                |
#   P-server srv0  198.18.2.1   2001:db8:2::1    private Postfix on port 25
#                                                (SMTP AUTH PLAIN LOGIN, user
#                                                labuser@example.org, lab-secret-1)
#
# Optionally (lab_client_postfix_up) a second private Postfix in P-client
# relays mail to the server: a real MTA as the gateway's client.
#
# There is no default route anywhere: each end only knows the other end's
# prefix, via the gateway, so nothing can leave for any other address.
# /etc/netns/P-*/{hosts,resolv.conf} are bind-mounted by `ip netns exec`:
# names resolve from the lab's own hosts file and the only resolver is the
# namespace's own loopback, so no process in the lab ever queries a real
# DNS server.
#
# State of a lab (prefix, run dir, Postfix paths) lives in
# $LAB_STATE_DIR/<prefix>.env so that later commands and other shells find it.
# Every function returns non-zero on failure and never exits the caller.

LAB_STATE_DIR=${SMTPGUARD_LAB_STATE_DIR:-/run/smtpguard-lab}
LAB_TMP_ROOT=${SMTPGUARD_LAB_TMP:-/tmp}

LAB_CLIENT4=198.18.1.1
LAB_GW_CLIENT4=198.18.1.254
LAB_GW_SERVER4=198.18.2.254
LAB_SERVER4=198.18.2.1
LAB_CLIENT6=2001:db8:1::1
LAB_GW_CLIENT6=2001:db8:1::fe
LAB_GW_SERVER6=2001:db8:2::fe
LAB_SERVER6=2001:db8:2::1
LAB_CLIENT_NET4=198.18.1.0/24
LAB_SERVER_NET4=198.18.2.0/24
LAB_CLIENT_NET6=2001:db8:1::/64
LAB_SERVER_NET6=2001:db8:2::/64

# Interface names live inside the namespaces only, so they never collide.
LAB_IF_CLIENT=cl0
LAB_IF_GW_CLIENT=gw-cl
LAB_IF_GW_SERVER=gw-srv
LAB_IF_SERVER=srv0

LAB_HOSTNAME=mx.example.org
LAB_BANNER='$myhostname ESMTP Postfix 2.0'
LAB_MAIL_UID=65534 # nobody: owns the Maildir; Postfix's virtual(8) refuses root
LAB_MAIL_GID=65534
# SMTP AUTH on the lab's Postfix (Cyrus SASL, sasldb, PLAIN LOGIN), so that an
# EHLO reply carries `250-AUTH PLAIN LOGIN` and stripping it is observable.
LAB_SASL_USER=labuser
LAB_SASL_REALM=example.org
LAB_SASL_PASS=lab-secret-1
LAB_POSTFIX_START_TIMEOUT=${LAB_POSTFIX_START_TIMEOUT:-30}
# How long the lab's Postfix waits for a client (smtpd_timeout). Tests that keep a session
# silent for longer (tests/evasion/tcp_state_test.sh) raise it.
LAB_SMTPD_TIMEOUT=${LAB_SMTPD_TIMEOUT:-60s}

lab_log() { printf 'lab: %s\n' "$*" >&2; }

lab_default_prefix() { printf 'sglab%s' "$$"; }

lab_valid_prefix() {
  # Namespace names must stay short and shell/file safe.
  [[ $1 =~ ^[A-Za-z][A-Za-z0-9_]{0,30}$ ]] || {
    lab_log "invalid prefix '$1' (letters, digits, _; max 31; starts with a letter)"
    return 1
  }
}

lab_ns() { printf '%s-%s' "${LAB_PREFIX:?no lab loaded}" "$1"; }

lab_state_file() { printf '%s/%s.env' "$LAB_STATE_DIR" "$1"; }

# lab_load PREFIX: make PREFIX's lab the current one in this shell.
lab_load() {
  local f
  f=$(lab_state_file "$1")
  [[ -r $f ]] || {
    lab_log "no lab with prefix '$1' (no $f)"
    return 1
  }
  # shellcheck disable=SC1090
  source "$f"
}

# lab_load_current: the lab named by $LAB_STATE_DIR/current (set by `lab up`).
lab_load_current() {
  local p
  p=$(cat "$LAB_STATE_DIR/current" 2>/dev/null) || {
    lab_log "no current lab; run 'scripts/lab up' or pass --prefix"
    return 1
  }
  lab_load "$p"
}

# lab_exec client|gw|server CMD...
lab_exec() {
  local where=$1
  shift
  case $where in
    client | gw | server) ;;
    *)
      lab_log "lab_exec: unknown host '$where' (client, gw, server)"
      return 2
      ;;
  esac
  ip netns exec "$(lab_ns "$where")" "$@"
}

_lab_write_state() {
  mkdir -p "$LAB_STATE_DIR"
  {
    printf 'LAB_PREFIX=%q\n' "$LAB_PREFIX"
    printf 'LAB_RUN=%q\n' "$LAB_RUN"
    printf 'LAB_PF_CONF=%q\n' "$LAB_PF_CONF"
    printf 'LAB_MAILDIR=%q\n' "$LAB_MAILDIR"
    printf 'LAB_MAILLOG=%q\n' "$LAB_MAILLOG"
    printf 'LAB_OWNER_PID=%q\n' "${LAB_OWNER_PID:-0}"
    printf 'LAB_CPF_CONF=%q\n' "${LAB_CPF_CONF:-}"
    printf 'LAB_CPF_MAILLOG=%q\n' "${LAB_CPF_MAILLOG:-}"
  } >"$(lab_state_file "$LAB_PREFIX").tmp"
  mv "$(lab_state_file "$LAB_PREFIX").tmp" "$(lab_state_file "$LAB_PREFIX")"
}

# --- /etc/postfix/main.cf: alternate_config_directories -------------------
# `postfix -c DIR` only accepts DIR if the default main.cf lists it. Entries
# are added on up and removed on down; a lock serialises concurrent labs.

_lab_etc_postfix=${SMTPGUARD_LAB_ETC_POSTFIX:-/etc/postfix} # tests of this file point it elsewhere
_lab_main_cf=$_lab_etc_postfix/main.cf

_lab_altdirs_edit() { # add|remove DIR
  local op=$1 dir=$2
  mkdir -p "$LAB_STATE_DIR"
  (
    flock -w 20 9 || exit 1
    [[ -e $_lab_main_cf ]] || : >"$_lab_main_cf" # "No configuration" installs have none
    local cur new=() d found=0
    cur=$(postconf -c "$_lab_etc_postfix" -h alternate_config_directories 2>/dev/null) || cur=
    for d in ${cur//,/ }; do
      if [[ $d == "$dir" ]]; then
        found=1
        [[ $op == remove ]] && continue
      fi
      # Drop entries of labs whose directory is gone (crashed runs).
      if [[ $d == "$LAB_TMP_ROOT"/sglab-* && ! -d $d && $d != "$dir" ]]; then
        continue
      fi
      new+=("$d")
    done
    [[ $op == add && $found == 0 ]] && new+=("$dir")
    local joined
    joined=$(IFS=' '; printf '%s' "${new[*]}")
    [[ $joined == "${cur//,/ }" ]] && exit 0
    if [[ -z $joined ]]; then
      postconf -c "$_lab_etc_postfix" -X alternate_config_directories
    else
      postconf -c "$_lab_etc_postfix" -e "alternate_config_directories = $joined"
    fi
  ) 9>"$LAB_STATE_DIR/main.cf.lock"
}

# --- network ---------------------------------------------------------------

_lab_net_up() {
  local c g s
  c=$(lab_ns client) g=$(lab_ns gw) s=$(lab_ns server)
  local ns
  for ns in "$c" "$g" "$s"; do
    mkdir -p "/etc/netns/$ns"
    printf '127.0.0.1 localhost\n::1 localhost\n%s client.example.org client\n%s client.example.org client\n%s %s mx\n%s %s mx\n%s gw.example.org\n%s gw.example.org\n' \
      "$LAB_CLIENT4" "$LAB_CLIENT6" "$LAB_SERVER4" "$LAB_HOSTNAME" "$LAB_SERVER6" \
      "$LAB_HOSTNAME" "$LAB_GW_CLIENT4" "$LAB_GW_SERVER4" >"/etc/netns/$ns/hosts"
    printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"/etc/netns/$ns/resolv.conf"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  # Both ends are created directly inside their namespaces: no name ever
  # exists in the initial namespace, so concurrent labs cannot collide.
  ip link add name "$LAB_IF_CLIENT" netns "$c" type veth peer name "$LAB_IF_GW_CLIENT" netns "$g"
  ip link add name "$LAB_IF_SERVER" netns "$s" type veth peer name "$LAB_IF_GW_SERVER" netns "$g"

  ip netns exec "$g" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$g" sysctl -qw net.ipv6.conf.all.forwarding=1
  for ns in "$c" "$g" "$s"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_ra=0
  done

  ip -n "$c" addr add "$LAB_CLIENT4/24" dev "$LAB_IF_CLIENT"
  ip -n "$c" addr add "$LAB_CLIENT6/64" dev "$LAB_IF_CLIENT" nodad
  ip -n "$g" addr add "$LAB_GW_CLIENT4/24" dev "$LAB_IF_GW_CLIENT"
  ip -n "$g" addr add "$LAB_GW_CLIENT6/64" dev "$LAB_IF_GW_CLIENT" nodad
  ip -n "$g" addr add "$LAB_GW_SERVER4/24" dev "$LAB_IF_GW_SERVER"
  ip -n "$g" addr add "$LAB_GW_SERVER6/64" dev "$LAB_IF_GW_SERVER" nodad
  ip -n "$s" addr add "$LAB_SERVER4/24" dev "$LAB_IF_SERVER"
  ip -n "$s" addr add "$LAB_SERVER6/64" dev "$LAB_IF_SERVER" nodad
  ip -n "$c" link set "$LAB_IF_CLIENT" up
  ip -n "$g" link set "$LAB_IF_GW_CLIENT" up
  ip -n "$g" link set "$LAB_IF_GW_SERVER" up
  ip -n "$s" link set "$LAB_IF_SERVER" up

  ip -n "$c" route add "$LAB_SERVER_NET4" via "$LAB_GW_CLIENT4" dev "$LAB_IF_CLIENT"
  ip -n "$c" -6 route add "$LAB_SERVER_NET6" via "$LAB_GW_CLIENT6" dev "$LAB_IF_CLIENT"
  ip -n "$s" route add "$LAB_CLIENT_NET4" via "$LAB_GW_SERVER4" dev "$LAB_IF_SERVER"
  ip -n "$s" -6 route add "$LAB_CLIENT_NET6" via "$LAB_GW_SERVER6" dev "$LAB_IF_SERVER"
}

# lab_reachable: the client gets Postfix's greeting through the gateway,
# on both families (bounded).
lab_reachable() {
  lab_wait_smtp client "$LAB_SERVER4" 25 5 && lab_wait_smtp client "$LAB_SERVER6" 25 5
}

# --- Postfix -------------------------------------------------------------------

_lab_postfix_config() {
  local conf=$LAB_PF_CONF run=$LAB_RUN
  mkdir -p "$conf" "$run/tls" "$run/postfix/spool" "$run/postfix/data" "$LAB_MAILDIR_BASE"
  chown "$LAB_MAIL_UID:$LAB_MAIL_GID" "$LAB_MAILDIR_BASE"
  chown postfix: "$run/postfix/data" # data_directory belongs to mail_owner
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=$LAB_HOSTNAME" -keyout "$run/tls/key.pem" -out "$run/tls/cert.pem" 2>/dev/null
  chmod 600 "$run/tls/key.pem"
  if [[ -r /etc/postfix/master.cf ]]; then
    cp /etc/postfix/master.cf "$conf/master.cf"
  else
    cp /usr/share/postfix/master.cf.dist "$conf/master.cf"
  fi
  # No chroot: a chrooted smtpd would need copies of /etc files in the spool
  # (and of the SASL plugins and sasldb).
  postconf -c "$conf" -F '*/*/chroot = n'
  # Cyrus SASL: smtpd reads "$smtpd_sasl_path.conf" (smtpd.conf) from
  # cyrus_sasl_config_path, here the private config dir; the user database is
  # a private sasldb that smtpd (running as postfix) must be able to read.
  mkdir -p "$run/sasl" "$conf/sasl"
  printf '%s\n' 'pwcheck_method: auxprop' 'auxprop_plugin: sasldb' 'mech_list: PLAIN LOGIN' \
    "sasldb_path: $run/sasl/sasldb2" >"$conf/sasl/smtpd.conf"
  printf '%s' "$LAB_SASL_PASS" | saslpasswd2 -c -p -f "$run/sasl/sasldb2" -u "$LAB_SASL_REALM" "$LAB_SASL_USER"
  chown -R postfix: "$run/sasl"
  chmod 700 "$run/sasl"
  chmod 600 "$run/sasl/sasldb2"
  : >"$conf/main.cf"
  postconf -c "$conf" -e \
    "compatibility_level = 3.6" \
    "queue_directory = $run/postfix/spool" \
    "data_directory = $run/postfix/data" \
    "maillog_file = $LAB_MAILLOG" \
    "maillog_file_prefixes = $run" \
    "myhostname = $LAB_HOSTNAME" \
    "mydomain = example.org" \
    "myorigin = example.org" \
    "mydestination =" \
    "smtpd_banner = $LAB_BANNER" \
    "inet_interfaces = $LAB_SERVER4, [$LAB_SERVER6]" \
    "inet_protocols = all" \
    "mynetworks = 127.0.0.0/8 [::1]/128 $LAB_CLIENT_NET4 [${LAB_CLIENT_NET6%/*}]/64 $LAB_SERVER_NET4 [${LAB_SERVER_NET6%/*}]/64" \
    "virtual_mailbox_domains = example.org" \
    "virtual_mailbox_maps = static:box/" \
    "virtual_mailbox_base = $LAB_MAILDIR_BASE" \
    "virtual_mailbox_limit = 0" \
    "virtual_uid_maps = static:$LAB_MAIL_UID" \
    "virtual_gid_maps = static:$LAB_MAIL_GID" \
    "virtual_minimum_uid = 100" \
    "message_size_limit = 67108864" \
    "mailbox_size_limit = 0" \
    "alias_maps =" \
    "alias_database =" \
    "local_recipient_maps =" \
    "biff = no" \
    "append_dot_mydomain = no" \
    "smtpd_peername_lookup = no" \
    "smtp_dns_support_level = disabled" \
    "smtp_host_lookup = native" \
    "lmtp_host_lookup = native" \
    "default_transport = error:outbound mail is disabled in the smtpguard lab" \
    "relay_transport = error:outbound mail is disabled in the smtpguard lab" \
    "notify_classes =" \
    "smtpd_client_restrictions =" \
    "smtpd_helo_restrictions =" \
    "smtpd_sender_restrictions =" \
    "smtpd_recipient_restrictions =" \
    "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination" \
    "smtpd_timeout = $LAB_SMTPD_TIMEOUT" \
    "smtpd_error_sleep_time = 0" \
    "smtpd_soft_error_limit = 100" \
    "smtpd_hard_error_limit = 100" \
    "smtpd_junk_command_limit = 1000" \
    "smtpd_client_port_logging = yes" \
    "in_flow_delay = 0" \
    "smtpd_tls_security_level = may" \
    "smtpd_tls_chain_files = $run/tls/key.pem, $run/tls/cert.pem" \
    "smtpd_tls_loglevel = 0" \
    "smtpd_sasl_auth_enable = yes" \
    "smtpd_sasl_type = cyrus" \
    "smtpd_sasl_path = smtpd" \
    "cyrus_sasl_config_path = $conf/sasl" \
    "smtpd_sasl_local_domain = $LAB_SASL_REALM" \
    "smtpd_sasl_security_options = noanonymous" \
    "smtpd_tls_auth_only = no" \
    "broken_sasl_auth_clients = no" \
    "debug_peer_level = 2" \
    "debug_peer_list = $LAB_CLIENT_NET4, [${LAB_CLIENT_NET6%/*}]/64"
}

_lab_postfix_start() {
  _lab_postfix_config || return 1
  _lab_altdirs_edit add "$LAB_PF_CONF" || return 1
  lab_exec server postfix -c "$LAB_PF_CONF" start >"$LAB_RUN/postfix-start.log" 2>&1 || {
    lab_log "postfix start failed:"
    cat "$LAB_RUN/postfix-start.log" >&2
    tail -n 20 "$LAB_MAILLOG" >&2 2>/dev/null
    return 1
  }
  lab_wait_smtp server "$LAB_SERVER4" 25 "$LAB_POSTFIX_START_TIMEOUT" || return 1
  lab_wait_smtp server "$LAB_SERVER6" 25 5 || return 1
}

# --- a second Postfix in the client namespace: a relay (smtp client) -------------
# It has no listener (master_service_disable = inet) and no local delivery:
# everything injected with lab_client_sendmail goes to RELAYHOST through the
# gateway. Its log is LAB_CPF_MAILLOG; debug_peer_list makes its smtp client
# log the server's reply lines ("< host[addr]:25: 250-...").

# lab_relay_postfix_config CONF RUN MAILLOG HOSTNAME RELAYHOST LOCAL_TRANSPORT [SETTING...]:
# write the config of a private relay-only Postfix (no chroot, no DNS, no TLS, no local
# delivery, a log file) into CONF, with its queue and data under RUN; each SETTING
# ("name = value") is added or overrides. Shared by the lab's client Postfix and the
# benchmark's gateway relay.
lab_relay_postfix_config() {
  local conf=$1 run=$2 maillog=$3 host=$4 relay=$5 local_transport=$6
  shift 6
  mkdir -p "$conf" "$run/spool" "$run/data"
  chown postfix: "$run/data"
  if [[ -r /etc/postfix/master.cf ]]; then
    cp /etc/postfix/master.cf "$conf/master.cf"
  else
    cp /usr/share/postfix/master.cf.dist "$conf/master.cf"
  fi
  postconf -c "$conf" -F '*/*/chroot = n'
  : >"$conf/main.cf"
  postconf -c "$conf" -e \
    "compatibility_level = 3.6" \
    "queue_directory = $run/spool" \
    "data_directory = $run/data" \
    "maillog_file = $maillog" \
    "maillog_file_prefixes = $LAB_RUN" \
    "myhostname = $host" \
    "mydomain = example.org" \
    "myorigin = example.org" \
    "mydestination =" \
    "relayhost = $relay" \
    "default_transport = smtp" \
    "relay_transport = smtp" \
    "local_transport = $local_transport" \
    "alias_maps =" \
    "alias_database =" \
    "local_recipient_maps =" \
    "biff = no" \
    "append_dot_mydomain = no" \
    "notify_classes =" \
    "smtp_dns_support_level = disabled" \
    "smtp_host_lookup = native" \
    "smtp_tls_security_level = none" \
    "smtp_sasl_auth_enable = no" \
    "$@"
}

# lab_client_postfix_up [RELAYHOST]: start it (default relayhost [server v4]).
lab_client_postfix_up() {
  local relay=${1:-[$LAB_SERVER4]}
  [[ -z ${LAB_CPF_CONF:-} ]] || {
    lab_log "client Postfix already up ($LAB_CPF_CONF)"
    return 1
  }
  local run=$LAB_RUN/client-postfix
  LAB_CPF_CONF=$run/conf
  LAB_CPF_MAILLOG=$LAB_RUN/client-maillog
  _lab_write_state
  (
    set -euo pipefail
    lab_relay_postfix_config "$LAB_CPF_CONF" "$run" "$LAB_CPF_MAILLOG" client.example.org \
      "$relay" "error:no local delivery in the smtpguard lab client" \
      "inet_interfaces = all" \
      "inet_protocols = all" \
      "master_service_disable = inet" \
      "mynetworks = 127.0.0.0/8 [::1]/128" \
      "smtp_address_preference = any" \
      "debug_peer_level = 2" \
      "debug_peer_list = $LAB_SERVER4, [$LAB_SERVER6]"
  ) >"$LAB_RUN/client-postfix-config.log" 2>&1 || {
    lab_log "client Postfix config failed:"
    cat "$LAB_RUN/client-postfix-config.log" >&2
    return 1
  }
  _lab_altdirs_edit add "$LAB_CPF_CONF" || return 1
  lab_exec client postfix -c "$LAB_CPF_CONF" start >"$LAB_RUN/client-postfix-start.log" 2>&1 || {
    lab_log "client postfix start failed:"
    cat "$LAB_RUN/client-postfix-start.log" >&2
    tail -n 20 "$LAB_CPF_MAILLOG" >&2 2>/dev/null
    return 1
  }
  # Bounded wait for its queue manager: then mail injected now is delivered.
  local i
  for ((i = 0; i < 100; i++)); do
    lab_exec client postfix -c "$LAB_CPF_CONF" status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  lab_log "client Postfix did not come up"
  return 1
}

# lab_client_postfix_relayhost RELAYHOST: change its relayhost and reload.
lab_client_postfix_relayhost() {
  postconf -c "$LAB_CPF_CONF" -e "relayhost = $1" &&
    lab_exec client postfix -c "$LAB_CPF_CONF" reload >/dev/null 2>&1
}

# lab_client_sendmail MSGFILE FROM TO: inject a message (its own sendmail).
lab_client_sendmail() {
  lab_exec client timeout 30 sendmail -C "$LAB_CPF_CONF" -i -f "$2" -- "$3" <"$1"
}

# lab_client_queue_wait TIMEOUT: until its queue is empty (bounded).
lab_client_queue_wait() {
  local deadline=$((SECONDS + $1)) out
  while ((SECONDS < deadline)); do
    out=$(lab_exec client postqueue -c "$LAB_CPF_CONF" -p 2>&1)
    [[ $out == *"Mail queue is empty"* ]] && return 0
    sleep 0.2
  done
  lab_log "client Postfix queue not empty after $1s:"
  printf '%s\n' "$out" >&2
  return 1
}

# lab_read_banner HOST ADDR PORT [TIMEOUT]: print the first reply line
# (without CR) that ADDR:PORT sends, as seen from namespace HOST.
lab_read_banner() {
  local host=$1 addr=$2 port=$3 t=${4:-5}
  lab_exec "$host" timeout "$t" bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    IFS= read -r -t "$3" line <&3 || exit 1
    printf "QUIT\r\n" >&3
    printf "%s\n" "${line%$'"'\r'"'}"' _ "$addr" "$port" "$t"
}

# lab_wait_smtp HOST ADDR PORT TIMEOUT: until a 220 greeting arrives (bounded).
lab_wait_smtp() {
  local host=$1 addr=$2 port=$3 t=$4 deadline line
  deadline=$((SECONDS + t))
  while ((SECONDS < deadline)); do
    line=$(lab_read_banner "$host" "$addr" "$port" 2 2>/dev/null) || line=
    [[ $line == 220* ]] && return 0
    sleep 0.2
  done
  lab_log "no SMTP greeting from [$addr]:$port in $(lab_ns "$host") after ${t}s"
  return 1
}

# --- lifecycle -----------------------------------------------------------------

# lab_up [PREFIX]: build the lab and start Postfix; on failure, tear down
# whatever was built and return non-zero. Sets LAB_* in the caller's shell.
# With LAB_OWNER_PID set (tests, demo) the lab belongs to that process:
# lab_reap_stale removes it once that process is gone (e.g. a test killed by
# a timeout before its trap ran). Labs from `scripts/lab up` have owner 0 and
# stay until `scripts/lab down`.
lab_up() {
  local prefix=${1:-$(lab_default_prefix)}
  lab_valid_prefix "$prefix" || return 1
  if [[ -e $(lab_state_file "$prefix") ]] || ip netns list | grep -q "^$prefix-"; then
    lab_log "a lab with prefix '$prefix' exists already; run 'scripts/lab down --prefix $prefix'"
    return 1
  fi
  LAB_PREFIX=$prefix
  mkdir -p "$LAB_STATE_DIR"
  LAB_RUN=$(mktemp -d "$LAB_TMP_ROOT/sglab-$prefix.XXXXXX") || return 1
  chmod 755 "$LAB_RUN" # postfix and nobody must traverse it
  LAB_PF_CONF=$LAB_RUN/postfix/conf
  LAB_MAILDIR_BASE=$LAB_RUN/mail
  LAB_MAILDIR=$LAB_MAILDIR_BASE/box
  LAB_MAILLOG=$LAB_RUN/maillog
  LAB_CPF_CONF= LAB_CPF_MAILLOG= # lab_client_postfix_up sets them
  _lab_write_state
  lab_log "up: prefix $prefix, run dir $LAB_RUN"
  if ! (set -euo pipefail; _lab_net_up) >"$LAB_RUN/net-up.log" 2>&1; then
    lab_log "network setup failed:"
    cat "$LAB_RUN/net-up.log" >&2
    lab_down "$prefix"
    return 1
  fi
  if ! (set -euo pipefail; _lab_postfix_start); then
    lab_down "$prefix"
    return 1
  fi
  if ! lab_reachable; then
    lab_log "the client cannot reach Postfix through the gateway"
    lab_down "$prefix"
    return 1
  fi
  lab_log "up: Postfix answers on [$LAB_SERVER4]:25 and [$LAB_SERVER6]:25 in $(lab_ns server)"
}

# _lab_kill_ns_pids NS: end every process still inside the namespace we
# created (TERM, bounded wait, then KILL), by pid.
_lab_kill_ns_pids() {
  local ns=$1 pids i
  pids=$(ip netns pids "$ns" 2>/dev/null) || return 0
  [[ -z $pids ]] && return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null
  for ((i = 0; i < 30; i++)); do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [[ -z $pids ]] && return 0
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null
  sleep 0.1
}

# lab_down [PREFIX]: stop Postfix, end the lab's processes, delete its
# namespaces, run dir and state. Safe to call repeatedly and on half-built labs.
lab_down() {
  local prefix=${1:-${LAB_PREFIX:-}}
  [[ -n $prefix ]] || {
    lab_log "down: which prefix?"
    return 1
  }
  lab_valid_prefix "$prefix" || return 1
  local run="" conf="" cconf="" f
  f=$(lab_state_file "$prefix")
  if [[ -r $f ]]; then
    run=$(LAB_RUN=; source "$f"; printf '%s' "$LAB_RUN")
    conf=$(LAB_PF_CONF=; source "$f"; printf '%s' "$LAB_PF_CONF")
    cconf=$(LAB_CPF_CONF=; source "$f"; printf '%s' "${LAB_CPF_CONF:-}")
  fi
  if [[ -n $conf && -d $conf ]] && ip netns list | grep -q "^$prefix-server\b"; then
    timeout 15 ip netns exec "$prefix-server" postfix -c "$conf" stop >/dev/null 2>&1 || true
  fi
  if [[ -n $cconf && -d $cconf ]] && ip netns list | grep -q "^$prefix-client\b"; then
    timeout 15 ip netns exec "$prefix-client" postfix -c "$cconf" stop >/dev/null 2>&1 || true
  fi
  # The lab's three namespaces and any other named PREFIX-* (lab-pair.sh's gateways).
  local role ns
  for role in client gw server $(ip netns list 2>/dev/null | awk '{print $1}' |
    sed -n "s/^$prefix-\([A-Za-z0-9_]*\)$/\1/p" | grep -vxE 'client|gw|server'); do
    ns=$prefix-$role
    if ip netns list | grep -q "^$ns\b"; then
      _lab_kill_ns_pids "$ns"
      ip netns del "$ns" 2>/dev/null || lab_log "down: could not delete namespace $ns"
    fi
    rm -rf "/etc/netns/$ns"
  done
  [[ -n $conf ]] && _lab_altdirs_edit remove "$conf"
  [[ -n $cconf ]] && _lab_altdirs_edit remove "$cconf"
  if [[ -n $run && $run == "$LAB_TMP_ROOT"/sglab-"$prefix".* && -d $run ]]; then
    if [[ -n ${SMTPGUARD_LAB_KEEP:-} ]]; then
      lab_log "down: keeping $run (SMTPGUARD_LAB_KEEP set)"
    else
      rm -rf "$run"
    fi
  fi
  rm -f "$f"
  if [[ $(cat "$LAB_STATE_DIR/current" 2>/dev/null) == "$prefix" ]]; then
    rm -f "$LAB_STATE_DIR/current"
  fi
  [[ ${LAB_PREFIX:-} == "$prefix" ]] && unset LAB_PREFIX LAB_RUN LAB_PF_CONF LAB_MAILDIR LAB_MAILLOG LAB_CPF_CONF LAB_CPF_MAILLOG
  return 0
}

# lab_reap_stale: remove labs whose owner process no longer exists.
lab_reap_stale() {
  local f owner p
  for f in "$LAB_STATE_DIR"/*.env; do
    [[ -e $f ]] || continue
    owner=$(LAB_OWNER_PID=0; source "$f"; printf '%s' "${LAB_OWNER_PID:-0}")
    [[ $owner =~ ^[1-9][0-9]*$ ]] || continue
    kill -0 "$owner" 2>/dev/null && continue
    p=$(basename "$f" .env)
    lab_log "removing stale lab $p (owner pid $owner is gone)"
    lab_down "$p" || true
  done
}

# lab_list_prefixes: prefixes of every lab on this machine (state files and
# namespaces named like a lab).
lab_list_prefixes() {
  {
    local f
    for f in "$LAB_STATE_DIR"/*.env; do
      [[ -e $f ]] && basename "$f" .env
    done
    ip netns list 2>/dev/null | awk '{print $1}' | sed -n 's/^\(.*\)-\(client\|gw\|server\)$/\1/p'
  } | sort -u
}

# --- segmentation ---------------------------------------------------------------

# lab_segmentation MSS: offloads off on the endpoint veths and `advmss MSS`
# on the client's and the server's routes towards each other (v4 and v6), so
# the gateway sees real small segments instead of GSO super-packets.
lab_segmentation() {
  local mss=${1:-48} f
  for f in tso gso gro; do
    lab_exec client ethtool -K "$LAB_IF_CLIENT" "$f" off 2>/dev/null || true
    lab_exec server ethtool -K "$LAB_IF_SERVER" "$f" off 2>/dev/null || true
  done
  lab_exec client ip route change "$LAB_SERVER_NET4" via "$LAB_GW_CLIENT4" dev "$LAB_IF_CLIENT" advmss "$mss" &&
    lab_exec client ip -6 route change "$LAB_SERVER_NET6" via "$LAB_GW_CLIENT6" dev "$LAB_IF_CLIENT" advmss "$mss" &&
    lab_exec server ip route change "$LAB_CLIENT_NET4" via "$LAB_GW_SERVER4" dev "$LAB_IF_SERVER" advmss "$mss" &&
    lab_exec server ip -6 route change "$LAB_CLIENT_NET6" via "$LAB_GW_SERVER6" dev "$LAB_IF_SERVER" advmss "$mss" || return 1
  # Clamped routes do not apply to cached/open connections: new ones only.
  lab_exec client ip route flush cache 2>/dev/null || true
  lab_exec server ip route flush cache 2>/dev/null || true
}

# lab_segmentation_off: back to offloads on and default MSS.
lab_segmentation_off() {
  local f
  for f in tso gso; do
    lab_exec client ethtool -K "$LAB_IF_CLIENT" "$f" on 2>/dev/null || true
    lab_exec server ethtool -K "$LAB_IF_SERVER" "$f" on 2>/dev/null || true
  done
  lab_exec client ip route change "$LAB_SERVER_NET4" via "$LAB_GW_CLIENT4" dev "$LAB_IF_CLIENT" &&
    lab_exec client ip -6 route change "$LAB_SERVER_NET6" via "$LAB_GW_CLIENT6" dev "$LAB_IF_CLIENT" &&
    lab_exec server ip route change "$LAB_CLIENT_NET4" via "$LAB_GW_SERVER4" dev "$LAB_IF_SERVER" &&
    lab_exec server ip -6 route change "$LAB_CLIENT_NET6" via "$LAB_GW_SERVER6" dev "$LAB_IF_SERVER"
}

lab_status() {
  local p any=0
  for p in $(lab_list_prefixes); do
    any=1
    printf 'lab %s\n' "$p"
    local f
    f=$(lab_state_file "$p")
    if [[ -r $f ]]; then
      (
        # shellcheck disable=SC1090
        source "$f"
        printf '  run dir  %s\n  maildir  %s\n  maillog  %s\n' "$LAB_RUN" "$LAB_MAILDIR" "$LAB_MAILLOG"
      )
    else
      printf '  (no state file: leftover, remove with: scripts/lab down --prefix %s)\n' "$p"
    fi
    local role
    for role in client gw server; do
      if ip netns list | grep -q "^$p-$role\b"; then
        printf '  %-7s %s: %s process(es)\n' "$role" "$p-$role" "$(ip netns pids "$p-$role" | wc -l)"
      else
        printf '  %-7s %s: missing\n' "$role" "$p-$role"
      fi
    done
  done
  ((any)) || echo "no lab is up"
}
