#pragma once
// The netfilter hooks at which the rules divert SMTP into the daemon's queues (--hooks): a value
// of the configuration, named here once. nft/rules.hpp installs the chains for them; the kernel
// numbers are its business (nft/rules.cpp).
#include <cstdint>

namespace sg::config {

enum class Hook : uint8_t {
  kForward,  // traffic the gateway routes
  kInput,    // traffic to a mail server on this host
  kOutput,   // traffic from this host
};

inline constexpr Hook kHooks[] = {Hook::kForward, Hook::kInput, Hook::kOutput};

// The option's word for the hook, which is also the name of its chain.
constexpr const char* hook_name(Hook hook) {
  switch (hook) {
    case Hook::kForward:
      return "forward";
    case Hook::kInput:
      return "input";
    case Hook::kOutput:
      return "output";
  }
  return "forward";
}

}  // namespace sg::config
