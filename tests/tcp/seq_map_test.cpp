// SeqMap: readable vectors for each kind of edit, then properties over random edit sets and a
// differential check against a stream rewritten by hand.
#include "tcp/seq_map.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace sg::tcp {
namespace {

struct EditSpec {
  uint64_t pos, old_len, new_len;
};

SeqMap make_map(const std::vector<EditSpec>& edits) {
  SeqMap m;
  for (const auto& e : edits) REQUIRE(m.add(e.pos, e.old_len, e.new_len));
  return m;
}

// A delete, an insert and a longer replacement, used by the "several edits" vectors:
// original [5,10) removed (-5), 3 bytes inserted at 20 (+3), [30,32) becomes 5 bytes (+3);
// rewritten: the cut at 5, the insertion at [15,18), the replacement at [28,33).
const std::vector<EditSpec> kSeveral = {{5, 5, 0}, {20, 0, 3}, {30, 2, 5}};

struct Vector {
  const char* what;
  std::vector<EditSpec> edits;
  uint64_t in, out;
};

TEST_CASE("to_rewritten: one vector per kind of edit", "[seq_map]") {
  const auto v = GENERATE(values<Vector>({
      {"deletion: before it", {{10, 10, 0}}, 5, 5},
      {"deletion: its first byte maps to the cut", {{10, 10, 0}}, 10, 10},
      {"deletion: a byte inside maps to the cut", {{10, 10, 0}}, 15, 10},
      {"deletion: its end maps to the cut", {{10, 10, 0}}, 20, 10},
      {"deletion: after it shifts back", {{10, 10, 0}}, 25, 15},
      {"insertion: pos maps to the start of the inserted bytes", {{10, 0, 5}}, 10, 10},
      {"insertion: after it shifts forward", {{10, 0, 5}}, 11, 16},
      {"longer replacement: inside keeps the offset", {{10, 3, 6}}, 12, 12},
      {"longer replacement: its end", {{10, 3, 6}}, 13, 16},
      {"longer replacement: after it", {{10, 3, 6}}, 20, 23},
      {"shorter replacement: inside within new_len", {{10, 6, 2}}, 11, 11},
      {"shorter replacement: inside past new_len clamps", {{10, 6, 2}}, 14, 12},
      {"shorter replacement: its end", {{10, 6, 2}}, 16, 12},
      {"shorter replacement: after it", {{10, 6, 2}}, 17, 13},
      {"several: before all", kSeveral, 4, 4},
      {"several: inside the deletion", kSeveral, 7, 5},
      {"several: between deletion and insertion", kSeveral, 19, 14},
      {"several: at the insertion", kSeveral, 20, 15},
      {"several: after the insertion", kSeveral, 21, 19},
      {"several: start of the replacement", kSeveral, 30, 28},
      {"several: inside the replacement", kSeveral, 31, 29},
      {"several: end of the replacement", kSeveral, 32, 33},
      {"several: after all", kSeveral, 40, 41},
      {"insertion right after a deletion", {{10, 5, 0}, {15, 0, 4}}, 15, 10},
      {"two insertions at one pos: pos before both", {{10, 0, 2}, {10, 0, 3}}, 10, 10},
      {"two insertions at one pos: next byte after both", {{10, 0, 2}, {10, 0, 3}}, 11, 16},
  }));
  INFO(v.what);
  const SeqMap m = make_map(v.edits);
  CHECK(m.to_rewritten(v.in) == v.out);
  CHECK(m.delta_at(v.in) == static_cast<int64_t>(v.out) - static_cast<int64_t>(v.in));
}

TEST_CASE("to_original: partial replacement -> start, whole -> end", "[seq_map]") {
  const auto v = GENERATE(values<Vector>({
      {"deletion: before it", {{10, 10, 0}}, 5, 5},
      {"deletion: at the cut the deleted bytes are acknowledged", {{10, 10, 0}}, 10, 20},
      {"deletion: after it", {{10, 10, 0}}, 15, 25},
      {"insertion: at its start", {{10, 0, 5}}, 10, 10},
      {"insertion: inside", {{10, 0, 5}}, 13, 10},
      {"insertion: whole", {{10, 0, 5}}, 15, 10},
      {"insertion: after", {{10, 0, 5}}, 16, 11},
      {"longer replacement: inside -> start", {{10, 3, 6}}, 14, 10},
      {"longer replacement: whole -> end", {{10, 3, 6}}, 16, 13},
      {"shorter replacement: inside -> start", {{10, 6, 2}}, 11, 10},
      {"shorter replacement: whole -> end", {{10, 6, 2}}, 12, 16},
      {"several: at the deletion", kSeveral, 5, 10},
      {"several: inside the insertion", kSeveral, 17, 20},
      {"several: insertion whole", kSeveral, 18, 20},
      {"several: inside the replacement", kSeveral, 29, 30},
      {"several: replacement whole", kSeveral, 33, 32},
      {"several: after all", kSeveral, 41, 40},
      {"insertion right after a deletion: at the shared point", {{10, 5, 0}, {15, 0, 4}}, 10, 15},
  }));
  INFO(v.what);
  CHECK(make_map(v.edits).to_original(v.in) == v.out);
}

TEST_CASE("to_original_left: a SACK left edge rounds up inside a replacement", "[seq_map]") {
  const auto v = GENERATE(values<Vector>({
      {"at the start of a replacement the block holds all of it", {{10, 3, 6}}, 10, 10},
      {"inside a replacement -> end of the original range", {{10, 3, 6}}, 11, 13},
      {"at the end of a replacement", {{10, 3, 6}}, 16, 13},
      {"at a deletion point -> after the deleted bytes", {{10, 10, 0}}, 10, 20},
      {"outside edits: same as to_original", {{10, 10, 0}}, 15, 25},
  }));
  INFO(v.what);
  CHECK(make_map(v.edits).to_original_left(v.in) == v.out);
}

TEST_CASE("add enforces stream order and bounds", "[seq_map]") {
  SeqMap m;
  CHECK(m.add(10, 5, 0));
  CHECK_FALSE(m.add(14, 1, 1));  // overlaps [10,15)
  CHECK_FALSE(m.add(3, 0, 2));   // goes back
  CHECK(m.add(15, 0, 2));        // right at the previous end
  CHECK(m.add(15, 0, 1));        // a second insertion at the same pos
  CHECK_FALSE(m.add(20, SeqMap::kMaxEditLen + 1, 0));
  CHECK_FALSE(m.add(UINT64_MAX - 1, 5, 0));  // end overflows
  CHECK(m.add(20, 4, 4));                    // same length: accepted, not stored
  CHECK(m.size() == 3);
  CHECK_FALSE(m.add(22, 1, 0));  // but it still counts for the order
  CHECK(m.total_delta() == -2);
}

TEST_CASE("prune folds acknowledged edits into the base delta", "[seq_map]") {
  SeqMap m = make_map(kSeveral);
  m.prune(14);  // the deletion's (empty) replacement at 5 is acknowledged; the insertion is not
  CHECK(m.size() == 2);
  CHECK(m.frontier() == 10);
  CHECK(m.to_rewritten(19) == 14);
  CHECK(m.to_original(14) == 19);
  m.prune(17);  // inside the insertion: kept
  CHECK(m.size() == 2);
  m.prune(1000);
  CHECK(m.empty());
  CHECK(m.frontier() == 32);
  CHECK(m.to_rewritten(40) == 41);
  CHECK(m.to_original(41) == 40);
  CHECK(m.add(40, 1, 0));  // later edits still chain on the folded delta
  CHECK(m.to_rewritten(50) == 50);
}

// Random edit sets over a stream of `len` bytes: every edit starts before the end, so the end
// maps to len + sum(new - old).
struct RandomStream {
  std::string original, rewritten;
  std::vector<EditSpec> edits;
};

RandomStream random_stream(std::mt19937& rng) {
  RandomStream s;
  const auto len = std::uniform_int_distribution<size_t>(0, 120)(rng);
  std::uniform_int_distribution<int> letter('a', 'z'), gap(0, 12), size(0, 6);
  for (size_t i = 0; i < len; ++i) s.original += static_cast<char>(letter(rng));
  uint64_t pos = static_cast<uint64_t>(gap(rng));
  while (pos < len) {
    const uint64_t old_len = std::min<uint64_t>(static_cast<uint64_t>(size(rng)), len - pos);
    const auto new_len = static_cast<uint64_t>(size(rng));
    s.edits.push_back({pos, old_len, new_len});
    pos += old_len + static_cast<uint64_t>(gap(rng));
  }
  // Apply by hand; replacement bytes are digits so they never match an original letter.
  size_t at = 0;
  for (const auto& e : s.edits) {
    s.rewritten += s.original.substr(at, e.pos - at);
    for (uint64_t i = 0; i < e.new_len; ++i) s.rewritten += static_cast<char>('0' + i % 10);
    at = e.pos + e.old_len;
  }
  s.rewritten += s.original.substr(at);
  return s;
}

bool inside_edit(const RandomStream& s, uint64_t x) {
  for (const auto& e : s.edits) {
    if (x >= e.pos && x < e.pos + e.old_len) return true;
  }
  return false;
}

bool insertion_at(const RandomStream& s, uint64_t x) {
  for (const auto& e : s.edits) {
    if (e.pos == x && e.old_len == 0 && e.new_len > 0) return true;
  }
  return false;
}

TEST_CASE("properties over random edit sets", "[seq_map]") {
  std::mt19937 rng(20261122);
  for (int round = 0; round < 500; ++round) {
    const RandomStream s = random_stream(rng);
    const SeqMap m = make_map(s.edits);
    const uint64_t len = s.original.size();
    const uint64_t rw_len = s.rewritten.size();
    INFO("round " << round << " original " << s.original << " rewritten " << s.rewritten);

    // (4) the stream's end.
    int64_t sum = 0;
    for (const auto& e : s.edits) sum += static_cast<int64_t>(e.new_len - e.old_len);
    REQUIRE(m.to_rewritten(len) == rw_len);
    REQUIRE(static_cast<int64_t>(rw_len) == static_cast<int64_t>(len) + sum);
    REQUIRE(m.to_original(rw_len) == len);

    for (uint64_t x = 0; x <= len + 3; ++x) {
      // (1) monotone.
      if (x > 0) REQUIRE(m.to_rewritten(x - 1) <= m.to_rewritten(x));
      if (inside_edit(s, x)) continue;
      // (2) round trip outside edits, and the differential "apply" check.
      REQUIRE(m.to_original(m.to_rewritten(x)) == x);
      // Byte x sits just before where x + 1 maps (x + 1 may carry an insertion with it) and, when
      // no insertion belongs to x itself, where x maps.
      if (x >= len) continue;
      REQUIRE(s.rewritten[m.to_rewritten(x + 1) - 1] == s.original[x]);
      if (!insertion_at(s, x)) REQUIRE(s.rewritten[m.to_rewritten(x)] == s.original[x]);
    }
    for (uint64_t r = 1; r <= rw_len + 3; ++r) {
      // (3) monotone both ways; a left edge never rounds below the ack rule.
      REQUIRE(m.to_original(r - 1) <= m.to_original(r));
      REQUIRE(m.to_original_left(r - 1) <= m.to_original_left(r));
      REQUIRE(m.to_original(r) <= m.to_original_left(r));
    }

    // (5) prune at a random acknowledged point leaves later mappings alone.
    const auto acked = std::uniform_int_distribution<uint64_t>(0, rw_len)(rng);
    SeqMap pruned = m;
    pruned.prune(acked);
    std::vector<EditSpec> stored;
    for (const auto& e : s.edits) {
      if (e.old_len != e.new_len) stored.push_back(e);
    }
    REQUIRE(pruned.size() <= stored.size());
    const size_t gone = stored.size() - pruned.size();
    for (size_t i = 0; i < gone; ++i) {
      REQUIRE(m.to_rewritten(stored[i].pos + stored[i].old_len) <= acked);
    }
    const uint64_t last_pruned_pos = gone ? stored[gone - 1].pos : 0;
    for (uint64_t x = pruned.frontier(); x <= len + 3; ++x) {
      if (gone && x <= last_pruned_pos) continue;  // a pruned insertion's own pos moves on
      REQUIRE(pruned.to_rewritten(x) == m.to_rewritten(x));
    }
    for (uint64_t r = acked; r <= rw_len + 3; ++r) {
      REQUIRE(pruned.to_original(r) == m.to_original(r));
    }
  }
}

TEST_CASE("a retransmission gets the same bytes whatever its boundaries", "[seq_map]") {
  // Cut the original stream at random points and send each piece as the rewritten bytes between
  // the mapped starts of it and the next piece: the pieces must tile the rewritten stream, so
  // the output for a range is a fixed function of the edits, not of segment boundaries.
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    const RandomStream s = random_stream(rng);
    const SeqMap m = make_map(s.edits);
    std::string sent;
    uint64_t at = 0;
    while (at < s.original.size()) {
      const uint64_t left = s.original.size() - at;
      const uint64_t next = at + std::uniform_int_distribution<uint64_t>(1, left)(rng);
      const uint64_t from = m.to_rewritten(at), to = m.to_rewritten(next);
      REQUIRE(from <= to);
      sent += s.rewritten.substr(from, to - from);
      at = next;
    }
    REQUIRE(sent == s.rewritten);
  }
}

