#pragma once
// Rendering a probe's result: a readable report (default) and JSON for scripts
// (src/probe/report.schema.json describes it). Pure: strings in, strings out.
#include <optional>
#include <string>

#include "probe/classify.hpp"
#include "probe/transcript.hpp"

namespace sg::probe {

struct ProbeResult {
  std::string version;
  Transcript path;
  std::optional<Transcript> direct;
  Classification classification;
};

// The exit status: 0 no inspection seen, 1 inspection found, 2 could not probe (the path's
// connection or greeting failed, the --direct one did, or the dialogue ended early without any
// evidence of inspection).
int exit_code(const ProbeResult& r);
// Why the exit status is 2 (empty otherwise).
std::string probe_error(const ProbeResult& r);

struct TextOptions {
  bool transcripts = true;  // append both dialogues
  size_t width = 78;        // wrap prose at this column
};
std::string render_text(const ProbeResult& r, const TextOptions& o = {});
std::string render_json(const ProbeResult& r);

// JSON string literal for arbitrary bytes: control characters and bytes >= 0x80 (read as
// Latin-1: servers send anything) become \u escapes, so the output is always valid JSON.
std::string json_string(std::string_view bytes);

}  // namespace sg::probe
