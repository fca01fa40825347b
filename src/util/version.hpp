#pragma once
// The version every program prints: CMake's project(VERSION), defined for every target by the
// build (SMTPGUARD_VERSION), so the daemon, smtpguardctl and the probe never disagree.
#include <string_view>

#ifndef SMTPGUARD_VERSION
#error "SMTPGUARD_VERSION comes from the build (CMakeLists.txt: project(... VERSION ...))"
#endif

namespace sg {

inline constexpr std::string_view kVersion = SMTPGUARD_VERSION;

}  // namespace sg
