#!/usr/bin/env bash
# Evasion through TCP state (issue 14, points 1, 5, 9, 11 and the lost SYN-ACK): RSTs and FINs
# out of window, inexact or with a bad checksum followed by 12 s of silence, a SYN with a new
# ISN mid-session, data before the stream start, an ACK beyond the server's data with a
# retransmission of other bytes, a spoofed server reply - each followed by VRFY/EXPN in the
# clear. Control (no daemon): Postfix executes the verb. Through smtpguardd: it never does.
EV_GROUP=tcp_state
source "$(dirname "${BASH_SOURCE[0]}")/lib_evasion.sh"
ev_init evasion_tcp_state
ev_run_group "$EV_GROUP"
it_finish
