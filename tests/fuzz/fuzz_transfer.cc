// Fuzz target: the zone transfer client's parsing, without its socket. The input is a
// flag byte, then response messages each behind a 2-byte length (as on TCP). They go
// through what control::Transfer does per message: TSIG, the header check, the answer
// records (dns::ReadRecord) and the AXFR/IXFR stream state machine; a complete stream is
// then made into a zone copy (ZoneCopy::FromRecords, or Apply on a base copy for IXFR) and
// built. The state machine lives in an anonymous namespace of control/transfer.cc, so
// that file is compiled into this target (its public functions replace the library's).
//
// Flag bits: 1 = IXFR from serial 1 (else AXFR); 2 = every message is signed with
// tsig::ServerSession and verified by the client (the MAC must then verify); 4 = every
// message as received also goes through a client session and tsig::VerifyRequest.
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/transfer.cc"  // NOLINT: reaches the stream parser in its anonymous namespace
#include "control/tsig.h"
#include "control/zone_copy.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

namespace control = tandem::control;
namespace dns = tandem::dns;
namespace tsig = tandem::control::tsig;
using tandem::fuzz::Fail;

constexpr uint64_t kNow = 1700000000;

dns::Record Rec(const std::string& owner_text, uint16_t type, const std::string& rdata) {
  dns::Record r;
  r.owner = *dns::NameFromText(owner_text);
  r.type = type;
  r.rclass = dns::kClassIn;
  r.ttl = 300;
  r.rdata = rdata;
  return r;
}

dns::Record Soa(uint32_t serial) {
  std::string rdata =
      *dns::NameFromText("ns1.example.com") + *dns::NameFromText("hostmaster.example.com");
  uint8_t timers[20];
  dns::Put32(timers, serial);
  dns::Put32(timers + 4, 3600);
  dns::Put32(timers + 8, 600);
  dns::Put32(timers + 12, 86400);
  dns::Put32(timers + 16, 300);
  rdata.append(reinterpret_cast<char*>(timers), 20);
  return Rec("example.com", dns::kTypeSOA, rdata);
}

struct Fixture {
  Fixture() {
    zone = *dns::NameFromText("example.com");
    key.name = *dns::NameFromText("xfr-key");
    key.algorithm = tsig::Algorithm::kHmacSha256;
    key.secret = "0123456789abcdef0123456789abcdef";
    keys.push_back(key);
    std::vector<dns::Record> records = {
        Soa(1), Rec("example.com", dns::kTypeNS, *dns::NameFromText("ns1.example.com")),
        Rec("ns1.example.com", dns::kTypeA, std::string("\xc0\x00\x02\x01", 4)),
        Rec("www.example.com", dns::kTypeA, std::string("\xc0\x00\x02\x50", 4))};
    auto copy = control::ZoneCopy::FromRecords(zone, records);
    if (!copy.ok()) Fail("the base zone copy does not build");
    base = std::make_unique<control::ZoneCopy>(std::move(*copy));
  }
  std::string zone;
  tsig::Key key;
  std::vector<tsig::Key> keys;
  std::unique_ptr<control::ZoneCopy> base;
};

Fixture& Get() {
  static Fixture* f = new Fixture();
  return *f;
}

// What Transfer() does with a finished stream's result: a copy that replaces the old one.
void MakeCopy(const control::TransferResult& result) {
  Fixture& f = Get();
  if (result.up_to_date) return;
  if (result.incremental) {
    auto copy = f.base->Apply(result.diffs);
    if (copy.ok()) (void)copy->Build();
    return;
  }
  if (result.records.empty()) Fail("a whole-zone transfer without records");
  auto copy = control::ZoneCopy::FromRecords(f.zone, result.records);
  if (copy.ok()) {
    if (copy->serial() != result.serial) Fail("copy serial differs from the stream's");
    (void)copy->Build();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Fixture& f = Get();
  const uint8_t flags = data[0];
  const bool ixfr = flags & 1, sign = flags & 2, raw_tsig = flags & 4;
  std::optional<dns::Record> have;
  if (ixfr) have = Soa(1);

  // The client's request, signed when the stream will be.
  control::TransferOptions options;
  options.zone = f.zone;
  const uint16_t id = size >= 5 ? dns::Get16(data + 3) : 0;  // the first message's ID
  std::string request =
      control::MakeQuery(options, id, ixfr ? dns::kTypeIXFR : dns::kTypeAXFR, have);
  std::unique_ptr<tsig::ClientSession> client;
  std::unique_ptr<tsig::ServerSession> server;
  if (sign) {
    client = std::make_unique<tsig::ClientSession>(f.key);
    if (!client->SignRequest(&request, kNow).ok()) Fail("cannot sign the request");
    std::string copy = request;
    tsig::ServerVerdict v =
        tsig::VerifyRequest(reinterpret_cast<uint8_t*>(copy.data()), copy.size(), f.keys, kNow);
    if (!v.signed_request || v.error != 0) Fail("our own signed request does not verify");
    server = std::make_unique<tsig::ServerSession>(f.key, v.request_mac);
  }
  tsig::ClientSession raw_client(f.key);
  if (raw_tsig && !raw_client.SignRequest(&request, kNow).ok()) Fail("cannot sign the request");

  control::Stream stream(f.zone, ixfr,
                         have ? std::optional<uint32_t>(control::SoaSerial(*have)) : std::nullopt);
  size_t pos = 1;
  while (!stream.done()) {
    if (pos + 2 > size) return 0;  // the stream is cut
    size_t len = dns::Get16(data + pos);
    if (pos + 2 + len > size) return 0;
    std::string m(reinterpret_cast<const char*>(data + pos + 2), len);
    pos += 2 + len;

    if (raw_tsig) {
      std::string a = m, b = m;
      (void)raw_client.VerifyResponse(reinterpret_cast<uint8_t*>(a.data()), a.size(), kNow);
      (void)tsig::VerifyRequest(reinterpret_cast<uint8_t*>(b.data()), b.size(), f.keys, kNow);
    }
    size_t dns_len = m.size();
    if (sign) {
      if (m.size() < dns::kHeaderSize) return 0;  // nothing to sign
      if (!server->Sign(&m, kNow).ok()) return 0;
      auto verified = client->VerifyResponse(reinterpret_cast<uint8_t*>(m.data()), m.size(), kNow);
      // A message we signed verifies, unless its own records are malformed (TSIG must be
      // found by walking them).
      if (verified.ok() && *verified != dns_len)
        Fail("TSIG verification returned the wrong length");
      if (!verified.ok()) return 0;
      dns_len = *verified;
    }
    const auto* msg = reinterpret_cast<const uint8_t*>(m.data());
    if (!control::CheckHeader(msg, dns_len, id).empty()) return 0;
    dns::Record record;
    std::string error;
    if (!control::ReadStream(msg, dns_len, &record, &stream, &error)) {
      if (error.empty()) Fail("a transfer error without a reason");
      return 0;
    }
    stream.EndOfMessage();
  }
  if (sign && !client->Finish().ok()) return 0;
  MakeCopy(stream.result());
  return 0;
}
