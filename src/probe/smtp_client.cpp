#include "probe/smtp_client.hpp"

#include <algorithm>

namespace sg::probe {

SmtpClient::SmtpClient(Socket s, std::string address)
    : socket_(std::move(s)), address_(std::move(address)) {}
SmtpClient::SmtpClient(SmtpClient&&) noexcept = default;
SmtpClient& SmtpClient::operator=(SmtpClient&&) noexcept = default;
SmtpClient::~SmtpClient() = default;

Expected<SmtpClient, std::string> SmtpClient::connect(const std::string& host, uint16_t port,
                                                      Family family,
                                                      std::chrono::milliseconds timeout) {
  auto addresses = resolve(host, port, family, deadline_after(timeout));
  if (!addresses) return unexpected(addresses.error());
  std::string errors;
  const size_t count = std::min(addresses->size(), kMaxAddresses);
  for (size_t i = 0; i < count; ++i) {
    const Address& a = (*addresses)[i];
    auto s = connect_to(a, deadline_after(timeout));
    if (s) return SmtpClient(std::move(*s), a.text);
    const IoResult& r = s.error();
    const std::string why = r.status == IoStatus::kTimeout
                                ? "no answer within " + std::to_string(timeout.count()) + " ms"
                                : r.error;
    // One address: the caller's "cannot connect to HOST:PORT" says where already.
    if (!errors.empty()) errors += "; ";
    errors += count == 1 ? why : a.text + ": " + why;
  }
  return unexpected(errors);
}

IoResult SmtpClient::send_line(std::string_view line, Deadline deadline) {
  std::string bytes(line);
  bytes += "\r\n";
  return tls_ ? tls_->write_all(bytes, deadline) : socket_.write_all(bytes, deadline);
}

IoResult SmtpClient::read_reply(Reply& out, Deadline deadline) {
  std::string chunk;
  while (!parser_.has_reply()) {
    chunk.clear();
    IoResult r = tls_ ? tls_->read_some(chunk, deadline) : socket_.read_some(chunk, deadline);
    if (!r.ok()) return r;
    parser_.feed(chunk);
  }
  out = parser_.take();
  return io_ok();
}

std::string SmtpClient::take_unread() {
  std::string out = parser_.leftover();
  parser_ = ReplyParser{};
  return out;
}

IoResult SmtpClient::start_tls(const std::string& server_name, Deadline deadline, TlsInfo& info) {
  tls_ = TlsChannel::handshake(socket_.fd(), server_name, deadline, info);
  if (!tls_) return io_fail(IoStatus::kError, info.error);
  return io_ok();
}

void SmtpClient::close() {
  if (tls_) tls_->shutdown();
}

}  // namespace sg::probe
