#!/usr/bin/env bash
# Mail over IPv6 through smtpguardd (pix-mailguard): swaks and smtplib, the
# stored body is byte-identical to the one sent.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$IT_DIR/mail_common.sh"
mail_test mail_v6 "$LAB_SERVER6"
