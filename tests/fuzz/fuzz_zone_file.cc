// Fuzz target: control::LoadZoneText on the input as the text of zone example.com. A zone
// that loads is put in a snapshot and asked for the names its lines start with (and a few
// fixed ones) by a handful of types over UDP and TCP; every response must be well-formed.
// $INCLUDE would make libzscanner open files: inputs naming it are skipped.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "dataplane/handler.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

namespace dns = tandem::dns;
using tandem::dataplane::QueryHandler;
using tandem::dataplane::Transport;
using tandem::dataplane::WorkerCounters;

bool NamesInclude(const std::string& text) {
  std::string lower(text.size(), '\0');
  std::transform(text.begin(), text.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("$include") != std::string::npos || lower.find('\0') != std::string::npos;
}

// Owner names written at the start of lines, made absolute under the zone; at most 8.
std::vector<std::string> OwnerNames(const std::string& text) {
  std::vector<std::string> out = {"example.com.", "www.example.com.", "x.y.example.com.",
                                  "*.example.com.", "nope.example.com."};
  size_t pos = 0;
  while (pos < text.size() && out.size() < 13) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    if (pos < eol && !std::isspace(static_cast<unsigned char>(text[pos])) && text[pos] != ';' &&
        text[pos] != '$' && text[pos] != '@') {
      size_t end = pos;
      while (end < eol && !std::isspace(static_cast<unsigned char>(text[end]))) ++end;
      std::string owner = text.substr(pos, end - pos);
      if (owner.back() != '.') owner += ".example.com.";
      out.push_back(owner);
    }
    pos = eol + 1;
  }
  return out;
}

std::vector<uint8_t> Query(const std::string& wire_name, uint16_t qtype, bool edns) {
  std::vector<uint8_t> q = {0x12, 0x34, 0x00, 0x00, 0, 1,
                            0,    0,    0,    0,    0, edns ? uint8_t{1} : uint8_t{0}};
  q.insert(q.end(), wire_name.begin(), wire_name.end());
  q.insert(q.end(), {static_cast<uint8_t>(qtype >> 8), static_cast<uint8_t>(qtype), 0, 1});
  if (edns) q.insert(q.end(), {0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0});
  return q;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (NamesInclude(text)) return 0;
  auto loaded = tandem::control::LoadZoneText("example.com", text, "fuzz.zone");
  if (!loaded.ok()) {
    if (loaded.status().message().empty()) tandem::fuzz::Fail("zone error without a message");
    return 0;
  }
  if (!loaded->zone) tandem::fuzz::Fail("a loaded zone without a Zone");
  tandem::zone::Snapshot snapshot({loaded->zone});
  static const QueryHandler handler;
  static WorkerCounters counters;
  static const uint16_t kTypes[] = {dns::kTypeA,   dns::kTypeNS, dns::kTypeSOA,   dns::kTypeMX,
                                    dns::kTypeANY, dns::kTypeDS, dns::kTypeCNAME, dns::kTypeTXT};
  std::vector<uint8_t> out(dns::kMaxMessageSize);
  for (const std::string& owner : OwnerNames(text)) {
    auto wire = dns::NameFromText(owner);
    if (!wire.ok()) continue;
    for (uint16_t t : kTypes) {
      for (bool tcp : {false, true}) {
        std::vector<uint8_t> q = Query(*wire, t, !tcp);
        size_t cap = tcp ? out.size() : 1232;
        size_t n = handler.Answer(&snapshot, q.data(), q.size(), out.data(), cap,
                                  tcp ? Transport::kTcp : Transport::kUdp, counters);
        if (n == 0) tandem::fuzz::Fail("no answer to a well-formed query");
        tandem::fuzz::CheckResponse(out.data(), n, cap);
      }
    }
  }
  return 0;
}
