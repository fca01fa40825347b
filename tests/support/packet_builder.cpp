#include "support/packet_builder.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <stdexcept>

namespace sg::test {
namespace {

constexpr uint8_t kTcpOptNop = 1;
constexpr size_t kMaxTcpOptions = 40;
constexpr size_t kMaxIpLength = 65535;

void put16(std::vector<uint8_t>& b, size_t at, uint16_t x) {
  b[at] = static_cast<uint8_t>(x >> 8);
  b[at + 1] = static_cast<uint8_t>(x);
}

void put32(std::vector<uint8_t>& b, size_t at, uint32_t x) {
  put16(b, at, static_cast<uint16_t>(x >> 16));
  put16(b, at + 2, static_cast<uint16_t>(x));
}

void append16(std::vector<uint8_t>& b, uint16_t x) {
  b.push_back(static_cast<uint8_t>(x >> 8));
  b.push_back(static_cast<uint8_t>(x));
}

void append32(std::vector<uint8_t>& b, uint32_t x) {
  append16(b, static_cast<uint16_t>(x >> 16));
  append16(b, static_cast<uint16_t>(x));
}

// RFC 1071 written the plain way, word by word: the reference the optimised code is tested
// against.
uint32_t sum_words(std::span<const uint8_t> data, uint32_t sum = 0) {
  for (size_t i = 0; i < data.size(); i += 2) {
    const uint32_t hi = data[i];
    const uint32_t lo = i + 1 < data.size() ? data[i + 1] : 0;
    sum += hi << 8 | lo;
  }
  return sum;
}

uint16_t finish(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

std::array<uint8_t, 16> parse_address(std::string_view text, bool v6) {
  std::array<uint8_t, 16> out{};
  const std::string s(text);
  if (inet_pton(v6 ? AF_INET6 : AF_INET, s.c_str(), out.data()) != 1) {
    throw std::invalid_argument("PacketBuilder: not an address: " + s);
  }
  const bool documentation =
      v6 ? (out[0] == 0x20 && out[1] == 0x01 && out[2] == 0x0d && out[3] == 0xb8)
         : (out[0] == 198 && (out[1] == 18 || out[1] == 19));
  if (!documentation) {
    throw std::invalid_argument(
        "PacketBuilder: test addresses must be in 198.18.0.0/15 or "
        "2001:db8::/32, got " +
        s);
  }
  return out;
}

}  // namespace

PacketBuilder::PacketBuilder() {
  v4("198.18.0.1", "198.18.0.2");
}

PacketBuilder& PacketBuilder::v4(std::string_view src, std::string_view dst) {
  v6_ = false;
  src_ = parse_address(src, false);
  dst_ = parse_address(dst, false);
  return *this;
}

PacketBuilder& PacketBuilder::v6(std::string_view src, std::string_view dst) {
  v6_ = true;
  src_ = parse_address(src, true);
  dst_ = parse_address(dst, true);
  return *this;
}

PacketBuilder& PacketBuilder::ports(uint16_t sport, uint16_t dport) {
  sport_ = sport;
  dport_ = dport;
  return *this;
}

PacketBuilder& PacketBuilder::seq(uint32_t seq) {
  seq_ = seq;
  return *this;
}

PacketBuilder& PacketBuilder::ack(uint32_t ack) {
  ack_ = ack;
  return *this;
}

PacketBuilder& PacketBuilder::flags(uint8_t flags) {
  flags_ = flags;
  return *this;
}

PacketBuilder& PacketBuilder::window(uint16_t window) {
  window_ = window;
  return *this;
}

PacketBuilder& PacketBuilder::urgent(uint16_t urgent) {
  urgent_ = urgent;
  return *this;
}

PacketBuilder& PacketBuilder::ttl(uint8_t ttl) {
  ttl_ = ttl;
  return *this;
}

PacketBuilder& PacketBuilder::payload(std::string_view payload) {
  payload_ = std::string(payload);
  return *this;
}

void PacketBuilder::add_option(size_t leading_nops, std::vector<uint8_t> option) {
  options_.insert(options_.end(), leading_nops, kTcpOptNop);
  options_.insert(options_.end(), option.begin(), option.end());
  if (options_.size() > kMaxTcpOptions) {
    throw std::invalid_argument("PacketBuilder: more than 40 bytes of TCP options");
  }
}

PacketBuilder& PacketBuilder::mss(uint16_t mss) {
  add_option(0, {2, 4, static_cast<uint8_t>(mss >> 8), static_cast<uint8_t>(mss)});
  return *this;
}

PacketBuilder& PacketBuilder::window_scale(uint8_t shift) {
  add_option(1, {3, 3, shift});
  return *this;
}

PacketBuilder& PacketBuilder::sack_permitted() {
  add_option(2, {4, 2});
  return *this;
}

PacketBuilder& PacketBuilder::timestamps(uint32_t tsval, uint32_t tsecr) {
  std::vector<uint8_t> option{8, 10};
  append32(option, tsval);
  append32(option, tsecr);
  add_option(2, std::move(option));
  return *this;
}

PacketBuilder& PacketBuilder::sack(std::vector<net::SackBlock> blocks) {
  if (blocks.empty() || blocks.size() > 4) {
    throw std::invalid_argument("PacketBuilder: a SACK option holds 1 to 4 blocks");
  }
  std::vector<uint8_t> option{5, static_cast<uint8_t>(2 + 8 * blocks.size())};
  for (const auto& b : blocks) {
    append32(option, b.left);
    append32(option, b.right);
  }
  add_option(2, std::move(option));
  return *this;
}

PacketBuilder& PacketBuilder::raw_option(std::vector<uint8_t> kind_len_and_data) {
  add_option(0, std::move(kind_len_and_data));
  return *this;
}

PacketBuilder& PacketBuilder::ipv6_extension(uint8_t type, size_t len8) {
  if (len8 == 0 || len8 > 256) {
    throw std::invalid_argument("PacketBuilder: extension length must be 1..256 units of 8");
  }
  extensions_.push_back(Extension{type, len8});
  return *this;
}

PacketBuilder& PacketBuilder::ipv4_fragment(uint16_t offset8, bool more) {
  if (offset8 > 0x1fff) throw std::invalid_argument("PacketBuilder: fragment offset > 0x1fff");
  fragment_ = static_cast<uint16_t>((more ? 0x2000 : 0) | offset8);
  return *this;
}

std::vector<uint8_t> PacketBuilder::build() const {
  if (!v6_ && !extensions_.empty()) {
    throw std::invalid_argument("PacketBuilder: IPv6 extension headers on an IPv4 packet");
  }
  std::vector<uint8_t> options = options_;
  while (options.size() % 4 != 0) options.push_back(kTcpOptNop);
  const size_t tcp_len = 20 + options.size() + payload_.size();

  std::vector<uint8_t> p;
  size_t ip_header_len = 0;
  if (!v6_) {
    ip_header_len = 20;
    if (ip_header_len + tcp_len > kMaxIpLength) {
      throw std::invalid_argument("PacketBuilder: IPv4 packet longer than 65535 bytes");
    }
    p.assign(ip_header_len, 0);
    p[0] = 0x45;
    put16(p, 2, static_cast<uint16_t>(ip_header_len + tcp_len));
    put16(p, 4, 0x1234);  // identification
    put16(p, 6, fragment_);
    p[8] = ttl_;
    p[9] = 6;
    std::copy_n(src_.begin(), 4, p.begin() + 12);
    std::copy_n(dst_.begin(), 4, p.begin() + 16);
    put16(p, 10, finish(sum_words(p)));
  } else {
    size_t ext_len = 0;
    for (const auto& e : extensions_) ext_len += e.len8 * 8;
    ip_header_len = 40 + ext_len;
    if (ext_len + tcp_len > kMaxIpLength) {
      throw std::invalid_argument("PacketBuilder: IPv6 payload longer than 65535 bytes");
    }
    p.assign(40, 0);
    p[0] = 0x60;
    put16(p, 4, static_cast<uint16_t>(ext_len + tcp_len));
    p[6] = extensions_.empty() ? 6 : extensions_.front().type;
    p[7] = ttl_;
    std::copy(src_.begin(), src_.end(), p.begin() + 8);
    std::copy(dst_.begin(), dst_.end(), p.begin() + 24);
    for (size_t i = 0; i < extensions_.size(); ++i) {
      const Extension& e = extensions_[i];
      const size_t at = p.size();
      p.resize(at + e.len8 * 8, 0);
      p[at] = i + 1 < extensions_.size() ? extensions_[i + 1].type : 6;
      p[at + 1] = static_cast<uint8_t>(e.type == 51 ? e.len8 * 2 - 2 : e.len8 - 1);
      if (e.type == 0 || e.type == 60) {
        // PadN options (type 1) covering the rest; a last single byte would be Pad1 (type 0).
        for (size_t pad = at + 2, left = e.len8 * 8 - 2; left >= 2;) {
          const size_t data = std::min<size_t>(left - 2, 255);
          p[pad] = 1;
          p[pad + 1] = static_cast<uint8_t>(data);
          pad += data + 2;
          left -= data + 2;
        }
      }
    }
  }

  const size_t tcp_at = p.size();
  p.resize(tcp_at + 20, 0);
  put16(p, tcp_at, sport_);
  put16(p, tcp_at + 2, dport_);
  put32(p, tcp_at + 4, seq_);
  put32(p, tcp_at + 8, ack_);
  p[tcp_at + 12] = static_cast<uint8_t>((20 + options.size()) / 4 << 4);
  p[tcp_at + 13] = flags_;
  put16(p, tcp_at + 14, window_);
  put16(p, tcp_at + 18, urgent_);
  p.insert(p.end(), options.begin(), options.end());
  p.insert(p.end(), payload_.begin(), payload_.end());

  // Pseudo-header: addresses, protocol, TCP length (RFC 9293 §3.1, RFC 8200 §8.1).
  const size_t addr_len = v6_ ? 16 : 4;
  uint32_t sum = sum_words(std::span(src_.data(), addr_len));
  sum = sum_words(std::span(dst_.data(), addr_len), sum);
  sum += 6 + static_cast<uint32_t>(tcp_len >> 16) + static_cast<uint32_t>(tcp_len & 0xffff);
  sum = sum_words(std::span(p).subspan(tcp_at), sum);
  put16(p, tcp_at + 16, finish(sum));
  return p;
}

std::string payload_of(std::span<const uint8_t> packet) {
  auto v = net::parse_packet(packet);
  if (!v) {
    throw std::invalid_argument("payload_of: packet does not parse: " +
                                std::string(net::to_string(v.error())));
  }
  return std::string(packet.begin() + static_cast<ptrdiff_t>(v->payload_offset),
                     packet.begin() + static_cast<ptrdiff_t>(v->payload_offset + v->payload_len));
}

}  // namespace sg::test
