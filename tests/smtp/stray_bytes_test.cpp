#include "smtp/stray_bytes.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

using sg::smtp::StrayBytes;

namespace {

std::span<const uint8_t> bytes_of(const std::string& s, size_t from, size_t n) {
  return {reinterpret_cast<const uint8_t*>(s.data()) + from, n};
}

// A piece of the message at a stream offset (BDAT: the chunks lie apart in the stream).
struct Piece {
  uint64_t pos;
  std::string bytes;
};

// Feeds the pieces, each cut at `cuts` (offsets inside the piece), settles at the end (the
// message is over) and returns the pieces' bytes with every stray offset made a space.
std::vector<std::string> sanitize(const std::vector<Piece>& pieces,
                                  const std::vector<size_t>& cuts = {}) {
  StrayBytes s;
  std::vector<uint64_t> stray;
  for (const Piece& p : pieces) {
    size_t from = 0;
    std::vector<size_t> points = cuts;
    points.push_back(p.bytes.size());
    for (size_t at : points) {
      if (at <= from || at > p.bytes.size()) continue;
      s.feed(p.pos + from, bytes_of(p.bytes, from, at - from), stray);
      from = at;
    }
  }
  s.settle(stray);
  REQUIRE_FALSE(s.undecided());
  std::vector<std::string> out;
  for (const Piece& p : pieces) out.push_back(p.bytes);
  uint64_t last = 0;
  for (size_t k = 0; k < stray.size(); ++k) {
    if (k > 0) CHECK(stray[k] > last);  // in order, each once
    last = stray[k];
    bool found = false;
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (stray[k] < pieces[i].pos || stray[k] >= pieces[i].pos + pieces[i].bytes.size()) continue;
      out[i][stray[k] - pieces[i].pos] = ' ';
      found = true;
    }
    CHECK(found);
  }
  return out;
}

std::string sanitize_whole(const std::string& m, const std::vector<size_t>& cuts = {}) {
  return sanitize({{1000, m}}, cuts)[0];
}

// The definition, straight: over the whole message, a CR not followed by LF, an LF not preceded
// by CR, a NUL.
std::string reference(const std::string& m) {
  std::string out = m;
  for (size_t i = 0; i < m.size(); ++i) {
    const bool stray = m[i] == '\0' || (m[i] == '\r' && (i + 1 == m.size() || m[i + 1] != '\n')) ||
                       (m[i] == '\n' && (i == 0 || m[i - 1] != '\r'));
    if (stray) out[i] = ' ';
  }
  return out;
}

// No line ending but CRLF, no NUL.
bool canonical(const std::string& m) {
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] == '\0') return false;
    if (m[i] == '\r' && (i + 1 == m.size() || m[i + 1] != '\n')) return false;
    if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r')) return false;
  }
  return true;
}

struct Row {
  std::string in;
  std::string out;
};

}  // namespace

TEST_CASE("every smuggling sequence, split at every byte, becomes spaces", "[stray_bytes]") {
  using namespace std::string_literals;
  const Row row =
      GENERATE(Row{"\n.\n"s, " . "s}, Row{"\n.\r\n"s, " .\r\n"s}, Row{"\r.\r"s, " . "s},
               Row{"\r.\n"s, " . "s}, Row{"\n.\r"s, " . "s}, Row{"\r\n.\n"s, "\r\n. "s},
               Row{"\r\n.\r"s, "\r\n. "s}, Row{"\r.\r\n"s, " .\r\n"s},
               Row{"\r\n.\r\r\n"s, "\r\n. \r\n"s}, Row{"\r\r\n.\r\r\n"s, " \r\n. \r\n"s},
               Row{"\r\n\0.\r\n"s, "\r\n .\r\n"s}, Row{"\r\n.\0\r\n"s, "\r\n. \r\n"s},
               Row{"\r\n\0.\0\r\n"s, "\r\n . \r\n"s}, Row{"bare\rcr"s, "bare cr"s},
               Row{"bare\nlf"s, "bare lf"s}, Row{"nul\0byte"s, "nul byte"s}, Row{"\r\r\r"s, "   "s},
               Row{"\n\n"s, "  "s}, Row{"\n\r"s, "  "s}, Row{"\r\n\r\n"s, "\r\n\r\n"s});
  // In the middle of a message, and as its last bytes (the message ends: nothing follows).
  for (const std::string& before : {"Subject: x\r\n\r\nhello"s, ""s}) {
    for (const std::string& after : {"MAIL FROM:<a@b>\r\n.\r\n"s, ""s}) {
      const std::string m = before + row.in + after;
      const std::string want = before + row.out + after;
      INFO("message of " << m.size() << " bytes, sequence at " << before.size());
      CHECK(sanitize_whole(m) == want);
      CHECK(reference(m) == want);
      CHECK(canonical(want));
      CHECK(want.size() == m.size());
      for (size_t cut = 1; cut < m.size(); ++cut) {
        INFO("cut at " << cut);
        CHECK(sanitize_whole(m, {cut}) == want);
      }
      std::vector<size_t> every;
      for (size_t cut = 1; cut < m.size(); ++cut) every.push_back(cut);
      CHECK(sanitize_whole(m, every) == want);
    }
  }
}

