#pragma once
// A fresh directory under /tmp for one test, removed with everything in it when the test ends
// (also when a REQUIRE fails: the destructor runs as the test unwinds).
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace sg::test {

struct TempDir {
  std::filesystem::path path;

  // `prefix` names the test's files in /tmp: "/tmp/PREFIX_XXXXXX".
  explicit TempDir(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + "_XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace sg::test
