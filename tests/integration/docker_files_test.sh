#!/usr/bin/env bash
# docker/Dockerfile and docker/compose.yaml without a Docker engine (the project's machines have
# none):
#  - every RUN of the Dockerfile runs a repository script that CI runs too (named by
#    scripts/test or by an integration test), or installs the .deb scripts/package builds, and
#    nothing else; the stages and the paths it copies exist;
#  - compose.yaml is YAML, builds a stage the Dockerfile has, runs roles docker/lab-host knows,
#    gives the gateway NET_ADMIN, NET_RAW and forwarding, keeps its networks internal, and uses
#    only 198.18.0.0/15 and 2001:db8::/32, with the addresses of scripts/lab-lib.sh;
#  - docker/lab-host's three roles run in network namespaces wired as compose.yaml wires the
#    containers (its addresses, its sysctls), and docs/deploy.md's swaks line, run in the
#    client, delivers a mail through smtpguardd on the gateway to the server's Postfix.
source "$(dirname "$0")/lib.sh"
it_init docker_files

ROOT=$SMTPGUARD_SOURCE
DOCKERFILE=$ROOT/docker/Dockerfile
COMPOSE=$ROOT/docker/compose.yaml
LAB_HOST=$ROOT/docker/lab-host
[[ -f $DOCKERFILE && -f $COMPOSE && -f $LAB_HOST ]] || it_fatal "docker/ files missing"
$IT_PY -c 'import yaml' 2>/dev/null || it_fatal "python3-yaml missing (scripts/install-deps)"

# ---- Dockerfile ------------------------------------------------------------------------------
it_section "Dockerfile"
# Instructions, one a line: continuation lines joined, comments dropped.
sed -e '/^[[:space:]]*#/d' "$DOCKERFILE" | awk '{ if (sub(/\\$/, "")) { acc = acc $0; next } print acc $0; acc = "" }' |
  sed '/^[[:space:]]*$/d' >"$IT_TMP/instructions"
mapfile -t stages < <(sed -n 's/^FROM [^ ]* AS \([a-z-]*\)$/\1/p' "$IT_TMP/instructions")
it_assert_eq "stages build, lab, runtime" "build lab runtime" "${stages[*]}"
it_assert_eq "every stage starts from debian:bookworm" "3" "$(grep -c '^FROM debian:bookworm AS ' "$IT_TMP/instructions")"
it_assert_eq "the last stage (docker build's default) is runtime" "runtime" \
  "$(sed -n 's/^FROM [^ ]* AS //p' "$IT_TMP/instructions" | tail -n 1)"

# The scripts CI runs: .ci/run -> scripts/test, and what scripts/test and the integration tests run.
ci_runs() { # SCRIPT: named as "scripts/NAME" by the CI entry point or a test CI runs
  grep -qF "scripts/test" "$ROOT/.ci/run" || return 1
  [[ $1 == scripts/test ]] && return 0
  grep -qF "bash $1" "$ROOT/scripts/test" && return 0
  grep -lF "$1" "$ROOT"/tests/integration/*_test.sh >/dev/null 2>&1
}
# A path in an image -> the repository path it was copied from (WORKDIR /src is the repository,
# /opt/smtpguard holds scripts/ and docker/).
repo_path() {
  local p=$1
  p=${p#/src/}
  p=${p#/opt/smtpguard/}
  printf '%s' "$p"
}
runs=0
while IFS= read -r line; do
  [[ $line == RUN\ * ]] || continue
  body=${line#RUN }
  IFS=$'\n' read -r -d '' -a parts < <(printf '%s' "$body" | sed 's/ *&& */\n/g' && printf '\0')
  for part in "${parts[@]}"; do
    part=$(sed 's/^ *//; s/ *$//' <<<"$part")
    case $part in
      "bash "*)
        script=$(repo_path "${part#bash }")
        runs=$((runs + 1))
        it_check "RUN $part: $script is in the repository" test -f "$ROOT/$script"
        it_check "RUN $part: CI runs $script too" ci_runs "$script"
        ;;
      "apt-get update"*) it_pass "RUN $part: package lists" ;;
      "apt-get install "*)
        it_assert_match "RUN $part: installs the .deb scripts/package built" \
          '^apt-get install -y -q --no-install-recommends /tmp/pkg/smtpguard_\*\.deb( nftables)?$' "$part"
        ;;
      "rm "*) it_pass "RUN $part: clean-up" ;;
      *) it_fail "RUN runs only CI's scripts" "unexpected command: $part" ;;
    esac
  done
