#include "rewrite/edit_list.hpp"

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

using sg::rewrite::EditList;

namespace {

std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string render(const EditList& e, uint64_t pos, std::string_view original) {
  std::vector<uint8_t> out;
  e.render(pos, bytes_of(original), out);
  return {out.begin(), out.end()};
}

// The edits of a small EHLO exchange seen from the server side: "250-AUTH PLAIN\r\n" removed,
// the separator of the line before it turned final, an answer inserted after the reply.
const std::string kStream =
    "250-mx.example.org\r\n"  // 0..20, separator at 3
    "250 AUTH PLAIN\r\n";     // 20..36
EditList ehlo_edits() {
  EditList e;
  REQUIRE(e.remove(20, 16));
  REQUIRE(e.replace_byte(3, ' '));  // decided late, placed in order
  REQUIRE(e.insert(36, "550 no\r\n"));
  return e;
}

}  // namespace

TEST_CASE("render replaces, removes and inserts") {
  const EditList e = ehlo_edits();
  CHECK(render(e, 0, kStream) == "250 mx.example.org\r\n");
  CHECK(e.to_rewritten(36) == 20);        // the insertion starts where the stripped line was
  CHECK(e.to_rewritten_after(36) == 28);  // an ACK at 36 lands after the inserted bytes
  CHECK(e.inserted_at(36) == "550 no\r\n");
  CHECK(render(e, 36, "221 bye\r\n") == "550 no\r\n221 bye\r\n");
  CHECK(e.edits().size() == 3);
  CHECK(e.edits()[0].pos == 3);  // in stream order although recorded second
}

TEST_CASE("any cut of the stream renders to the same bytes, with lengths the map predicts") {
  const EditList e = ehlo_edits();
  const std::string all = kStream + "221 bye\r\n";
  const std::string whole = render(e, 0, all);
  CHECK(whole == "250 mx.example.org\r\n550 no\r\n221 bye\r\n");
  for (size_t cut = 0; cut <= all.size(); ++cut) {
    const std::string a = render(e, 0, all.substr(0, cut));
    const std::string b = render(e, cut, all.substr(cut));
    INFO("cut at " << cut);
    CHECK(a + b == whole);
    CHECK(a.size() == e.to_rewritten(cut) - e.to_rewritten(0));
  }
  // Random multi-cuts, seeded; and retransmissions starting anywhere give the bytes at the
  // same rewritten offsets.
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    std::string got;
    size_t at = 0;
    while (at < all.size()) {
      const size_t n = std::uniform_int_distribution<size_t>(1, 9)(rng);
      const size_t len = std::min(n, all.size() - at);
      const std::string piece = render(e, at, all.substr(at, len));
      CHECK(whole.compare(e.to_rewritten(at), piece.size(), piece) == 0);
      got += piece;
      at += len;
    }
    CHECK(got == whole);
  }
}

TEST_CASE("byte edits may come late but never inside another edit") {
  EditList e;
  REQUIRE(e.remove(10, 5));
  CHECK_FALSE(e.replace_byte(12, 'x'));  // inside the deletion
  CHECK(e.replace_byte(2, 'x'));
  CHECK(e.replace_byte(3, 'y'));  // merged with the byte before
  CHECK(e.edits().size() == 2);
  CHECK_FALSE(e.remove(4, 2));  // a length change must come after the last one
  CHECK(e.insert(15, "ab"));
  CHECK(e.insert(15, "cd"));  // several insertions at one place keep their order
  CHECK(e.inserted_at(15) == "abcd");
  CHECK(render(e, 0, "0123456789abcdefghij") == "01xy456789abcdfghij");
}

TEST_CASE("prune forgets what the receiver has and says where retransmissions start") {
  EditList e;
  REQUIRE(e.remove(10, 5));      // rewritten: 10 -> 10
  REQUIRE(e.insert(20, "INS"));  // rewritten: 15..18
  REQUIRE(e.replace_byte(30, 'Z'));
  CHECK(e.prune(9) == 9);
  CHECK(e.size() == 3);
  CHECK(e.prune(10) == 15);  // an ack at the deletion point acknowledges the removed bytes
  CHECK(e.size() == 2);
  CHECK(e.prune(16) == 20);  // inside the insertion: the insertion's place, not beyond
  CHECK(e.size() == 2);
  CHECK(e.prune(18) == 20);  // the whole insertion received
  CHECK(e.size() == 1);
  // After pruning, offsets at the prune point map as before.
  CHECK(e.to_rewritten(20) == 18);
  CHECK(e.to_rewritten_after(20) == 18);
  CHECK(render(e, 20, "0123456789a") == "0123456789Z");
}

TEST_CASE("same-length edits apply in place; an insertion belongs to the next segment") {
  EditList e;
  REQUIRE(e.replace_byte(1, 'X'));
  std::string buf = "abc";
  CHECK(e.apply_in_place(0, {reinterpret_cast<uint8_t*>(buf.data()), buf.size()}));
  CHECK(buf == "aXc");
  CHECK_FALSE(e.ever_resized());
  REQUIRE(e.insert(5, "!"));
  CHECK(e.ever_resized());
  CHECK(render(e, 5, "f") == "!f");
  CHECK(render(e, 0, "abcde") == "aXcde");  // the insertion at its end is not part of it
  CHECK(render(e, 2, "cde") == "cde");
}
