#pragma once
// A socket address (sockaddr_in or sockaddr_in6 inside a sockaddr_storage) from an address's raw
// bytes and a port: the one place the two families' structures are filled in.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>

namespace sg::net {

// Fills `out` for `family` (AF_INET: 4 address bytes, AF_INET6: 16) and returns its length.
inline socklen_t fill_socket_address(sockaddr_storage& out, int family, const uint8_t* address,
                                     uint16_t port) {
  out = sockaddr_storage{};
  if (family == AF_INET) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    std::memcpy(&sin.sin_addr, address, sizeof(sin.sin_addr));
    std::memcpy(&out, &sin, sizeof(sin));
    return sizeof(sin);
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  std::memcpy(&sin6.sin6_addr, address, sizeof(sin6.sin6_addr));
  std::memcpy(&out, &sin6, sizeof(sin6));
  return sizeof(sin6);
}

}  // namespace sg::net