TEST_CASE("a clean message passes byte-identical", "[stray_bytes]") {
  const std::string m =
      "From: a@example.org\r\nSubject: x\r\n\r\nline one\r\n..dot-stuffed\r\n.\r\n.."
      "\r\n\r\n\r\nlast\r\n.\r\n";
  CHECK(sanitize_whole(m) == m);
  for (size_t cut = 1; cut < m.size(); ++cut) CHECK(sanitize_whole(m, {cut}) == m);
}

TEST_CASE("a CR at the end of the bytes so far waits for the next byte", "[stray_bytes]") {
  StrayBytes s;
  std::vector<uint64_t> stray;
  s.feed(10, bytes_of("ab\r", 0, 3), stray);
  CHECK(stray.empty());
  REQUIRE(s.undecided());
  CHECK(*s.undecided() == 12);
  s.feed(13, {}, stray);  // nothing new: still open
  CHECK(s.undecided());
  s.feed(13, bytes_of("\nc\r", 0, 3), stray);
  CHECK(stray.empty());  // CRLF
  CHECK(*s.undecided() == 15);
  s.feed(16, bytes_of("x", 0, 1), stray);
  CHECK(stray == std::vector<uint64_t>{15});
  CHECK_FALSE(s.undecided());
}

TEST_CASE("a settled CR is stray, and so is an LF after it", "[stray_bytes]") {
  // The hold timed out (or a command came between BDAT chunks): the CR left as a space, so the
  // LF that finally follows has no CR before it in what the server got.
  StrayBytes s;
  std::vector<uint64_t> stray;
  s.feed(0, bytes_of("a\r", 0, 2), stray);
  CHECK(s.settle(stray));
  CHECK_FALSE(s.settle(stray));
  s.feed(2, bytes_of("\nb\r\n", 0, 4), stray);
  CHECK(stray == std::vector<uint64_t>{1, 2});
}

TEST_CASE("BDAT chunks are one message however the stream cuts them", "[stray_bytes]") {
  // Chunks lie apart in the stream (their BDAT command lines between them); a CRLF split
  // between two chunks is a CRLF of the message.
  using namespace std::string_literals;
  const std::vector<Piece> chunks{
      {20, "Subject: x\r"s}, {45, "\n\r\nbody\r"s}, {70, "\r\n.\n"s}, {90, "tail\r"s}};
  const std::vector<std::string> want{"Subject: x\r"s, "\n\r\nbody "s, "\r\n. "s, "tail "s};
  CHECK(sanitize(chunks) == want);
  for (size_t cut = 1; cut < 10; ++cut) {
    INFO("cut at " << cut);
    CHECK(sanitize(chunks, {cut}) == want);
  }
  std::string joined, joined_want;
  for (size_t i = 0; i < chunks.size(); ++i) {
    joined += chunks[i].bytes;
    joined_want += want[i];
  }
  CHECK(reference(joined) == joined_want);
  CHECK(canonical(joined_want));
}

TEST_CASE("random messages (seeded) match the definition in any cutting", "[stray_bytes]") {
  std::mt19937 rng(20240115);
  const char alphabet[] = {'\r', '\n', '\0', '.', 'a', ' '};
  for (int round = 0; round < 2000; ++round) {
    std::string m(rng() % 24 + 1, 'a');
    for (char& c : m) c = alphabet[rng() % sizeof alphabet];
    std::vector<size_t> cuts;
    for (size_t k = rng() % 5; k > 0; --k) cuts.push_back(rng() % m.size() + 1);
    std::sort(cuts.begin(), cuts.end());
    const std::string got = sanitize_whole(m, cuts);
    INFO("round " << round);
    REQUIRE(got == reference(m));
    REQUIRE(canonical(got));
  }
}
