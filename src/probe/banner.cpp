#include "probe/banner.hpp"

#include <regex>

#include "probe/reply_parser.hpp"

namespace sg::probe {

BannerMask banner_mask(std::string_view line) {
  static const std::regex cmap("SMTP/cmap_*\\s*read", std::regex::icase);
  if (std::regex_search(line.begin(), line.end(), cmap)) return BannerMask::kCmap;
  if (reply_code(line) == 0) return BannerMask::kNone;
  std::string_view text = line.substr(3);
  if (!text.empty() && (text.front() == ' ' || text.front() == '-')) text.remove_prefix(1);
  size_t stars = 0;
  bool digits = false;
  for (char c : text) {
    if (c == '*')
      ++stars;
    else if (c == '2' || c == '0')
      digits = true;
    else
      return BannerMask::kNone;
  }
  // "220 2.0" or "220 *" are too short to call a mask.
  if (stars < 3) return BannerMask::kNone;
  return digits ? BannerMask::kPix51 : BannerMask::kAsterisks;
}

std::string mask_banner_line(std::string_view line, bool all) {
  std::string out(line);
  for (size_t i = 3; i < out.size(); ++i) {
    const char c = out[i];
    if (i == 3 && (c == ' ' || c == '-')) continue;
    if (!all && (c == '2' || c == '0')) continue;
    out[i] = '*';
  }
  return out;
}

bool same_mask(std::string_view seen, std::string_view expected) {
  if (seen.size() != expected.size()) return false;
  for (size_t i = 0; i < seen.size(); ++i)
    if (seen[i] != expected[i] && !(i == 3 && seen[i] == '*')) return false;
  return true;
}

}  // namespace sg::probe