done <"$IT_TMP/instructions"
it_assert_eq "RUN bash ...: install-deps (build and lab stages) and package" 3 "$runs"
it_assert_match "scripts/package builds in build-pkg by default" 'PKG_BUILD:-build-pkg' \
  "$(cat "$ROOT/scripts/package")"
while IFS= read -r line; do
  [[ $line == COPY\ * ]] || continue
  read -r -a words <<<"$line"
  if [[ ${words[1]} == --from=build ]]; then
    src=$(repo_path "${words[2]}")
    case $src in
      build-pkg/smtpguard_\*.deb) it_pass "COPY $src: what scripts/package prints" ;;
      *) it_check "COPY --from=build $src: in the repository" test -e "$ROOT/$src" ;;
    esac
  else
    it_check "COPY ${words[1]}: in the repository" test -e "$ROOT/${words[1]}"
  fi
done <"$IT_TMP/instructions"
it_assert_eq "the lab stage runs docker/lab-host" 'ENTRYPOINT ["bash", "/opt/smtpguard/docker/lab-host"]' \
  "$(grep -F 'lab-host' "$IT_TMP/instructions" | grep ENTRYPOINT)"
it_check "the lab stage has scripts/ beside docker/ (lab-host sources ../scripts/lab-lib.sh)" \
  grep -qx 'COPY --from=build /src/scripts /opt/smtpguard/scripts' "$IT_TMP/instructions"
it_check "the build context leaves the host's build directories out" \
  grep -qx '/build\*/' "$ROOT/docker/Dockerfile.dockerignore"

# ---- compose.yaml ----------------------------------------------------------------------------
it_section "compose.yaml"
# shellcheck source=scripts/lab-lib.sh
source "$ROOT/scripts/lab-lib.sh"
export LAB_CLIENT4 LAB_CLIENT6 LAB_GW_CLIENT4 LAB_GW_CLIENT6 LAB_GW_SERVER4 LAB_GW_SERVER6 \
  LAB_SERVER4 LAB_SERVER6 LAB_CLIENT_NET4 LAB_CLIENT_NET6 LAB_SERVER_NET4 LAB_SERVER_NET6
