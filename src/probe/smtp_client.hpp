#pragma once
// One SMTP client connection for the probe: connect (IPv4, IPv6, names), send a command line,
// read one complete reply, switch to TLS. Every call is bounded by the deadline it is given.
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "probe/reply_parser.hpp"
#include "probe/socket_io.hpp"
#include "probe/tls.hpp"
#include "probe/transcript.hpp"
#include "util/expected.hpp"

namespace sg::probe {

class SmtpClient {
 public:
  // A name may resolve to several addresses: at most this many are tried, each for at most
  // the connect timeout, so a name cannot make the probe wait without bound.
  static constexpr size_t kMaxAddresses = 4;

  // Resolves `host` and connects to the first address that answers. The error names every
  // address tried and why it failed ("198.18.2.1:26: Connection refused").
  static Expected<SmtpClient, std::string> connect(const std::string& host, uint16_t port,
                                                   Family family,
                                                   std::chrono::milliseconds timeout);

  SmtpClient(SmtpClient&&) noexcept;
  SmtpClient& operator=(SmtpClient&&) noexcept;
  ~SmtpClient();

  const std::string& address() const { return address_; }
  bool in_tls() const { return tls_ != nullptr; }

  // Sends `line` and CR LF.
  IoResult send_line(std::string_view line, Deadline deadline);
  // Reads until one complete reply is there (see ReplyParser for what "complete" means).
  IoResult read_reply(Reply& out, Deadline deadline);
  // Bytes received beyond the last reply (empty in a well-behaved dialogue); clears them.
  std::string take_unread();
  // The TLS handshake; afterwards sends and reads go through TLS.
  IoResult start_tls(const std::string& server_name, Deadline deadline, TlsInfo& info);
  // Ends TLS politely if it is on; the socket closes on destruction.
  void close();

 private:
  SmtpClient(Socket s, std::string address);

  Socket socket_;
  std::string address_;
  ReplyParser parser_;
  std::unique_ptr<TlsChannel> tls_;
};

}  // namespace sg::probe
