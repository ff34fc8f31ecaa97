// Shared by the libFuzzer targets: the small zone they answer from (built once with
// control::LoadZoneText) and the invariants every response must satisfy. A broken
// invariant aborts, so libFuzzer records the input like any crash. No I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "control/zone_file.h"
#include "dataplane/dns/message.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/record.h"
#include "dataplane/dns/wire.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::fuzz {

// Every lookup outcome has a name here: referral with glue, CNAME chains (also out of
// zone and looping), DNAME, wildcards, an empty non-terminal, additional-section targets,
// and an RRset too large for 512 bytes (truncation).
inline constexpr char kZoneText[] = R"($ORIGIN example.com.
$TTL 300
@        SOA   ns1 hostmaster 2024010101 3600 600 86400 300
@        NS    ns1
@        NS    ns2.example.net.
@        MX    10 mail
@        MX    20 mail.example.net.
@        TXT   "v=spf1 -all"
@        AAAA  2001:db8::1
ns1      A     192.0.2.1
ns1      AAAA  2001:db8::53
mail     A     192.0.2.25
www      A     192.0.2.80
www      A     192.0.2.81
www      AAAA  2001:db8::80
alias    CNAME www
chain    CNAME alias
out      CNAME www.example.net.
loop1    CNAME loop2
loop2    CNAME loop1
*.wild   A     192.0.2.99
*.wild   TXT   "wildcard"
a.b.c.ent A    192.0.2.7
sub      NS    ns.sub
sub      NS    ns.elsewhere.example.
ns.sub   A     192.0.2.53
ns.sub   AAAA  2001:db8::5353
dn       DNAME target.example.net.
dnloop   DNAME dn.example.com.
_sip._udp SRV  10 60 5060 sip
sip      A     192.0.2.60
ptr      PTR   www.example.com.
caa      CAA   0 issue "ca.example"
big      TXT   "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "1123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "2123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "3123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "4123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "5123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
unk      TYPE65280 \# 4 deadbeef
)";

// A second zone below the first one's delegation, so FindZone has to pick the deeper.
inline constexpr char kChildZoneText[] = R"($ORIGIN deep.sub.example.com.
$TTL 60
@   SOA ns hostmaster 1 3600 600 86400 60
@   NS  ns
ns  A   192.0.2.54
www A   192.0.2.55
)";

[[noreturn]] inline void Fail(const char* what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

inline std::unique_ptr<zone::Snapshot> MakeSnapshot() {
  auto parent = control::LoadZoneText("example.com", kZoneText, "fuzz-zone");
  auto child = control::LoadZoneText("deep.sub.example.com", kChildZoneText, "fuzz-child");
  if (!parent.ok() || !child.ok()) Fail("the fuzz zones do not load");
  return std::make_unique<zone::Snapshot>(
      std::vector<std::shared_ptr<const zone::Zone>>{parent->zone, child->zone});
}

// A response must be a whole, well-formed DNS message: QR set, at most one question,
// every record readable (names decompress with backward pointers only), nothing after
// the last record.
inline void CheckResponse(const uint8_t* m, size_t n, size_t cap) {
  if (n > cap) Fail("response longer than the buffer it was written to");
  if (n < dns::kHeaderSize) Fail("response shorter than a header");
  if (!dns::header::Qr(m)) Fail("response without QR");
  if (dns::header::Qdcount(m) > 1) Fail("response with more than one question");
  size_t pos = dns::kHeaderSize;
  for (int i = 0; i < dns::header::Qdcount(m); ++i) {
    if (dns::SkipName(m, n, pos, &pos) != dns::NameError::kOk || pos + 4 > n)
      Fail("response question malformed");
    pos += 4;
  }
  int budget = 4096;
  uint32_t records =
      uint32_t{dns::header::Ancount(m)} + dns::header::Nscount(m) + dns::header::Arcount(m);
  for (uint32_t i = 0; i < records; ++i) {
    dns::Record r;
    std::string error;
    if (!dns::ReadRecord(m, n, &pos, &budget, &r, &error)) Fail("response record malformed");
  }
  if (pos != n) Fail("response has bytes after its last record");
}

}  // namespace tandem::fuzz
