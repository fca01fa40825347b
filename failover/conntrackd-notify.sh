#!/bin/sh
# conntrackd-notify.sh primary|backup|fault [CONNTRACKD_CONF]: keepalived's notify for a pair
# of smtpguard gateways (failover/keepalived.conf, docs/failover.md). Every call is bounded
# (timeout), so a hung conntrackd cannot hold keepalived's transition.
#
#   primary  the peer's connections are in the kernel table already (DisableExternalCache On
#            in conntrackd.conf): resync the internal cache from the kernel table and send it
#            all to the peer (bulk), so that a peer coming back as BACKUP has every connection.
#            (With an external cache, commit it first: conntrackd -c, then -f.)
#   backup   make sure conntrackd runs; drop what the internal cache holds and ask the peer
#            for its table
#   fault    nothing to change: the peer becomes MASTER and commits
conf=${2:-/etc/conntrackd/conntrackd.conf}
ctd() {
	timeout 10 conntrackd -C "$conf" "$@" || logger -t smtpguard-failover "conntrackd $* failed ($?)"
}
case $1 in
primary)
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
