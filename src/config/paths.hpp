#pragma once
// Where smtpguardd looks for its files unless told otherwise. The control socket's path is also
// where smtpguardctl looks (control/control_protocol.hpp), so both ends take it from here.
#include <string_view>

namespace sg::config {

inline constexpr std::string_view kDefaultConfigPath = "/etc/smtpguard/smtpguard.conf";
// In a directory of its own, so that systemd's RuntimeDirectory=smtpguard can provide it under
// ProtectSystem=strict; the daemon creates the directory (0755) when it is missing.
inline constexpr std::string_view kDefaultControlSocket = "/run/smtpguard/smtpguardd.sock";

}  // namespace sg::config
