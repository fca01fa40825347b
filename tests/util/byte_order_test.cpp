#include "util/byte_order.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

namespace sg {
namespace {

using Bytes = std::vector<uint8_t>;

TEST_CASE("big-endian loads read the most significant byte first", "[util][byte_order]") {
  // A TCP header's first 12 bytes: ports 25 and 40000, seq 0x01020304, ack 0xfffefdfc.
  const Bytes tcp{0x00, 0x19, 0x9c, 0x40, 0x01, 0x02, 0x03, 0x04, 0xff, 0xfe, 0xfd, 0xfc};
  CHECK(load_be16(tcp, 0) == 25);
  CHECK(load_be16(tcp, 2) == 40000);
  CHECK(load_be32(tcp, 4) == 0x01020304u);
  CHECK(load_be32(tcp, 8) == 0xfffefdfcu);
  CHECK(load_be16(tcp, 1) == 0x199c);  // any offset, no alignment needed
  CHECK(load_be32(tcp, 3) == 0x40010203u);
}

TEST_CASE("big-endian stores write the most significant byte first", "[util][byte_order]") {
  struct Case {
    uint32_t value;
    Bytes be32;
  };
  const Case k = GENERATE(values<Case>({
      {0, {0, 0, 0, 0}},
      {1, {0, 0, 0, 1}},
      {0x80000000u, {0x80, 0, 0, 0}},
      {0xdeadbeefu, {0xde, 0xad, 0xbe, 0xef}},
      {0xffffffffu, {0xff, 0xff, 0xff, 0xff}},
  }));
  CAPTURE(k.value);
  Bytes b(6, 0xaa);
  store_be32(b, 1, k.value);
  CHECK(b == Bytes{0xaa, k.be32[0], k.be32[1], k.be32[2], k.be32[3], 0xaa});  // neighbours kept
  CHECK(load_be32(b, 1) == k.value);

  Bytes h(4, 0xaa);
  store_be16(h, 1, static_cast<uint16_t>(k.value));
  CHECK(h == Bytes{0xaa, k.be32[2], k.be32[3], 0xaa});
  CHECK(load_be16(h, 1) == static_cast<uint16_t>(k.value));
}

}  // namespace
}  // namespace sg
