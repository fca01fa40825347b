#pragma once
// What smtpguard-probe can find, declared once: every kind of finding with its title, whether
// it is evidence of inspection in the path, the symptoms it causes (Microsoft KB 320027's list,
// Cisco's note on XXXXXXXA) and how to fix it. The classifier only picks kinds and adds the
// evidence; the report only renders.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sg::probe {

// X(enum name, id in JSON, text, source)
#define SG_PROBE_SYMPTOMS(X)                                                                    \
  X(kNoInboundMail, "no_inbound_mail", "You cannot receive Internet-based e-mail messages.",    \
    "KB 320027")                                                                                \
  X(kSpecificDomains, "specific_domains",                                                       \
    "You cannot send or receive e-mail to or from specific domains.", "KB 320027")              \
  X(kAttachments, "attachments",                                                                \
    "You cannot send messages with attachments; attachments arrive missing or garbled.",        \
    "KB 320027")                                                                                \
  X(kTelnet, "telnet_port25",                                                                   \
    "A telnet session to port 25 fails or misbehaves, especially with a character-mode "        \
    "telnet client.",                                                                           \
    "KB 320027")                                                                                \
  X(kEhloUnrecognized, "ehlo_unrecognized", "EHLO is answered 'Command unrecognized' or 'OK'.", \
    "KB 320027")                                                                                \
  X(kRelayDenied, "relay_denied",                                                               \
    "Users who authenticate get '550 5.7.1 Relaying denied' from the local server: without "    \
    "AUTH the server takes them for relaying from a non-local domain.",                         \
    "KB 320027")                                                                                \
  X(kDuplicates, "duplicate_messages",                                                          \
    "Duplicate messages: outgoing mail sent five or six times, duplicate incoming SMTP "        \
    "messages (the sender retries after the device drops the end of data, KB 295725).",         \
    "KB 320027")                                                                                \
  X(kOutlook, "outlook_0x800ccc79",                                                             \
    "Outlook and Outlook Express clients report error 0x800CCC79 when they send mail.",         \
    "KB 320027")                                                                                \
  X(kNdr561, "ndr_554_5_6_1",                                                                   \
    "Non-delivery reports '554 5.6.1 Body type not supported by remote host' (8BITMIME).",      \
    "KB 320027")                                                                                \
  X(kLinkState, "link_state",                                                                   \
    "Link state routing between Exchange routing groups fails: the X-LINK2STATE verb is not "   \
    "passed.",                                                                                  \
    "KB 320027")                                                                                \
  X(kServerAuth, "server_auth",                                                                 \
    "Servers fail to authenticate to each other over a routing group connector.", "KB 320027")  \
  X(kNoTls, "no_tls",                                                                           \
    "TLS fails for incoming and outgoing mail ('XXXXXXXA' after EHLO, '500 #5.5.1 command "     \
    "not recognized' after STARTTLS): mail travels unencrypted or is deferred.",                \
    "Cisco ESA note on XXXXXXXA")                                                               \
  X(kTlsBroken, "tls_broken",                                                                   \
    "STARTTLS is accepted but the handshake fails: senders that require TLS defer the mail, "   \
    "others may not retry in clear text.",                                                      \
    "RFC 3207")                                                                                 \
  X(kSlower, "slower_delivery",                                                                 \
    "Every command waits for its own reply: delivery to many recipients takes many round "      \
    "trips.",                                                                                   \
    "RFC 2920")                                                                                 \
  X(kSmtputf8, "smtputf8",                                                                      \
    "Mail with internationalised addresses (SMTPUTF8) is refused or bounced.", "RFC 6531")

enum class Symptom : uint8_t {
#define SG_X(name, id, text, source) name,
  SG_PROBE_SYMPTOMS(SG_X)
#undef SG_X
};

struct SymptomInfo {
  std::string_view id;
  std::string_view text;
  std::string_view source;
};
const SymptomInfo& info(Symptom s);

// Fixes shared by several kinds.
#define SG_FIX_MAILGUARD                                                                       \
  "Cisco PIX: 'no fixup protocol smtp 25' (PIX 4.0/4.1: remove the 'mailhost' command). "      \
  "Cisco ASA: 'no inspect esmtp' in class inspection_default, or an esmtp inspect policy-map " \
  "that allows what mail needs. smtpguard: the modern profile (the default)."
