#include "eventlog/watch_filter.hpp"

#include <charconv>

namespace sg::eventlog {
namespace {

Expected<uint64_t, std::string> parse_number(std::string_view key, std::string_view text,
                                             uint64_t min, uint64_t max) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
    return unexpected(std::string(key) + ": expected " + std::to_string(min) + " to " +
                      std::to_string(max) + ", got '" + std::string(text) + "'");
  }
  return v;
}

}  // namespace

bool WatchFilter::matches(const core::Decision& d) const noexcept {
  if (client && !client->contains(d.client)) return false;
  if (server && !server->contains(d.server)) return false;
  if (port && *port != d.client_port && *port != d.server_port) return false;
  return true;
}

std::string WatchFilter::to_string() const {
  std::string out;
  if (client) out += "client=" + client->to_string() + " ";
  if (server) out += "server=" + server->to_string() + " ";
  if (port) out += "port=" + std::to_string(*port) + " ";
  out += "queue=" + std::to_string(queue);
  return out;
}

Expected<WatchFilter, std::string> parse_watch_filter(std::string_view argument) {
  WatchFilter f;
  bool queue_set = false;
  while (!argument.empty()) {
    const size_t space = argument.find(' ');
    const std::string_view word = argument.substr(0, space);
    argument = space == std::string_view::npos ? std::string_view() : argument.substr(space + 1);
    const size_t eq = word.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return unexpected("expected client=, server=, port= or queue=, got '" + std::string(word) +
                        "'");
    const std::string_view key = word.substr(0, eq);
    const std::string_view value = word.substr(eq + 1);
    if (key == "client" || key == "server") {
      std::optional<policy::Subnet>& slot = key == "client" ? f.client : f.server;
      if (slot) return unexpected(std::string(key) + " given twice");
      auto subnet = policy::parse_subnet(value);
      if (!subnet) return unexpected(std::string(key) + ": " + subnet.error());
      slot = *subnet;
    } else if (key == "port") {
      if (f.port) return unexpected(std::string("port given twice"));
      auto n = parse_number(key, value, 1, 65535);
      if (!n) return unexpected(n.error());
      f.port = static_cast<uint16_t>(*n);
    } else if (key == "queue") {
      if (queue_set) return unexpected(std::string("queue given twice"));
      auto n = parse_number(key, value, kMinWatchQueue, kMaxWatchQueue);
      if (!n) return unexpected(n.error());
      f.queue = static_cast<size_t>(*n);
      queue_set = true;
    } else {
      return unexpected("expected client=, server=, port= or queue=, got '" + std::string(word) +
                        "'");
    }
  }
  return f;
}

}  // namespace sg::eventlog
