#pragma once
// What one call into the pipeline hands back: the caller's Output, with the bytes its spans
// point into (the pipeline keeps them until its next call). Made once per call, passed down.
#include <cstdint>
#include <utility>
#include <vector>

#include "core/pipeline.hpp"

namespace sg::core {

class Outbox {
 public:
  // Bytes of the previous call's releases and injections: cleared by the next call.
  struct Storage {
    std::vector<std::vector<uint8_t>> released, injected;
  };
  Outbox(Output& out, Storage& storage) : out_(out), storage_(storage) {
    storage_.released.clear();
    storage_.injected.clear();
  }

  void inject(std::vector<uint8_t> bytes) {
    storage_.injected.push_back(std::move(bytes));
    out_.injected.push_back(Injection{storage_.injected.back()});
  }
  void drop_held(uint32_t packet_id) {
    out_.released.push_back(Release{packet_id, VerdictKind::kDrop, {}, 0});
  }
  // Where a released packet's bytes go (valid until the next call).
  std::vector<uint8_t>& release_buffer() { return storage_.released.emplace_back(); }
  void release(const Release& r) { out_.released.push_back(r); }
  void decide(Decision x) { out_.decisions.push_back(std::move(x)); }
  void mapped(const MappedFlow& m) { out_.mapped_flows.push_back(m); }

 private:
  Output& out_;
  Storage& storage_;
};

}  // namespace sg::core
