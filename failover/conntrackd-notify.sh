#!/bin/sh
# conntrackd-notify.sh primary|backup|fault [CONNTRACKD_CONF]: keepalived's notify for a pair
# of smtpguard gateways (failover/keepalived.conf, docs/failover.md). Every call is bounded
# (timeout), so a hung conntrackd cannot hold keepalived's transition.
#
#   primary  commit the connections synced from the peer (external cache) into the kernel
#            table, with their ct mark; then flush both caches, resync the internal cache from
#            the kernel and send it all to the peer (bulk)
#   backup   make sure conntrackd runs; drop what the internal cache holds and ask the peer
#            for its table
#   fault    nothing to change: the peer becomes MASTER and commits
conf=${2:-/etc/conntrackd/conntrackd.conf}
ctd() {
	timeout 10 conntrackd -C "$conf" "$@" || logger -t smtpguard-failover "conntrackd $* failed ($?)"
}
case $1 in
primary)
	ctd -c
	ctd -f
	ctd -R
	ctd -B
	;;
backup)
	if ! timeout 10 conntrackd -C "$conf" -s >/dev/null 2>&1; then
		conntrackd -C "$conf" -d || logger -t smtpguard-failover "conntrackd did not start"
	fi
	ctd -n
	;;
fault) ;;
*)
	echo "usage: $0 primary|backup|fault [CONNTRACKD_CONF]" >&2
	exit 2
	;;
esac
exit 0
