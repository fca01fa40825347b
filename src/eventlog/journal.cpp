#include "eventlog/journal.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "eventlog/event_json.hpp"
#include "eventlog/event_log.hpp"

namespace sg::eventlog {
namespace {

constexpr uint64_t kFacilityMail = 2;  // LOG_MAIL >> 3
constexpr size_t kMessageIdLength = 32;
static_assert(kMessageIdPrefix.size() == 20);

// The prefix, then the id in 12 decimal digits.
void write_message_id(uint32_t event_id, std::array<char, kMessageIdLength>& out) noexcept {
  std::copy(kMessageIdPrefix.begin(), kMessageIdPrefix.end(), out.begin());
  for (size_t i = kMessageIdLength; i > kMessageIdPrefix.size(); --i) {
    out[i - 1] = static_cast<char>('0' + event_id % 10);
    event_id /= 10;
  }
}

void common_fields(std::string_view line, int priority, JournalEntry& out) noexcept {
  out.field("MESSAGE", line);
  out.field("PRIORITY", static_cast<uint64_t>(priority));
  out.field("SYSLOG_FACILITY", kFacilityMail);
  out.field("SYSLOG_IDENTIFIER", "smtpguardd");
}

// The endpoint as the key=value line writes it: 198.18.1.1:40000, [2001:db8::1]:40000.
void endpoint_field(std::string_view name, const net::IpAddress& a, uint16_t port,
                    JournalEntry& out) noexcept {
  LogLine text;
  text.append_endpoint(a, port);
  out.field(name, text.view());
}

}  // namespace

// --- JournalEntry ---

void JournalEntry::field(std::string_view name, std::string_view value) noexcept {
  append(name);
  append("=");
  append(value);
  append("\n");
}

void JournalEntry::field(std::string_view name, uint64_t value) noexcept {
  append(name);
  append("=");
  append(value);
  append("\n");
}

void JournalEntry::escaped_field(std::string_view name, std::string_view value,
                                 size_t cap) noexcept {
  append(name);
  append("=");
  append_escaped(value, cap);
  append("\n");
}

// --- formatting ---

std::string message_id(uint32_t event_id) {
  std::array<char, kMessageIdLength> id{};
  write_message_id(event_id, id);
  return std::string(id.data(), id.size());
}

void format_journal_decision(const core::Decision& d, std::string_view line, int priority,
                             JournalEntry& out) noexcept {
  const bool known = d.event < policy::Event::kCount;
  const policy::EventInfo* info = known ? &policy::info(d.event) : nullptr;
  const uint32_t id = known ? info->id : 0;
  common_fields(line, priority, out);
  std::array<char, kMessageIdLength> mid{};
  write_message_id(id, mid);
  out.field("MESSAGE_ID", std::string_view(mid.data(), mid.size()));
  out.field("SMTPGUARD_EVENT", known ? info->name : std::string_view("unknown"));
  out.field("SMTPGUARD_EVENT_ID", static_cast<uint64_t>(id));
  if (known && info->asa_id != 0)
    out.field("SMTPGUARD_ASA_ID", static_cast<uint64_t>(info->asa_id));
  out.field("SMTPGUARD_ACTION", d.action.empty() ? std::string_view("-") : d.action);
  out.field("SMTPGUARD_DIR", d.dir == smtp::Dir::kClientToServer ? "c2s" : "s2c");
  out.field("SMTPGUARD_ENDS_CONNECTION", static_cast<uint64_t>(d.ends_connection ? 1 : 0));
  endpoint_field("SMTPGUARD_CLIENT", d.client, d.client_port, out);
  endpoint_field("SMTPGUARD_SERVER", d.server, d.server_port, out);
  out.field("SMTPGUARD_FLOW_ID", flow_id(d));
  out.escaped_field("SMTPGUARD_SUBJECT", d.subject, kMaxLoggedSubject);
  out.escaped_field("SMTPGUARD_DETAIL", d.detail, kMaxLoggedDetail);
  out.escaped_field("SMTPGUARD_HELO", d.helo, kMaxLoggedSubject);
  out.escaped_field("SMTPGUARD_MAIL_FROM", d.mail_from, kMaxLoggedSubject);
  out.field("SMTPGUARD_RCPT_COUNT", static_cast<uint64_t>(d.rcpt_count));
}

void format_journal_suppressed(std::string_view line, int priority, JournalEntry& out) noexcept {
  common_fields(line, priority, out);
  std::array<char, kMessageIdLength> mid{};
  write_message_id(0, mid);
  out.field("MESSAGE_ID", std::string_view(mid.data(), mid.size()));
  out.field("SMTPGUARD_EVENT", "log_suppressed");
}

bool journal_stream_is_stderr(const char* journal_stream) noexcept {
  if (journal_stream == nullptr) return false;
  const std::string_view text(journal_stream);
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  uint64_t dev = 0, ino = 0;
  const auto d = std::from_chars(text.data(), text.data() + colon, dev);
  const auto i = std::from_chars(text.data() + colon + 1, text.data() + text.size(), ino);
  if (d.ec != std::errc() || d.ptr != text.data() + colon || i.ec != std::errc() ||
      i.ptr != text.data() + text.size())
    return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<uint64_t>(st.st_dev) == dev && static_cast<uint64_t>(st.st_ino) == ino;
}

// --- JournalSocket ---

Expected<std::unique_ptr<JournalSocket>, std::string> JournalSocket::open(std::string_view path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return unexpected("journal socket path too long or empty: " + std::string(path));
  std::copy(path.begin(), path.end(), addr.sun_path);
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return unexpected(std::string("journal socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    ::close(fd);
    return unexpected("connect to " + std::string(path) + ": " + std::strerror(err));
  }
  return std::unique_ptr<JournalSocket>(new JournalSocket(fd));
}

JournalSocket::~JournalSocket() {
  ::close(fd_);
}

bool JournalSocket::send(std::string_view entry) noexcept {
  for (;;) {
    const ssize_t n = ::send(fd_, entry.data(), entry.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    return n == static_cast<ssize_t>(entry.size());
  }
}

}  // namespace sg::eventlog
