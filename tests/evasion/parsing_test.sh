#!/usr/bin/env bash
# Evasion through SMTP parsing (issue 14, points 2, 3, 4, 10, 12): DATA and BDAT padded with 600
# spaces, BDAT with tabs or a bad LAST keyword, 128 pipelined RCPTs before DATA, leading blanks
# and VT inside the command line, and (with check.smuggling off) a body ended by LF . LF - each
# followed by VRFY/EXPN. Control (no daemon): Postfix executes the verb. Through smtpguardd: it
# never does.
EV_GROUP=parsing
source "$(dirname "${BASH_SOURCE[0]}")/lib_evasion.sh"
ev_init evasion_parsing
ev_run_group "$EV_GROUP"
it_finish
