#include "policy/line_policy.hpp"

#include <catch2/catch.hpp>

#include "policy/profile.hpp"

using namespace sg;
using policy::RewriteKind;
using policy::RewriteReason;

TEST_CASE("an answered command is deleted, except BDAT, which resets") {
  auto p = std::make_shared<policy::Profile>(*policy::builtin_profile("modern"));
  p->verbs[static_cast<size_t>(smtp::Verb::kVrfy)] = policy::CommandAction::kAnswer;
  p->verbs[static_cast<size_t>(smtp::Verb::kBdat)] = policy::CommandAction::kAnswer;
  const auto vrfy = policy::decide_line(*p, smtp::LineKind::kCommand, 0, "VRFY x\r\n", true);
  CHECK(vrfy.rewrite.kind == RewriteKind::kDelete);
  CHECK(vrfy.rewrite.reason == RewriteReason::kAnswered);
  // Its chunk follows without waiting for a reply: answering would leave it to the server.
  const auto bdat = policy::decide_line(*p, smtp::LineKind::kCommand, 0, "BDAT 10 LAST\r\n", true);
  CHECK(bdat.rewrite.kind == RewriteKind::kDelete);
  CHECK(bdat.rewrite.reason == RewriteReason::kReset);
  // Decided the same way from the first bytes, before the line ends.
  const auto partial = policy::decide_line(*p, smtp::LineKind::kCommand, 0, "BDAT 1", false);
  CHECK(partial.decided);
  CHECK(partial.rewrite.reason == RewriteReason::kReset);
}
