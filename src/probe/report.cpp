#include "probe/report.hpp"

#include "util/ascii.hpp"

namespace sg::probe {
namespace {

// Word-wraps `text` to `width`, the first line after `first`, the others indented by `indent`.
std::string wrap(std::string_view text, const std::string& first, size_t indent, size_t width) {
  std::string out = first;
  size_t col = first.size();
  bool line_start = true;
  while (!text.empty()) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    const size_t sp = text.find(' ');
    const std::string_view word = text.substr(0, sp);
    text.remove_prefix(sp == std::string_view::npos ? text.size() : sp);
    if (word.empty()) break;
    if (!line_start && col + 1 + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      col = indent;
      line_start = true;
    }
    if (!line_start) {
      out += ' ';
      ++col;
    }
    out += word;
    col += word.size();
    line_start = false;
  }
  return out + "\n";
}

std::string endpoint_line(const char* label, const Transcript& t) {
  std::string out = std::string(label) + t.target;
  if (!t.address.empty() && t.address != t.target) out += " (connected to " + t.address + ")";
  return out + "\n";
}

const Finding* first_incomplete(const ProbeResult& r) {
  return r.classification.find(FindingKind::kSessionIncomplete);
}

// --- JSON ------------------------------------------------------------------------------------

std::string json_bool(bool b) {
  return b ? "true" : "false";
}

std::string json_or_null(const std::string& s) {
  return s.empty() ? "null" : json_string(s);
}

std::string json_strings(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + json_string(v[i]);
  return out + "]";
}

std::string json_tls(const std::optional<TlsInfo>& t) {
  if (!t) return "null";
  return "{\"ok\": " + json_bool(t->ok) + ", \"protocol\": " + json_or_null(t->protocol) +
         ", \"cipher\": " + json_or_null(t->cipher) +
         ", \"peer_subject\": " + json_or_null(t->peer_subject) +
         ", \"verify\": " + json_or_null(t->verify) + ", \"error\": " + json_or_null(t->error) +
         "}";
}

std::string json_transcript(const Transcript& t, const std::string& in) {
  std::string out = "{\n";
  out += in + "  \"target\": " + json_string(t.target) + ",\n";
  out += in + "  \"address\": " + json_or_null(t.address) + ",\n";
  out += in + "  \"failure\": " + json_or_null(t.failure) + ",\n";
  out += in + "  \"tls\": " + json_tls(t.tls) + ",\n";
  out += in + "  \"after_starttls\": " + json_or_null(t.after_starttls) + ",\n";
  out += in + "  \"exchanges\": [";
  for (size_t i = 0; i < t.exchanges.size(); ++i) {
    const Exchange& e = t.exchanges[i];
    out += i ? ",\n" : "\n";
    out += in + "    {\"step\": " + json_string(to_string(e.step)) +
           ", \"sent\": " + json_or_null(e.sent) +
           ", \"status\": " + json_string(to_string(e.status)) +
           ", \"error\": " + json_or_null(e.error) +
           ", \"elapsed_ms\": " + std::to_string(e.elapsed_ms) + ", \"reply\": ";
    if (e.reply)
      out += "{\"code\": " + std::to_string(e.reply->code) +
             ", \"lines\": " + json_strings(e.reply->lines) +
             ", \"truncated\": " + json_bool(e.reply->truncated) + "}";
    else
      out += "null";
    out += "}";
  }
  out += t.exchanges.empty() ? "]\n" : "\n" + in + "  ]\n";
  return out + in + "}";
}

std::string json_endpoint(const Transcript& t) {
  return "{\"name\": " + json_string(t.target) + ", \"address\": " + json_or_null(t.address) + "}";
}

}  // namespace

int exit_code(const ProbeResult& r) {
  if (!r.path.failure.empty()) return 2;
  if (r.classification.inspection()) return 1;
  if (r.direct && !r.direct->failure.empty()) return 2;
  if (first_incomplete(r)) return 2;
  return 0;
}

std::string probe_error(const ProbeResult& r) {
  if (exit_code(r) != 2) return {};
  if (!r.path.failure.empty()) return r.path.failure;
  if (r.direct && !r.direct->failure.empty()) return "direct: " + r.direct->failure;
  if (const Finding* f = first_incomplete(r)) return "the dialogue ended early: " + f->detail;
  return "could not probe";
}

std::string json_string(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : bytes) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (is_printable(static_cast<char>(c))) {
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out + "\"";
}

