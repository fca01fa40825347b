#include "probe/reply_parser.hpp"

#include "util/ascii.hpp"

namespace sg::probe {

int reply_code(std::string_view line) {
  if (line.size() < 3) return 0;
  int code = 0;
  for (size_t i = 0; i < 3; ++i) {
    if (!is_digit(line[i])) return 0;
    code = code * 10 + (line[i] - '0');
  }
  return code;
}

bool is_continuation(std::string_view line) {
  return line.size() >= 4 && reply_code(line) != 0 && line[3] == '-';
}

void ReplyParser::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const size_t lf = bytes.find('\n');
    const std::string_view part = bytes.substr(0, lf);
    if (!cutting_) {
      const size_t room = kMaxLineBytes - line_.size();
      if (part.size() > room) {
        line_.append(part.substr(0, room));
        cutting_ = true;
        current_.truncated = true;
      } else {
        line_.append(part);
      }
    }
    if (lf == std::string_view::npos) return;
    end_line();
    bytes.remove_prefix(lf + 1);
  }
}

void ReplyParser::end_line() {
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  cutting_ = false;
  if (!open_) current_.code = reply_code(line_);
  open_ = true;
  const bool more = is_continuation(line_);
  current_.lines.push_back(std::move(line_));
  line_.clear();
  if (more && current_.lines.size() < kMaxReplyLines) return;
  if (more) current_.truncated = true;
  ready_.push_back(std::move(current_));
  current_ = Reply{};
  open_ = false;
}

Reply ReplyParser::take() {
  Reply r = std::move(ready_.front());
  ready_.pop_front();
  return r;
}

std::string ReplyParser::leftover() const {
  std::string out;
  for (const Reply& r : ready_)
    for (const std::string& l : r.lines) out += l + "\n";
  for (const std::string& l : current_.lines) out += l + "\n";
  out += line_;
  return out;
}

}  // namespace sg::probe
