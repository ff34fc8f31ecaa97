// Test helpers: build query packets and decode responses into comparable values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tandem::testing {

struct QueryOptions {
  uint16_t id = 0x1234;
  bool edns = false;
  uint16_t udp_size = 1232;
  bool do_bit = false;
  uint8_t opcode = 0;
  uint16_t qclass = 1;
  bool rd = false;
};

std::vector<uint8_t> MakeQuery(const std::string& name, uint16_t type, const QueryOptions& o = {});

struct Record {
  std::string owner;  // presentation, lower-cased
  uint16_t type;
  uint32_t ttl;
  std::string rdata;  // presentation for names-bearing types and A/AAAA, hex otherwise
};

struct Decoded {
  bool ok = false;  // parsed without error
  uint16_t id = 0;
  bool qr = false, aa = false, tc = false, rd = false;
  int rcode = 0;  // with the extended bits from OPT
  int qdcount = 0;
  std::string qname_raw;  // the question name exactly as on the wire (presentation, case kept)
  uint16_t qtype = 0;
  std::vector<Record> answer, authority, additional;
  bool has_opt = false;
  uint16_t opt_udp_size = 0;
  bool opt_do = false;
};

Decoded Decode(const uint8_t* msg, size_t len);
inline Decoded Decode(const std::vector<uint8_t>& m) { return Decode(m.data(), m.size()); }

// "owner TYPE rdata" lines for easy assertions.
std::vector<std::string> Lines(const std::vector<Record>& rrs);

}  // namespace tandem::testing