checks=$($IT_PY - "$COMPOSE" "$(printf '%s ' "${stages[@]}")" <<'PY'
import ipaddress, os, sys, yaml
compose = yaml.safe_load(open(sys.argv[1]))
stages = sys.argv[2].split()
env = os.environ
allowed = [ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:db8::/32")]
def result(ok, what):
    print(("ok" if ok else "FAIL") + "\t" + what)
def inside(text):
    net = ipaddress.ip_network(text, strict=False)
    return any(net.version == a.version and net.subnet_of(a) for a in allowed)
services = compose.get("services", {})
result(sorted(services) == ["client", "gateway", "server"], "services client, gateway, server")
addresses = []
for name, s in services.items():
    b = s.get("build", {})
    result(b.get("context") == ".." and b.get("dockerfile") == "docker/Dockerfile",
           f"{name}: built from docker/Dockerfile with the repository as context")
    result(b.get("target") in stages, f"{name}: build target {b.get('target')} is a Dockerfile stage")
    cmd = s.get("command", [])
    result(cmd[:1] == [name], f"{name}: runs lab-host {name}")
    result("NET_ADMIN" in s.get("cap_add", []), f"{name}: NET_ADMIN (routes)")
    for net, conf in (s.get("networks") or {}).items():
        for key in ("ipv4_address", "ipv6_address"):
            addresses.append((f"{name} {net} {key}", conf[key]))
g = services["gateway"]
result("NET_RAW" in g.get("cap_add", []), "gateway: NET_RAW (its answers and resets)")
sysctls = g.get("sysctls", {})
result(str(sysctls.get("net.ipv4.ip_forward")) == "1" and
       str(sysctls.get("net.ipv6.conf.all.forwarding")) == "1", "gateway: forwarding on")
for net, conf in compose.get("networks", {}).items():
    result(conf.get("internal") is True, f"network {net} is internal")
    result(conf.get("enable_ipv6") is True, f"network {net} has IPv6")
    for c in conf.get("ipam", {}).get("config", []):
        addresses.append((f"network {net} subnet", c["subnet"]))
        addresses.append((f"network {net} gateway", c["gateway"]))
for what, a in addresses:
    result(inside(a), f"{what} {a} is in 198.18.0.0/15 or 2001:db8::/32")
want = {
    ("client", "client-side"): (env["LAB_CLIENT4"], env["LAB_CLIENT6"]),
    ("gateway", "client-side"): (env["LAB_GW_CLIENT4"], env["LAB_GW_CLIENT6"]),
    ("gateway", "server-side"): (env["LAB_GW_SERVER4"], env["LAB_GW_SERVER6"]),
    ("server", "server-side"): (env["LAB_SERVER4"], env["LAB_SERVER6"]),
}
for (svc, net), (v4, v6) in want.items():
    conf = services[svc]["networks"][net]
    result((conf["ipv4_address"], conf["ipv6_address"]) == (v4, v6),
           f"{svc} on {net}: {v4} {v6} as scripts/lab-lib.sh says")
subnets = {net: [c["subnet"] for c in conf["ipam"]["config"]] for net, conf in compose["networks"].items()}
result(subnets == {"client-side": [env["LAB_CLIENT_NET4"], env["LAB_CLIENT_NET6"]],
                   "server-side": [env["LAB_SERVER_NET4"], env["LAB_SERVER_NET6"]]},
       "subnets as scripts/lab-lib.sh says")
# The engine's bridge takes the ipam gateway address: never one of the lab's hosts.
hosts = {a for what, a in addresses if what.endswith("_address")}
for net, conf in compose["networks"].items():
    for c in conf["ipam"]["config"]:
        result(c["gateway"] not in hosts, f"network {net}: bridge address {c['gateway']} is no lab host")
PY
) || it_fatal "compose.yaml: $checks"
while IFS=$'\t' read -r verdict what; do
  if [[ $verdict == ok ]]; then it_pass "$what"; else it_fail "$what"; fi
done <<<"$checks"
for role in client gateway server; do
  it_check "lab-host knows the role $role" grep -qE "^  $role\)" "$LAB_HOST"
done

# ---- lab-host's roles, wired as compose.yaml wires the containers ---------------------------
it_section "docker/lab-host in namespaces"
DK_PREFIX=sgdk$$
ns_c=$DK_PREFIX-client
ns_g=$DK_PREFIX-gateway
ns_s=$DK_PREFIX-server
DK_PIDS=()
SRV_RUN=$IT_TMP/server
SRV_CONF=$SRV_RUN/postfix/conf
dk_cleanup() {
  local rc=$? ns pid
  [[ -d $SRV_CONF ]] && ip netns exec "$ns_s" postfix -c "$SRV_CONF" stop >/dev/null 2>&1
  for pid in "${DK_PIDS[@]}"; do
    { kill -TERM "$pid" && wait "$pid"; } 2>/dev/null
  done
  for ns in "$ns_c" "$ns_g" "$ns_s"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
    rm -rf "/etc/netns/$ns"
  done
  [[ -d $SRV_CONF ]] && _lab_altdirs_edit remove "$SRV_CONF" 2>/dev/null
  dk_status() { return "$1"; }
  dk_status "$rc"
  _it_cleanup # reads $?: the test's exit status
}
trap dk_cleanup EXIT
# compose.yaml's addresses and sysctls, as the engine would apply them.
$IT_PY - "$COMPOSE" >"$IT_TMP/wiring" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
for name, s in c["services"].items():
    for i, (net, conf) in enumerate(s["networks"].items()):
        print("addr", name, net, f"eth{i}", conf["ipv4_address"] + "/24", conf["ipv6_address"] + "/64")
    for k, v in (s.get("sysctls") or {}).items():
        print("sysctl", name, k, v)
PY
for role in client gateway server; do
  ns=$DK_PREFIX-$role
  # No resolver but the namespace's own loopback: nothing in here queries a real DNS server.
  mkdir -p "/etc/netns/$ns"
  printf 'nameserver 127.0.0.1\n' >"/etc/netns/$ns/resolv.conf"
  ip netns add "$ns" || it_fatal "ip netns add $ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
done
# One veth pair per network: the gateway's end and the other host's.
ip link add eth0 netns "$ns_c" type veth peer name eth0 netns "$ns_g" || it_fatal "veth client-side"
ip link add eth0 netns "$ns_s" type veth peer name eth1 netns "$ns_g" || it_fatal "veth server-side"
while read -r kind role x y z; do
  ns=$DK_PREFIX-$role
  if [[ $kind == addr ]]; then # x: interface, y: IPv4, z: IPv6
    ip -n "$ns" addr add "$y" dev "$x" || it_fatal "address $y"
    ip -n "$ns" addr add "$z" dev "$x" nodad || it_fatal "address $z"
    ip -n "$ns" link set "$x" up
  else # x: sysctl, y: value
    ip netns exec "$ns" sysctl -qw "$x=$y" || it_fatal "sysctl $x=$y"
  fi
done < <(awk '$1 == "addr" { print "addr", $2, $4, $5, $6 } $1 == "sysctl" { print "sysctl", $2, $3, $4 }' "$IT_TMP/wiring")

ip netns exec "$ns_s" env LAB_RUN="$SRV_RUN" bash "$LAB_HOST" server >"$IT_TMP/server.log" 2>&1 &
DK_PIDS+=($!)
ip netns exec "$ns_g" env PATH="$SMTPGUARD_BUILD:$PATH" SMTPGUARD_ARGS="--control-socket none" \
  bash "$LAB_HOST" gateway >"$IT_TMP/gateway.log" 2>&1 &
gw_pid=$!
DK_PIDS+=("$gw_pid")
out=$(ip netns exec "$ns_c" env LAB_HOST_ONCE=1 bash "$LAB_HOST" client 2>&1)
it_assert_eq "lab-host client: routes set, exit 0" 0 "$?"
it_say "$out"
for ((i = 0; i < 150; i++)); do grep -q 'smtpguardd: ready' "$IT_TMP/gateway.log" && break; sleep 0.1; done
it_assert_match "lab-host gateway: smtpguardd --install-rules is ready" 'smtpguardd: ready' \
  "$(cat "$IT_TMP/gateway.log")"
LAB_PREFIX=$DK_PREFIX
lab_ns() { printf '%s-%s' "$DK_PREFIX" "$1"; }
lab_exec() { local h=$1; shift; ip netns exec "$(lab_ns "$h")" "$@"; }
[[ $(lab_ns server) == "$ns_s" ]] || it_fatal "namespace names"
it_check "lab-host server: Postfix greets the client through the gateway (IPv4)" \
  lab_wait_smtp client "$LAB_SERVER4" 25 30
it_check "... and over IPv6" lab_wait_smtp client "$LAB_SERVER6" 25 10

# docs/deploy.md's swaks line, in the client.
line=$(awk '/docker compose -f docker\/compose.yaml exec client swaks/ { sub(/.* exec client /, ""); print; exit }' "$ROOT/docs/deploy.md")
it_assert_match "docs/deploy.md shows a swaks line for the client" '^swaks --server 198\.18\.2\.1 ' "$line"
read -r -a swaks_cmd <<<"$line"
ip netns exec "$ns_c" timeout 60 "${swaks_cmd[@]}" >"$IT_TMP/swaks.log" 2>&1
it_assert_eq "swaks (docs/deploy.md's line) from the client: exit 0" 0 "$?"
it_assert_match "the server queued the mail" '<-  250 2\.0\.0 Ok: queued' "$(cat "$IT_TMP/swaks.log")"
delivered=""
for ((i = 0; i < 100; i++)); do
  delivered=$(find "$SRV_RUN/mail/box/new" -type f 2>/dev/null | head -n 1)
  [[ -n $delivered ]] && break
  sleep 0.1
done
it_assert_match "the mail is in the server's Maildir" '.+' "$delivered"
kill -USR1 "$gw_pid"
for ((i = 0; i < 50; i++)); do grep -q 'counters (SIGUSR1)' "$IT_TMP/gateway.log" && break; sleep 0.1; done
sleep 0.2
packets=$(sed -n '/counters (SIGUSR1)/,$p' "$IT_TMP/gateway.log" | sed -n 's/^packets = //p' | head -n 1)
it_assert_match "the gateway's smtpguardd inspected the session (packets = ${packets:-none})" \
  '^[1-9][0-9]+$' "${packets:-0}"
kill -TERM "$gw_pid"
wait "$gw_pid"
it_assert_eq "smtpguardd on the gateway exits 0" 0 "$?"

it_finish