TEST_CASE("32-bit forms across wraparound", "[seq_map]") {
  const SeqSpace space(0xFFFFFFF0u);  // offset 0 is seq 0xFFFFFFF1
  const auto seq = [&](uint64_t off) { return space.seq(off); };

  SECTION("a deletion that straddles the wrap") {
    SeqMap m;
    REQUIRE(m.add(10, 20, 0));  // seqs 0xFFFFFFFB .. 0x0000000E are removed
    CHECK(seq(10) == 0xFFFFFFFBu);
    CHECK(seq(30) == 0x0000000Fu);
    CHECK(m.map_seq(space, seq(5), 0) == seq(5));
    CHECK(m.map_seq(space, seq(30), 0) == 0xFFFFFFFBu);
    CHECK(m.map_seq(space, seq(40), 8) == seq(20));
    CHECK(m.map_ack(space, seq(20), 10) == seq(40));
    CHECK(m.map_ack(space, 0xFFFFFFFBu, 10) == 0x0000000Fu);  // the cut acks the deleted bytes
  }
  SECTION("an insertion that straddles the wrap") {
    SeqMap m;
    REQUIRE(m.add(10, 0, 20));  // rewritten seqs 0xFFFFFFFB .. 0x0000000E are inserted
    CHECK(m.map_seq(space, seq(10), 0) == 0xFFFFFFFBu);
    CHECK(m.map_seq(space, seq(11), 0) == seq(31));
    CHECK(m.map_ack(space, 0x00000005u, 10) == 0xFFFFFFFBu);  // partly received: not acked
    CHECK(m.map_ack(space, 0x0000000Fu, 10) == 0xFFFFFFFBu);  // wholly received
    CHECK(m.map_ack(space, 0x00000010u, 10) == seq(11));
  }
  SECTION("offsets beyond 4 GiB, where 32 bits alone are ambiguous") {
    const uint64_t far = (uint64_t{5} << 32) + 1000;
    SeqMap m;
    REQUIRE(m.add(100, 50, 0));
    REQUIRE(m.add(far, 10, 30));
    CHECK(m.map_seq(space, seq(far + 10), far) == seq(far - 20));
    CHECK(m.map_seq(space, seq(far - 1), far) == seq(far - 51));
    CHECK(m.map_ack(space, seq(far - 50 + 5), far - 50) == seq(far));
    CHECK(m.map_ack(space, seq(far - 50 + 30), far - 50) == seq(far + 10));
  }
}

}  // namespace
}  // namespace sg::tcp
