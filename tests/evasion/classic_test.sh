#!/usr/bin/env bash
# The classic IDS-evasion set (Ptacek and Newsham) against the blocked verbs: one byte per
# segment, out-of-order segments, overlaps with different bytes (either copy winning at Linux),
# IP fragments (v4, v6), urgent data, a bad-checksum segment then a good one, a SYN carrying
# data, a zero window, keepalives. Control (no daemon): Postfix executes the verb. Through
# smtpguardd: it never does.
EV_GROUP=classic
source "$(dirname "${BASH_SOURCE[0]}")/lib_evasion.sh"
ev_init evasion_classic
ev_run_group "$EV_GROUP"
it_finish