std::string render_text(const ProbeResult& r, const TextOptions& o) {
  std::string out = "smtpguard-probe " + r.version + "\n";
  out += endpoint_line("target:  ", r.path);
  if (r.direct) out += endpoint_line("direct:  ", *r.direct);
  out += "\n";
  const int code = exit_code(r);
  const auto& findings = r.classification.findings;
  size_t evidence_of_inspection = 0;
  for (const Finding& f : findings) evidence_of_inspection += info(f.kind).inspection ? 1 : 0;
  if (code == 1)
    out += "RESULT: SMTP inspection found (" + std::to_string(evidence_of_inspection) +
           (evidence_of_inspection == 1 ? " finding" : " findings") + ", exit status 1)\n";
  else if (code == 0)
    out += "RESULT: no SMTP inspection visible (exit status 0)\n";
  else
    out += wrap("could not probe: " + probe_error(r) + " (exit status 2)", "RESULT: ", 8, o.width);

  for (size_t i = 0; i < findings.size(); ++i) {
    const Finding& f = findings[i];
    const FindingInfo& fi = info(f.kind);
    const std::string num = "[" + std::to_string(i + 1) + "] ";
    out += "\n" + wrap(std::string(fi.title) + (fi.inspection ? ""
                                                              : " (not evidence of "
                                                                "inspection)"),
                       num, num.size(), o.width);
    out += wrap(f.detail, "    " + std::string(to_string(f.confidence)) + ": ", 6, o.width);
    if (!f.evidence.empty()) {
      out += "    evidence:\n";
      for (const std::string& e : f.evidence) out += "      " + e + "\n";
    }
    if (!fi.symptoms.empty()) {
      out += "    symptoms:\n";
      for (Symptom s : fi.symptoms)
        out += wrap(std::string(info(s).text) + " [" + std::string(info(s).source) + "]",
                    "      - ", 8, o.width);
    }
    // Several findings share a fix (every hidden keyword has the same): say it once.
    size_t same = i;
    for (size_t j = 0; j < i && same == i; ++j)
      if (info(findings[j].kind).fix == fi.fix) same = j;
    if (same == i)
      out += wrap(fi.fix, "    fix: ", 6, o.width);
    else
      out += "    fix: as for [" + std::to_string(same + 1) + "]\n";
  }
  if (!r.classification.notes.empty()) {
    out += "\nNotes:\n";
    for (const std::string& n : r.classification.notes) out += wrap(n, "  - ", 4, o.width);
  }
  if (o.transcripts) {
    if (!r.path.exchanges.empty())
      out += "\nDialogue through the path (" + r.path.address + "):\n" +
             format_transcript(r.path, "  ");
    if (r.direct && !r.direct->exchanges.empty())
      out += "\nDialogue with the server directly (" + r.direct->address + "):\n" +
             format_transcript(*r.direct, "  ");
  }
  return out;
}

std::string render_json(const ProbeResult& r) {
  const int code = exit_code(r);
  std::string out = "{\n";
  out += "  \"schema\": \"smtpguard-probe-report/1\",\n";
  out += "  \"version\": " + json_string(r.version) + ",\n";
  out += "  \"result\": " +
         json_string(code == 0   ? "clean"
                     : code == 1 ? "inspection"
                                 : "error") +
         ",\n";
  out += "  \"exit_code\": " + std::to_string(code) + ",\n";
  out += "  \"error\": " + json_or_null(probe_error(r)) + ",\n";
  out += "  \"target\": " + json_endpoint(r.path) + ",\n";
  out += "  \"direct\": " + (r.direct ? json_endpoint(*r.direct) : "null") + ",\n";
  out += "  \"findings\": [";
  const auto& findings = r.classification.findings;
  for (size_t i = 0; i < findings.size(); ++i) {
    const Finding& f = findings[i];
    const FindingInfo& fi = info(f.kind);
    out += i ? ",\n" : "\n";
    out += "    {\n";
    out += "      \"id\": " + json_string(fi.id) + ",\n";
    out += "      \"title\": " + json_string(fi.title) + ",\n";
    out += "      \"inspection\": " + json_bool(fi.inspection) + ",\n";
    out += "      \"confidence\": " + json_string(to_string(f.confidence)) + ",\n";
    out += "      \"detail\": " + json_string(f.detail) + ",\n";
    out += "      \"evidence\": " + json_strings(f.evidence) + ",\n";
    out += "      \"symptoms\": [";
    for (size_t j = 0; j < fi.symptoms.size(); ++j) {
      const SymptomInfo& si = info(fi.symptoms[j]);
      out += (j ? ", " : "") + std::string("{\"id\": ") + json_string(si.id) +
             ", \"text\": " + json_string(si.text) + ", \"source\": " + json_string(si.source) +
             "}";
    }
    out += "],\n";
    out += "      \"fix\": " + json_string(fi.fix) + "\n";
    out += "    }";
  }
  out += findings.empty() ? "],\n" : "\n  ],\n";
  out += "  \"notes\": " + json_strings(r.classification.notes) + ",\n";
  out += "  \"transcripts\": {\n";
  out += "    \"path\": " + json_transcript(r.path, "    ") + ",\n";
  out += "    \"direct\": " + (r.direct ? json_transcript(*r.direct, "    ") : "null") + "\n";
  out += "  }\n";
  return out + "}\n";
}

}  // namespace sg::probe