#define SG_FIX_KEYWORD                                                                       \
  "Cisco ASA: the esmtp policy-map's 'match ehlo-reply-parameter others' masks every "       \
  "keyword outside its list: remove it. Cisco PIX: 'no fixup protocol smtp 25'. smtpguard: " \
  "the modern profile passes STARTTLS AUTH 8BITMIME PIPELINING CHUNKING SMTPUTF8; drop the " \
  "keyword from --strip-keyword."
#define SG_FIX_TLS                                                                           \
  "Cisco ASA: 'policy-map type inspect esmtp MAP' > 'parameters' > 'allow-tls' (inspection " \
  "stops at STARTTLS), or 'no inspect esmtp'. Cisco PIX: 'no fixup protocol smtp 25'. "      \
  "smtpguard: the modern profile passes STARTTLS."
#define SG_FIX_AUTH                                                                         \
  "Cisco PIX Mailguard removes AUTH: 'no fixup protocol smtp 25'. Cisco ASA: keep AUTH in " \
  "the esmtp policy-map's allowed commands and EHLO parameters. smtpguard: drop AUTH from " \
  "--strip-keyword / --answer-verb / --reset-verb."

// X(enum name, id in JSON, evidence of inspection, title, symptoms, fix)
#define SG_PROBE_FINDINGS(X)                                                                      \
  X(kBannerMasked, "banner_masked", true,                                                         \
    "Banner masked: asterisks except the digits 2 and 0 (Cisco PIX 5.1+ / ASA mask-banner)",      \
    (kNoInboundMail, kSpecificDomains, kTelnet, kDuplicates),                                     \
    "Cisco ASA: 'policy-map type inspect esmtp MAP' > 'parameters' > 'no mask-banner'. "          \
    "Cisco PIX: 'no fixup protocol smtp 25'. smtpguard: the modern profile leaves the banner "    \
    "alone.")                                                                                     \
  X(kBannerAsterisks, "banner_asterisks", true, "Banner all asterisks (Cisco PIX 4.x Mailguard)", \
    (kNoInboundMail, kSpecificDomains, kTelnet, kDuplicates), SG_FIX_MAILGUARD)                   \
  X(kBannerCmap, "banner_cmap", true, "Old Cisco PIX Mailguard banner (SMTP/cmap ... read)",      \
    (kNoInboundMail, kSpecificDomains, kTelnet, kDuplicates), SG_FIX_MAILGUARD)                   \
  X(kUnknownCommandOk, "unknown_command_ok", true,                                                \
    "Unknown command answered OK (Cisco PIX 4.x turns blocked commands into NOOP)",               \
    (kEhloUnrecognized, kTelnet, kDuplicates), SG_FIX_MAILGUARD)                                  \
  X(kCommandMasked, "command_masked", true, "Commands masked on the way: the server saw X's",     \
    (kLinkState, kServerAuth), SG_FIX_MAILGUARD)                                                  \
  X(kEhloRefused, "ehlo_refused", true,                                                           \
    "EHLO refused, HELO accepted: every ESMTP extension is hidden",                               \
    (kEhloUnrecognized, kNoTls, kNdr561, kAttachments, kRelayDenied, kOutlook), SG_FIX_MAILGUARD) \
  X(kEhloAnsweredOk, "ehlo_answered_ok", true,                                                    \
    "EHLO answered like NOOP: no greeting, no extensions (Cisco PIX 4.x)",                        \
    (kEhloUnrecognized, kNoTls, kNdr561, kAttachments, kRelayDenied, kOutlook), SG_FIX_MAILGUARD) \
  X(kEhloKeywordMasked, "ehlo_keyword_masked", true,                                              \
    "EHLO keywords masked (XXXXXXXA: Cisco ASA inspect esmtp)", (kSpecificDomains),               \
    SG_FIX_KEYWORD)                                                                               \
  X(kEhloKeywordMissing, "ehlo_keyword_missing", true,                                            \
    "EHLO keywords removed on the way (the server offers them directly)", (kSpecificDomains),     \
    SG_FIX_KEYWORD)                                                                               \
  X(kStarttlsHidden, "starttls_hidden", true, "STARTTLS hidden: mail cannot be encrypted",        \
    (kNoTls), SG_FIX_TLS)                                                                         \
  X(kStarttlsRefused, "starttls_refused", true, "STARTTLS refused when sent anyway", (kNoTls),    \
    SG_FIX_TLS)                                                                                   \
  X(kTlsFailed, "tls_failed", true, "TLS handshake failed after the server's 220",                \
    (kTlsBroken, kNoTls),                                                                         \
    "A device that goes on inspecting after STARTTLS breaks the handshake. Cisco ASA: "           \
    "'allow-tls'. smtpguard lets a connection bypass inspection once STARTTLS succeeds. "         \
    "Check the server's own TLS with --direct.")                                                  \
  X(kAuthHidden, "auth_hidden", true, "AUTH hidden: clients cannot authenticate",                 \
    (kRelayDenied, kOutlook, kServerAuth), SG_FIX_AUTH)                                           \
  X(kAuthBlocked, "auth_blocked", true, "AUTH command blocked on the way",                        \
    (kRelayDenied, kOutlook, kServerAuth), SG_FIX_AUTH)                                           \
  X(k8bitmimeHidden, "8bitmime_hidden", true, "8BITMIME hidden", (kNdr561, kAttachments),         \
    SG_FIX_KEYWORD)                                                                               \
  X(kBinarymimeHidden, "binarymime_hidden", true, "BINARYMIME hidden", (kAttachments),            \
    SG_FIX_KEYWORD)                                                                               \
  X(kChunkingHidden, "chunking_hidden", true, "CHUNKING (BDAT) hidden", (kAttachments, kSlower),  \
    SG_FIX_KEYWORD)                                                                               \
  X(kPipeliningHidden, "pipelining_hidden", true, "PIPELINING hidden", (kSlower), SG_FIX_KEYWORD) \
  X(kSmtputf8Hidden, "smtputf8_hidden", true, "SMTPUTF8 hidden", (kSmtputf8), SG_FIX_KEYWORD)     \
  X(kExchangeVerbsBlocked, "exchange_verbs_blocked", true,                                        \
    "Exchange verbs blocked (X-LINK2STATE, XEXCH50, X-EXPS)", (kLinkState, kServerAuth),          \
    "Matters only where Exchange servers talk to each other through the device. Cisco: 'no "      \
    "fixup protocol smtp 25' / 'no inspect esmtp'. smtpguard's modern profile blocks these "      \
    "verbs on purpose (CVE-2005-0560 and others): exempt the connector's addresses from "         \
    "inspection instead.")                                                                        \
  X(kReplyDiffers, "reply_differs", true,                                                         \
    "A reply through the path differs from the server's own", (),                                 \
    "Compare the two dialogues: the device in the path changed the command or the reply.")        \
  X(kSessionDropped, "session_dropped", true,                                                     \
    "The connection ended on the way where the server's own session went on",                     \
    (kDuplicates, kSpecificDomains),                                                              \
    "Cisco ASA drops connections at its limits (command line over 512, over 100 RCPT, ...): "     \
    "look for syslog 108003/108004. smtpguard logs every reset with its reason.")                 \
  X(kSessionIncomplete, "session_incomplete", false, "The dialogue ended before QUIT", (),        \
    "Run again with --direct: if the server's own session completes, the path ends it.")          \
  X(kPlaintextAfterStarttls, "plaintext_after_starttls", false,                                   \
    "Bytes in clear text after the 220 to STARTTLS", (),                                          \
    "They belong to neither side of TLS: a STARTTLS response injection (CVE-2011-0411 "           \
    "class) in the server or in a device on the path.")                                           \
  X(kRelayRefused, "relay_refused", false, "RCPT refused: relaying denied",                       \
    (kRelayDenied, kOutlook),                                                                     \
    "If AUTH is hidden (see above), that is why; otherwise this is the server's relay "           \
    "policy.")

enum class FindingKind : uint8_t {
#define SG_X(name, id, inspection, title, symptoms, fix) name,
  SG_PROBE_FINDINGS(SG_X)
#undef SG_X
};

struct FindingInfo {
  std::string_view id;
  bool inspection;  // evidence of a device that inspects SMTP in the path
  std::string_view title;
  std::span<const Symptom> symptoms;
  std::string_view fix;
};
const FindingInfo& info(FindingKind k);

enum class Confidence : uint8_t {
  kCertain,  // the transcript shows it (a mask, a NOOP's reply, the server's own dialogue)
  kLikely,   // inferred (the keyword's length, a pattern no server is known to send)
};
std::string_view to_string(Confidence c);

struct Finding {
  FindingKind kind;
  Confidence confidence = Confidence::kCertain;
  std::string detail;                 // what exactly was seen, one or two sentences
  std::vector<std::string> evidence;  // transcript lines ("S: 220 ****2*0", "direct S: ...")
};

}  // namespace sg::probe
