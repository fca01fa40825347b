// The configuration file scanner (src/config/config_file.hpp): entries with their lines, and
// every malformed line reported with its number.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "config/config_file.hpp"

using namespace sg::config;

namespace {

std::string entries_text(const ConfigFile& f) {
  std::string out;
  for (const ConfigEntry& e : f.entries)
    out += std::to_string(e.line) + " [" + e.section + "] " + e.key + "=" + e.value + "|";
  return out;
}

}  // namespace

TEST_CASE("config file: keys, sections and lines") {
  const std::string text =
      "# comment\n"
      "; another comment\n"
      "\n"
      "queues = 0-1\n"
      "  profile=modern  \n"
      "\tanswer-reply = 550 5.7.1 No # not a comment, part of the value\n"
      "[policy]\r\n"
      "command.* = answer\r\n"
      "   # indented comment\n"
      "[ policy.mx-2 ]\n"
      "match-server = 198.18.2.0/24, 2001:db8:2::/64\n"
      "banner-text = a = b\n"
      "empty =\n"
      "[policy.last]";
  auto f = parse_config_text("/etc/x.conf", text);
  REQUIRE(f);
  CHECK(f->path == "/etc/x.conf");
  CHECK(entries_text(*f) ==
        "4 [] queues=0-1|"
        "5 [] profile=modern|"
        "6 [] answer-reply=550 5.7.1 No # not a comment, part of the value|"
        "8 [policy] command.*=answer|"
        "11 [policy.mx-2] match-server=198.18.2.0/24, 2001:db8:2::/64|"
        "12 [policy.mx-2] banner-text=a = b|"
        "13 [policy.mx-2] empty=|");
  REQUIRE(f->sections.size() == 3);
  CHECK(f->sections[0].name == "policy");
  CHECK(f->sections[0].line == 7);
  CHECK(f->sections[1].name == "policy.mx-2");
  CHECK(f->sections[1].line == 10);
  CHECK(f->sections[2].name == "policy.last");
  CHECK(f->sections[2].line == 14);
  CHECK(f->entries[0].full_name() == "queues");
  CHECK(f->entries[4].full_name() == "policy.mx-2.match-server");
}

TEST_CASE("config file: an empty file and a file of comments have no entries") {
  for (const char* text : {"", "\n", "# only\n; comments\n\n", "   \n\t\n"}) {
    auto f = parse_config_text("f", text);
    REQUIRE(f);
    CHECK(f->entries.empty());
    CHECK(f->sections.empty());
  }
}

TEST_CASE("config file: malformed lines are errors with their line number") {
  struct Case {
    std::string text;
    std::string message;
  };
  auto c = GENERATE(
      Case{"a = 1\nno equals sign\n",
           "f.conf:2: expected 'key = value', '[section]' or a comment, got 'no equals sign' "
           "(allowed: keys of letters, digits, '.', '-', '_', '*')"},
      Case{"= value\n",
           "f.conf:1: expected 'key = value', '[section]' or a comment, got '= value' (allowed: "
           "keys of letters, digits, '.', '-', '_', '*')"},
      Case{"\n\nbad key = 1\n",
           "f.conf:3: expected 'key = value', '[section]' or a comment, got 'bad key = 1' "
           "(allowed: keys of letters, digits, '.', '-', '_', '*')"},
      Case{"[policy\n",
           "f.conf:1: bad section header '[policy' (allowed: [NAME] with letters, digits, '.', "
           "'-', '_')"},
      Case{"[]\n",
           "f.conf:1: bad section header '[]' (allowed: [NAME] with letters, digits, '.', '-', "
           "'_')"},
      Case{"[policy.]\n",
           "f.conf:1: bad section header '[policy.]' (allowed: [NAME] with letters, digits, '.', "
           "'-', '_')"},
      Case{"[a b]\n",
           "f.conf:1: bad section header '[a b]' (allowed: [NAME] with letters, digits, '.', "
           "'-', '_')"},
      Case{"[policy] x = 1\n",
           "f.conf:1: bad section header '[policy] x = 1' (allowed: [NAME] with letters, digits, "
           "'.', '-', '_')"},
      Case{"a = 1\nb = \x01\n",
           "f.conf:2: a control character in the line (allowed: printable text and tabs)"},
      Case{std::string("a = x\0y\n", 8),
           "f.conf:1: a control character in the line (allowed: printable text and tabs)"},
      Case{"queues = 1\nport = 25\nQueues = 2\n",
           "f.conf:3: option 'Queues': given twice (first on line 1)"},
      Case{"[policy.a]\ncommand.vrfy = mask\ncommand.VRFY = allow\n",
           "f.conf:3: option 'policy.a.command.VRFY': given twice (first on line 2)"},
      Case{"[policy]\na = 1\n[policy.b]\n[Policy]\n",
           "f.conf:4: section [Policy]: given twice (first on line 1)"});
  INFO(c.text);
  auto f = parse_config_text("f.conf", c.text);
  REQUIRE_FALSE(f);
  CHECK(f.error().text() == c.message);
  CHECK_FALSE(f.error().from_command_line());
}

