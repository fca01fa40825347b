#include "eventlog/event_json.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <memory>

#include "eventlog/event_log.hpp"

namespace sg::eventlog {
namespace {

constexpr int kStdout = STDOUT_FILENO;

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// The address alone (no brackets, no port), as eve.json writes it.
void address(JsonLine& out, const net::IpAddress& a) noexcept {
  out.string(a.text().view());
}

// FNV-1a, 64 bits, over the bytes given.
uint64_t fnv1a(uint64_t h, const uint8_t* p, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

// --- JsonLine ---

void JsonLine::string(std::string_view value, size_t cap) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  append("\"");
  const size_t n = std::min(value.size(), cap);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c == '"' || c == '\\') {
      const char esc[2] = {'\\', static_cast<char>(c)};
      append(std::string_view(esc, 2));
    } else if (c >= 0x20 && c < 0x7f) {
      const char ch = static_cast<char>(c);
      append(std::string_view(&ch, 1));
    } else {
      const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0x0f]};
      append(std::string_view(esc, 6));
    }
  }
  if (value.size() > cap) append("...");
  append("\"");
}

void JsonLine::timestamp(WallClock::time_point t) noexcept {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(us.count() / 1'000'000);
  const long frac = static_cast<long>(us.count() % 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char text[40];
  const size_t n = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
  char micro[8];
  std::snprintf(micro, sizeof(micro), ".%06ld", frac < 0 ? 0 : frac);
  append("\"");
  append(std::string_view(text, n));
  append(micro);
  append("Z\"");
}

// --- formatting ---

uint64_t flow_id(const core::Decision& d) noexcept {
  uint64_t h = 0xcbf29ce484222325ULL;
  h = fnv1a(h, d.client.bytes.data(), d.client.bytes.size());
  h = fnv1a(h, d.server.bytes.data(), d.server.bytes.size());
  const uint8_t ports[4] = {
      static_cast<uint8_t>(d.client_port >> 8), static_cast<uint8_t>(d.client_port),
      static_cast<uint8_t>(d.server_port >> 8), static_cast<uint8_t>(d.server_port)};
  h = fnv1a(h, ports, sizeof(ports));
  return h & ((uint64_t{1} << 52) - 1);
}

void format_json_decision(const core::Decision& d, WallClock::time_point t,
                          JsonLine& out) noexcept {
  const bool known = d.event < policy::Event::kCount;
  const policy::EventInfo* info = known ? &policy::info(d.event) : nullptr;
  const bool c2s = d.dir == smtp::Dir::kClientToServer;
  out.append("{\"timestamp\":");
  out.timestamp(t);
  out.append(",\"flow_id\":");
  out.append(flow_id(d));
  out.append(",\"event_type\":\"smtpguard\",\"src_ip\":");
  address(out, c2s ? d.client : d.server);
  out.append(",\"src_port\":");
  out.append(c2s ? d.client_port : d.server_port);
  out.append(",\"dest_ip\":");
  address(out, c2s ? d.server : d.client);
  out.append(",\"dest_port\":");
  out.append(c2s ? d.server_port : d.client_port);
  out.append(",\"proto\":\"TCP\",\"smtp\":{\"helo\":");
  out.string(d.helo, kMaxLoggedSubject);
  out.append(",\"mail_from\":");
  out.string(d.mail_from, kMaxLoggedSubject);
  out.append(",\"rcpt_count\":");
  out.append(d.rcpt_count);
  out.append("},\"smtpguard\":{\"event\":");
  out.string(known ? info->name : std::string_view("unknown"));
  out.append(",\"id\":");
  out.append(known ? info->id : 0);
  out.append(",\"asa\":");
  if (known && info->asa_id != 0) {
    out.append(info->asa_id);
  } else {
    out.append("null");
  }
  out.append(",\"action\":");
  out.string(d.action.empty() ? std::string_view("-") : d.action);
  out.append(c2s ? ",\"dir\":\"c2s\"" : ",\"dir\":\"s2c\"");
  out.append(d.ends_connection ? ",\"ends_connection\":true" : ",\"ends_connection\":false");
  out.append(",\"subject\":");
  out.string(d.subject, kMaxLoggedSubject);
  out.append(",\"detail\":");
  out.string(d.detail, kMaxLoggedDetail);
  out.append("}}");
}

void format_json_suppressed(uint64_t lines, std::span<const uint64_t, policy::kEventCount> by_event,
                            WallClock::time_point t, JsonLine& out) noexcept {
  out.append("{\"timestamp\":");
  out.timestamp(t);
  out.append(",\"event_type\":\"smtpguard_suppressed\",\"smtpguard_suppressed\":{\"lines\":");
  out.append(lines);
  out.append(",\"by_event\":{");
  bool first = true;
  for (size_t i = 0; i < policy::kEventCount; ++i) {
    if (by_event[i] == 0) continue;
    if (!first) out.append(",");
    first = false;
    out.string(policy::kEventInfo[i].name);
    out.append(":");
    out.append(by_event[i]);
  }
  out.append("}}}");
}

// --- JsonEventFile ---

Expected<std::unique_ptr<JsonEventFile>, std::string> JsonEventFile::open(const std::string& path) {
  if (path == "-") return std::unique_ptr<JsonEventFile>(new JsonEventFile(path, kStdout));
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return unexpected(errno_text("event-json " + path));
  return std::unique_ptr<JsonEventFile>(new JsonEventFile(path, fd));
}

JsonEventFile::~JsonEventFile() {
  if (fd_ >= 0 && fd_ != kStdout) ::close(fd_);
}

void JsonEventFile::write(std::string_view line) noexcept {
  std::array<char, kMaxJsonLine + 1> buf;
  const size_t n = std::min(line.size(), kMaxJsonLine);
  std::copy_n(line.data(), n, buf.data());
  buf[n] = '\n';
  std::lock_guard lock(mutex_);
  size_t done = 0;
  while (done < n + 1) {
    const ssize_t w = ::write(fd_, buf.data() + done, n + 1 - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      ++write_errors_;
      return;
    }
    done += static_cast<size_t>(w);
  }
}

Expected<bool, std::string> JsonEventFile::reopen() {
  if (path_ == "-") return true;
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0)
    return unexpected(
        errno_text("event-json " + path_ + " (reopen; still writing to the old file)"));
  std::lock_guard lock(mutex_);
  ::close(fd_);
  fd_ = fd;
  return true;
}

uint64_t JsonEventFile::write_errors() const {
  std::lock_guard lock(mutex_);
  return write_errors_;
}

}  // namespace sg::eventlog
