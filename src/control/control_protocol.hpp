#pragma once
// The control socket's protocol, shared by smtpguardd (control_server) and smtpguardctl.
//
// A Unix stream socket. The client sends one request per line: a command word and optional
// arguments, printable ASCII, words separated by single spaces, at most kMaxRequest bytes with
// the LF (a CR before the LF is ignored). The daemon answers every request with a header line
// and a body of exactly the announced length:
//
//   ok <length>\n<body>          the command ran; body is its output
//   error <length>\n<body>       it did not; body says why (one line, no trailing newline)
//
// Several requests may follow each other on one connection; each answer comes in order. A
// malformed request (binary bytes, too long) is answered with an error and the connection is
// closed. Commands (the daemon registers a handler for each):
//
//   status                      a few lines: version, uptime, profile, workers and their flows,
//                               totals
//   stats                       every counter, "name = value" per line
//   stats json                  the same as one JSON object
//   prometheus                  the Prometheus text exposition
//   reload                      reload the configuration; body says what changed
//   flows                       the tracked flows, one a line, with state and sequence deltas
//   rules show|install|remove   the nftables rules: print, install or remove them
//   watch [client=P] [server=P] [port=N] [queue=N]
//                               a live stream of decisions (eventlog/watch_filter.hpp): the
//                               answer says what is watched, and after it the connection
//                               carries records (eventlog/watch_record.hpp) until either side
//                               closes it; no further requests are read on it
//   help                        the commands this daemon answers (built in)
//
// This file has no dependency beyond POSIX: smtpguardctl is built from it without the rest of
// the daemon.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/paths.hpp"
#include "util/expected.hpp"
#include "util/time.hpp"

namespace sg::control {

// Where the daemon listens and smtpguardctl connects unless told otherwise (config/paths.hpp).
inline constexpr std::string_view kDefaultSocket = config::kDefaultControlSocket;
inline constexpr size_t kMaxRequest = 1024;     // bytes of a request line, LF included
inline constexpr size_t kMaxReply = 64u << 20;  // bytes of a reply body
inline constexpr size_t kMaxReplyHeader = 32;   // "error 67108864\n" and then some

// Command words.
inline constexpr std::string_view kStatus = "status";
inline constexpr std::string_view kStats = "stats";
inline constexpr std::string_view kPrometheus = "prometheus";
inline constexpr std::string_view kReload = "reload";
inline constexpr std::string_view kFlows = "flows";
inline constexpr std::string_view kRules = "rules";
inline constexpr std::string_view kWatch = "watch";
inline constexpr std::string_view kHelp = "help";
// Arguments.
inline constexpr std::string_view kJson = "json";
inline constexpr std::string_view kRulesShow = "show";
inline constexpr std::string_view kRulesInstall = "install";
inline constexpr std::string_view kRulesRemove = "remove";

// What a command handler answers.
struct Reply {
  bool ok = true;
  std::string body;
  static Reply success(std::string body) { return {true, std::move(body)}; }
  static Reply error(std::string message) { return {false, std::move(message)}; }
  bool operator==(const Reply&) const = default;
};

// "ok <n>\n" / "error <n>\n" followed by the body.
std::string encode_reply(const Reply& reply);

// Parsing a reply from the bytes received so far.
enum class ParseStatus : uint8_t { kNeedMore, kDone, kMalformed };
struct ParsedReply {
  ParseStatus status = ParseStatus::kNeedMore;
  Reply reply;          // kDone
  size_t consumed = 0;  // kDone: header and body
};
ParsedReply parse_reply(std::string_view bytes);

// A request line split into its command word and the rest ("rules install" -> "rules",
// "install"). Errors are the text of the error reply.
struct Request {
  std::string_view command;
  std::string_view argument;  // empty when there is none
};
Expected<Request, std::string> parse_request(std::string_view line);

// Why a client could not get an answer.
enum class ClientError : uint8_t {
  kNoSocket,    // ENOENT / ENOTDIR: no socket at that path (daemon not running)
  kRefused,     // ECONNREFUSED: a socket file nobody listens on (daemon gone)
  kPermission,  // EACCES / EPERM
  kTimeout,     // no complete answer in time
  kClosed,      // the daemon closed the connection before a complete answer
  kProtocol,    // the answer is not this protocol
  kOther,       // any other error (the message names the call and errno)
};
struct ClientFailure {
  ClientError kind = ClientError::kOther;
  std::string message;
};

// Connects to `path`, sends `request` (one line, without LF) and waits at most `timeout` in all
// for the answer.
Expected<Reply, ClientFailure> request(const std::string& path, std::string_view request,
                                       Duration timeout);

// What a streaming request's bytes go to after its answer; false: stop reading.
using StreamSink = std::function<bool(std::string_view bytes)>;
// request() for a streaming command (watch): when the answer is ok, its body and every byte after
// it go to
// `sink` until the daemon closes the connection or `sink` returns false; then the answer is
// returned. `timeout` bounds the answer only.
Expected<Reply, ClientFailure> request_stream(const std::string& path, std::string_view request,
                                              Duration timeout, const StreamSink& sink);

}  // namespace sg::control
