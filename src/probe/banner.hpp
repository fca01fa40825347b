#pragma once
// The greeting as Cisco Mailguard leaves it: what KB 320027 tells admins to look for when they
// telnet to their MX ("220****...0*2***0***", "220 SMTP/cmap____read"). Pure.
#include <cstdint>
#include <string>
#include <string_view>

namespace sg::probe {

enum class BannerMask : uint8_t {
  kNone,       // a banner as servers write them
  kPix51,      // only '*', '2' and '0' after the code: PIX 5.1+ / ASA mask-banner
  kAsterisks,  // only '*' after the code: PIX 4.x (or 5.1+ on a banner without 2 and 0)
  kCmap,       // "SMTP/cmap____ read": early PIX
};
BannerMask banner_mask(std::string_view line);

// What a banner line becomes when masked: every character after the code and its separator
// becomes '*', except the digits 2 and 0 unless `all`.
std::string mask_banner_line(std::string_view line, bool all);
// `seen` is `expected` as a device masked it; a Cisco that also masked the separator after the
// code ("220****") matches an expected "220 ***".
bool same_mask(std::string_view seen, std::string_view expected);

}  // namespace sg::probe