TEST_CASE("config file: the same key in different sections is no repeat") {
  auto f =
      parse_config_text("f", "banner = x\n[policy]\nbanner = mask\n[policy.a]\nbanner = pass\n");
  REQUIRE(f);
  CHECK(f->entries.size() == 3);
}

TEST_CASE("config file: a file larger than 1 MiB is refused") {
  const std::string big(kMaxConfigBytes + 1, '#');
  auto f = parse_config_text("big.conf", big);
  REQUIRE_FALSE(f);
  CHECK(f.error().text() == "big.conf: the file has 1048577 bytes (allowed: at most 1048576)");
  CHECK(parse_config_text("ok.conf", std::string(kMaxConfigBytes, '#')));
}

TEST_CASE("config file: read from disk, and a missing file names itself") {
  const std::string path = "/tmp/smtpguard-config-file-test." + std::to_string(::getpid());
  {
    std::ofstream out(path);
    out << "port = 2525\n[policy]\nbanner = mask\n";
  }
  auto f = read_config_file(path);
  std::remove(path.c_str());
  REQUIRE(f);
  CHECK(entries_text(*f) == "1 [] port=2525|3 [policy] banner=mask|");
  auto missing = read_config_file(path);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().text() == path + ": cannot read: No such file or directory");
}

TEST_CASE("error texts: file and line, or the command-line option") {
  ConfigError in_file{"/etc/a.conf", 7, "option 'port'", {"got '0'", "a number 1-65535"}};
  CHECK(in_file.text() == "/etc/a.conf:7: option 'port': got '0' (allowed: a number 1-65535)");
  ConfigError whole_file{"/etc/a.conf", 0, "", {"cannot read: Permission denied", ""}};
  CHECK(whole_file.text() == "/etc/a.conf: cannot read: Permission denied");
  ConfigError command_line{"", 0, "--port", {"got '0'", "a number 1-65535"}};
  CHECK(command_line.from_command_line());
  CHECK(command_line.text() == "--port: got '0' (allowed: a number 1-65535)");
}

TEST_CASE("did you mean: the closest name within a few edits, ignoring case") {
  const std::vector<std::string> names{"queues", "queue-maxlen", "profile", "port", "hooks"};
  struct Case {
    const char* word;
    const char* expected;
  };
  auto c =
      GENERATE(Case{"queus", "queues"}, Case{"QUEUES", "queues"}, Case{"profil", "profile"},
               Case{"prot", "port"}, Case{"queue-maxlne", "queue-maxlen"}, Case{"hook", "hooks"},
               Case{"x", ""}, Case{"frobnicate", ""}, Case{"verbose", ""});
  INFO(c.word);
  CHECK(closest_name(c.word, names) == c.expected);
}

TEST_CASE("got: unprintable bytes are shown escaped") {
  CHECK(got("abc") == "got 'abc'");
  CHECK(got("") == "got ''");
  CHECK(got(std::string("a\0\x7f\xc3", 4)) == "got 'a\\x00\\x7f\\xc3'");
}
