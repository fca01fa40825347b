#include "util/seq.hpp"

#include <catch2/catch.hpp>
#include <cstdint>

namespace sg {
namespace {

TEST_CASE("sequence numbers compare in serial-number arithmetic", "[util][seq]") {
  struct Case {
    uint32_t a, b;
    bool before;  // a is before b
  };
  const Case k = GENERATE(values<Case>({
      {1, 2, true},
      {2, 1, false},
      {0xffffffffu, 0, true},     // across the wrap
      {0xfffffff0u, 0x10, true},  // across the wrap, further
      {0x10, 0xfffffff0u, false},
      {0, 0x7fffffffu, true},  // the largest distance still "before"
      {0x7fffffffu, 0, false},
  }));
  CAPTURE(k.a, k.b);
  CHECK(seq_before(k.a, k.b) == k.before);
  CHECK(seq_after(k.b, k.a) == k.before);
  CHECK(seq_before_eq(k.a, k.b) == (k.before || k.a == k.b));
  CHECK(seq_after_eq(k.b, k.a) == (k.before || k.a == k.b));
}

TEST_CASE("half the space apart, each is before the other", "[util][seq]") {
  // RFC 1982 leaves the comparison undefined there; the kernel's before() says "before" both
  // ways, and so does this one. Segments never lie that far from the frontier (tcp/seq_space).
  CHECK(seq_before(0, 0x80000000u));
  CHECK(seq_before(0x80000000u, 0));
  CHECK(seq_before(0x12345678u, 0x92345678u));
  CHECK(seq_before(0x92345678u, 0x12345678u));
}

TEST_CASE("a sequence number is neither before nor after itself", "[util][seq]") {
  const uint32_t a = GENERATE(0u, 1u, 0x7fffffffu, 0x80000000u, 0xffffffffu);
  CHECK_FALSE(seq_before(a, a));
  CHECK_FALSE(seq_after(a, a));
  CHECK(seq_before_eq(a, a));
  CHECK(seq_after_eq(a, a));
}

}  // namespace
}  // namespace sg
