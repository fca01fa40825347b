#!/usr/bin/env bash
# Evasion through TCP state (issue 14, points 1, 5, 9, 11 and the lost SYN-ACK): RSTs and FINs
# out of window, inexact or with a bad checksum followed by silence (12 s after a RST, 65 s
# after a FIN, 35 s after a SYN with a new ISN mid-session), data before the stream start, an
# ACK beyond the server's data with a retransmission of other bytes, a spoofed server reply -
# each followed by VRFY/EXPN in the clear - and a handshake whose server changed its ISN.
# Control (no daemon): Postfix executes the verb. Through smtpguardd: it never does.
# The vectors of a run play at once, so a run lasts about as long as its longest silence.
EV_GROUP=tcp_state
export LAB_SMTPD_TIMEOUT=150s # Postfix outlasts the 65 s silence (its lab default is 60 s)
source "$(dirname "${BASH_SOURCE[0]}")/lib_evasion.sh"
ev_init evasion_tcp_state
ev_run_group "$EV_GROUP"
it_finish
