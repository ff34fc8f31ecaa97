// The query handler: RFC 1034 4.3.2 lookup with RFC 2308 negative answers, RFC 4592
// wildcards, RFC 6672 DNAME, referrals with glue, additional-section processing, EDNS(0)
// and truncation. Everything lives on the stack or in the caller's buffers.
//
//   parse -> class/opcode/type gates -> find zone -> walk from the apex down:
//     zone cut      -> referral (AA=0, NS in authority, glue)
//     DNAME above   -> DNAME + synthesized CNAME, follow the new name
//     exact node    -> CNAME: follow | RRset | NODATA (SOA)
//     no node       -> "*.<closest encloser>" -> as exact | NXDOMAIN (SOA)
#include "dataplane/handler.h"

#include <algorithm>
#include <cstring>

#include "dataplane/burst.h"
#include "dataplane/dns/message.h"
#include "dataplane/zone/pools.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::dataplane {
namespace {

using dns::MessageWriter;
using zone::kNone;
using zone::LookupName;
using zone::Node;
using zone::RRset;
using zone::Zone;

enum Section { kAnswer = 0, kAuthority = 1, kAdditional = 2 };

enum class Match { kExact, kReferral, kDname, kNxDomain };

struct Found {
  Match match;
  uint32_t node;  // the exact (or wildcard) node, the cut, the DNAME owner, or the encloser
  int suffix;     // with kReferral and kDname: the cut's or owner's suffix index in the name
};

// Walks from the apex towards the name, one label at a time.
Found Lookup(const Zone& z, const LookupName& name, uint16_t qtype) {
  int apex_index = name.labels - z.apex_labels();
  uint32_t last = 0;
  for (int i = apex_index; i >= 0; --i) {
    uint32_t id = i == apex_index ? 0 : z.Find(name.suffix(i), name.suffix_len(i), name.hashes[i]);
    if (id == kNone) {
      // No such name: the closest encloser is the previous one; try its wildcard.
      const Node& encloser = z.node(last);
      if (encloser.flags & zone::kWildcardChild) {
        uint8_t wild[255];
        size_t len = name.suffix_len(i + 1);
        wild[0] = 1;
        wild[1] = '*';
        std::memcpy(wild + 2, name.suffix(i + 1), len);
        uint32_t w = z.Find(wild, len + 2, zone::HashName(wild, len + 2));
        if (w != kNone) return {Match::kExact, w, 0};
      }
      return {Match::kNxDomain, last, 0};
    }
    last = id;
    const Node& n = z.node(id);
    if ((n.flags & zone::kDelegation) && !(i == 0 && qtype == dns::kTypeDS))
      return {Match::kReferral, id, i};
    if (i == 0) return {Match::kExact, id, 0};
    if (n.flags & zone::kHasDname) return {Match::kDname, id, i};
  }
  return {Match::kExact, last, 0};
}

class Response {
 public:
  Response(MessageWriter& w, const Zone& z) : w_(w), z_(z) {}

  // Writes a whole RRset or nothing. On failure the message is marked truncated unless
  // the section is additional (optional data).
  bool PutSet(Section s, const uint8_t* owner, const RRset& set, uint32_t ttl) {
    if (truncated_) return false;
    size_t start = w_.size();
    for (zone::Rdata rr : z_.Records(set)) {
      if (!w_.WriteRecord(owner, set.type, ttl, rr.data, rr.size)) {
        w_.Rollback(start);
        if (s != kAdditional) truncated_ = true;
        return false;
      }
    }
    counts_[s] += set.count;
    return true;
  }
  bool PutSet(Section s, const uint8_t* owner, const RRset& set) { return PutSet(s, owner, set, set.ttl); }

  bool PutRecord(Section s, const uint8_t* owner, uint16_t type, uint32_t ttl, const uint8_t* rdata,
                 uint16_t rdlen) {
    if (truncated_) return false;
    if (!w_.WriteRecord(owner, type, ttl, rdata, rdlen)) {
      if (s != kAdditional) truncated_ = true;
      return false;
    }
    ++counts_[s];
    return true;
  }

  // The apex as an owner: a suffix of the question name, which every answer's zone holds,
  // so that the writer points at it without a search.
  void SetApexInQuestion(const uint8_t* apex) { apex_ = apex; }
  void PutSoa(Section s) { PutSet(s, apex_, z_.soa(), z_.negative_ttl()); }

  // The question name in the message, as an owner the writer compresses without a search.
  const uint8_t* question_name() const { return w_.question_name(); }

  // Remembers an RRset whose targets need addresses in the additional section.
  void WantAdditional(const RRset& set) {
    if (set.additional != kNone && nwant_ < kMaxWant) want_[nwant_++] = &set;
  }

  void PutAdditional() {
    uint32_t done[kMaxDone];
    int ndone = 0;
    for (int i = 0; i < nwant_; ++i) {
      const RRset& set = *want_[i];
      for (uint16_t k = 0; k < set.count; ++k) {
        uint32_t id = z_.AdditionalNode(set, k);
        if (id == kNone || std::find(done, done + ndone, id) != done + ndone) continue;
        if (ndone < kMaxDone) done[ndone++] = id;
        const Node& n = z_.node(id);
        for (uint16_t type : {dns::kTypeA, dns::kTypeAAAA})
          if (const RRset* addr = z_.FindRRset(n, type)) PutSet(kAdditional, z_.NodeName(n), *addr);
      }
    }
  }

  uint16_t count(Section s) const { return counts_[s]; }
  bool truncated() const { return truncated_; }

 private:
  static constexpr int kMaxWant = 16;
  static constexpr int kMaxDone = 64;
  MessageWriter& w_;
  const Zone& z_;
  const uint8_t* apex_ = z_.apex();
  uint16_t counts_[3] = {};
  bool truncated_ = false;
  const RRset* want_[kMaxWant];
  int nwant_ = 0;
};

// Replaces the DNAME owner suffix of `name` by the DNAME target; false if over 255 octets.
bool Substitute(const LookupName& name, int owner_suffix, const uint8_t* original,
                const uint8_t* target, uint8_t* out, size_t* out_len) {
  size_t prefix = name.offsets[owner_suffix];
  size_t target_len = dns::WireNameLength(target, dns::kMaxNameLength);
  if (prefix + target_len > dns::kMaxNameLength) return false;
  std::memcpy(out, original, prefix);
  std::memcpy(out + prefix, target, target_len);
  *out_len = prefix + target_len;
  return true;
}

struct Outcome {
  uint8_t rcode = dns::kNoError;
  bool aa = true;
};

// A per-thread random number for weighted pools: no lock, no system call.
uint32_t NextRandom() {
  static thread_local uint64_t state = 0x9e3779b97f4a7c15ULL ^ reinterpret_cast<uintptr_t>(&state);
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return static_cast<uint32_t>(state >> 16);
}

// A and AAAA at a pooled name, from the pool's members by its policy.
void AnswerFromPool(const zone::Pool& pool, const zone::PoolSet::Binding& b, const uint8_t* owner,
                    uint16_t qtype, Response& r, WorkerCounters& counters) {
  bool v6 = qtype == dns::kTypeAAAA;
  uint16_t picked[zone::kMaxPoolMembers];
  bool all_down = false;
  int n = zone::PickMembers(pool, v6, NextRandom(), picked, &all_down);
  if (all_down) ++counters.pool_all_down;
  if (n == 0) {
    r.PutSoa(kAuthority);  // no member of this family: NODATA
    return;
  }
  for (int i = 0; i < n; ++i) {
    const zone::PoolMember& m = pool.members[picked[i]];
    if (r.PutRecord(kAnswer, owner, qtype, b.ttl, m.addr, v6 ? 16 : 4)) ++counters.member_answers[m.id];
  }
}

// Resolves the question inside `z`, following CNAME and DNAME links within the zone.
// Pooled names answer A and AAAA from their pool; their other types come from the zone
// (NODATA where the zone has no such name). `qname` is the question's name, prepared.
Outcome Resolve(const Zone& z, const dns::Query& q, const LookupName& qname, Response& r,
                int max_chain, const zone::PoolSet* pools, WorkerCounters& counters) {
  Outcome out;
  r.SetApexInQuestion(r.question_name() + qname.offsets[qname.labels - z.apex_labels()]);
  const LookupName* name = &qname;
  LookupName chained;  // the names links lead to
  // The current name as written in answers: the question (its exact case) first, taken
  // from the message so that the writer compresses it without a search.
  const uint8_t* owner = r.question_name();
  uint8_t synth[2][dns::kMaxNameLength];
  for (int step = 0;; ++step) {
    const zone::PoolSet::Binding* pooled = pools ? pools->Find(*name) : nullptr;
    if (pooled && (q.qtype == dns::kTypeA || q.qtype == dns::kTypeAAAA)) {
      AnswerFromPool(pools->pools()[pooled->pool], *pooled, owner, q.qtype, r, counters);
      return out;
    }
    Found f = Lookup(z, *name, q.qtype);
    const Node& n = z.node(f.node);
    const uint8_t* next = nullptr;
    size_t next_len = 0;
    switch (f.match) {
      case Match::kReferral: {
        const RRset* ns = z.FindRRset(n, dns::kTypeNS);
        if (step == 0) out.aa = false;
        // The cut is the name looked up or above it: in the question, the first time.
        r.PutSet(kAuthority, step == 0 ? r.question_name() + qname.offsets[f.suffix] : z.NodeName(n), *ns);
        r.WantAdditional(*ns);
        return out;
      }
      case Match::kNxDomain:
        if (pooled == nullptr) out.rcode = dns::kNxDomain;  // a pooled name exists
        r.PutSoa(kAuthority);
        return out;
      case Match::kDname: {
        const RRset* dname = z.FindRRset(n, dns::kTypeDNAME);
        zone::Rdata target = z.First(*dname);
        r.PutSet(kAnswer, step == 0 ? r.question_name() + qname.offsets[f.suffix] : z.NodeName(n), *dname);
        uint8_t* buf = synth[step & 1];
        if (!Substitute(*name, f.suffix, owner, target.data, buf, &next_len)) {
          out.rcode = dns::kYxDomain;
          return out;
        }
        r.PutRecord(kAnswer, owner, dns::kTypeCNAME, dname->ttl, buf, static_cast<uint16_t>(next_len));
        // The synthesized CNAME answers a CNAME question itself (RFC 1034 4.3.2 step 3a).
        if (q.qtype == dns::kTypeCNAME) return out;
        next = buf;
        break;
      }
      case Match::kExact: {
        const RRset* cname = (n.flags & zone::kHasCname) ? z.FindRRset(n, dns::kTypeCNAME) : nullptr;
        // ANY matches the CNAME itself: no restart at its target (RFC 1034 4.3.2 step 3a).
        if (cname && q.qtype != dns::kTypeCNAME && q.qtype != dns::kTypeANY) {
          r.PutSet(kAnswer, owner, *cname);
          zone::Rdata target = z.First(*cname);
          next = target.data;
          next_len = target.size;
          break;
        }
        if (q.qtype == dns::kTypeANY) {
          // RFC 8482: one RRset is enough; the first one stored at the name.
          if (n.rrset_count > 0) {
            r.PutSet(kAnswer, owner, *z.RRsetsBegin(n));
            r.WantAdditional(*z.RRsetsBegin(n));  // an MX, SRV or NS set brings its addresses
            return out;
          }
          r.PutSoa(kAuthority);
          return out;
        }
        if (const RRset* set = z.FindRRset(n, q.qtype)) {
          r.PutSet(kAnswer, owner, *set);
          r.WantAdditional(*set);
        } else {
          r.PutSoa(kAuthority);  // NODATA
        }
        return out;
      }
    }
    // Follow the link if it stays in this zone and the chain is not too long.
    if (step + 1 >= max_chain || !dns::IsSubdomain(next, next_len, z.apex(), z.apex_len()))
      return out;
    owner = next;
    chained.Set(next, next_len);
    name = &chained;
  }
}

size_t UdpLimit(const dns::Query& q, const HandlerOptions& o, size_t out_cap) {
  size_t limit = 512;
  if (q.has_edns) limit = std::clamp<size_t>(q.edns_udp_size, 512, std::max<size_t>(512, o.udp_max_payload));
  return std::min(limit, out_cap);
}

// Header of the response: id, opcode, RD and CD from the query; QR set.
void StartHeader(uint8_t* out, const uint8_t* query, uint8_t rcode) {
  out[2] = static_cast<uint8_t>(0x80 | (query[2] & 0x79));  // QR, opcode, RD
  out[3] = static_cast<uint8_t>((query[3] & 0x10) | (rcode & 0x0f));  // CD
}

size_t HeaderOnly(const uint8_t* query, uint8_t* out, uint8_t rcode) {
  if (out != query) std::memcpy(out, query, 2);
  StartHeader(out, query, rcode);
  std::memset(out + 4, 0, 8);
  return dns::kHeaderSize;
}

// CHAOS TXT identity questions, answered as Knot DNS and NSD answer them: one TXT record
// of class CH with TTL 0, AA clear. A string not configured is not told: REFUSED, as for
// any other CHAOS question (and as both answer with theirs hidden). Returns the rcode.
uint8_t AnswerChaos(const dns::Query& q, const HandlerOptions& o, MessageWriter& w,
                    uint16_t* answers, bool* tc) {
  static constexpr uint8_t kIdServer[] = "\x02" "id" "\x06" "server";
  static constexpr uint8_t kHostnameBind[] = "\x08" "hostname" "\x04" "bind";
  static constexpr uint8_t kVersionBind[] = "\x07" "version" "\x04" "bind";
  static constexpr uint8_t kVersionServer[] = "\x07" "version" "\x06" "server";
  if (q.qtype != dns::kTypeTXT) return dns::kRefused;
  const uint8_t* name = q.qname.data;
  const std::string* text = nullptr;
  if (dns::NameEqual(name, kIdServer) || dns::NameEqual(name, kHostnameBind)) text = &o.identity;
  if (dns::NameEqual(name, kVersionBind) || dns::NameEqual(name, kVersionServer)) text = &o.version;
  if (text == nullptr || text->empty()) return dns::kRefused;
  uint8_t rdata[256];
  size_t n = std::min<size_t>(text->size(), 255);  // one character-string
  rdata[0] = static_cast<uint8_t>(n);
  std::memcpy(rdata + 1, text->data(), n);
  if (!w.WriteRecord(name, dns::kTypeTXT, 0, rdata, static_cast<uint16_t>(n + 1))) {
    *tc = true;  // only with a TSIG reserve over UDP
    return dns::kNoError;
  }
  // The writer writes class IN; the class field sits before TTL (4), RDLENGTH (2), RDATA.
  dns::Put16(w.data() + w.size() - (n + 1) - 8, dns::kClassCh);
  *answers = 1;
  return dns::kNoError;
}

}  // namespace

size_t QueryHandler::Answer(const zone::Snapshot* snapshot, const uint8_t* query, size_t query_len,
                            uint8_t* out, size_t out_cap, Transport transport,
                            WorkerCounters& counters, const sockaddr* client) const {
  ++counters.queries[static_cast<int>(transport)];
  PreparedQuery prepared;
  PrepareQuery(snapshot, query, query_len, &prepared);
  return AnswerImpl(snapshot, prepared, query, query_len, out, out_cap, transport, counters, client, 0);
}

// A signed request: verified on a private copy (the answer may overwrite the request in
// place), answered without its TSIG record, then signed. Rare; may allocate.
size_t QueryHandler::AnswerSigned(const zone::Snapshot* snapshot, const uint8_t* query,
                                  size_t query_len, uint8_t* out, size_t out_cap,
                                  Transport transport, WorkerCounters& counters,
                                  const sockaddr* client) const {
  constexpr size_t kMaxSigned = 4096;
  constexpr size_t kTsigReserve = 300;  // key and algorithm names, a 64-byte MAC, fields
  uint8_t copy[kMaxSigned];
  if (options_.tsig == nullptr || query_len > kMaxSigned) {
    ++counters.responses[dns::kNotAuth];
    dns::Query q;
    dns::ParseQuery(query, query_len, &q);
    if (out != query) std::memcpy(out, query, q.question_end);
    StartHeader(out, query, dns::kNotAuth);
    dns::Put16(out + 4, 1);
    std::memset(out + 6, 0, 6);
    return q.question_end;
  }
  std::memcpy(copy, query, query_len);
  TsigVerdict v = options_.tsig->Verify(copy, query_len);
  dns::Query q;
  if (v.formerr || dns::ParseQuery(copy, v.length, &q) == dns::QueryVerdict::kFormErrHeader) {
    ++counters.responses[dns::kFormErr];
    return HeaderOnly(query, out, dns::kFormErr);
  }
  size_t limit = transport == Transport::kTcp ? std::min<size_t>(out_cap, dns::kMaxMessageSize)
                                              : UdpLimit(q, options_, out_cap);
  size_t n;
  if (v.error != 0) {
    ++counters.responses[dns::kNotAuth];
    std::memcpy(out, copy, q.question_end);
    StartHeader(out, copy, dns::kNotAuth);
    dns::Put16(out + 4, 1);
    std::memset(out + 6, 0, 6);
    n = q.question_end;
  } else {
    PreparedQuery prepared;
    PrepareQuery(snapshot, copy, v.length, &prepared);
    n = AnswerImpl(snapshot, prepared, copy, v.length, out, limit, transport, counters, client,
                   kTsigReserve);
    if (n == 0) return 0;
  }
  size_t signed_len = options_.tsig->Sign(v, out, n, limit);
  return signed_len != 0 ? signed_len : n;
}

size_t QueryHandler::AnswerImpl(const zone::Snapshot* snapshot, const PreparedQuery& prepared,
                                const uint8_t* query, size_t query_len, uint8_t* out,
                                size_t out_cap, Transport transport, WorkerCounters& counters,
                                const sockaddr* client, size_t reserve) const {
  const dns::Query& q = prepared.q;
  dns::QueryVerdict verdict = prepared.verdict;
  if (verdict == dns::QueryVerdict::kDrop || out_cap < 512) {
    ++counters.dropped;
    return 0;
  }
  if (verdict == dns::QueryVerdict::kFormErrHeader) {
    ++counters.responses[dns::kFormErr];
    return HeaderOnly(query, out, dns::kFormErr);
  }
  if (q.has_tsig) return AnswerSigned(snapshot, query, query_len, out, out_cap, transport, counters, client);
  // RFC 6891 6.1.1: an OPT record belongs in the additional section; Knot DNS and NSD
  // answer FORMERR to one in the answer or authority section.
  if (q.opt_outside_additional) verdict = dns::QueryVerdict::kFormErr;
  if (out != query) std::memcpy(out, query, q.question_end);
  size_t limit = transport == Transport::kTcp ? std::min<size_t>(out_cap, dns::kMaxMessageSize)
                                              : UdpLimit(q, options_, out_cap);
  size_t opt_size = q.has_edns ? 11 : 0;
  MessageWriter w(out, limit - opt_size - reserve);
  w.StartAfterQuestion(q.question_end, q.qname.labels, q.qname_offsets);

  uint8_t rcode = dns::kNoError;
  bool aa = false;
  uint16_t counts[3] = {};
  bool tc = false;
  const uint8_t opcode = dns::header::Opcode(query);
  if (verdict == dns::QueryVerdict::kFormErr) {
    rcode = dns::kFormErr;
  } else if (verdict == dns::QueryVerdict::kBadVersion) {
    rcode = dns::kBadVers;
  } else if (opcode == dns::kOpNotify && options_.notify != nullptr) {
    // RFC 1996: acknowledge with the question echoed and AA set; the sink decides.
    LookupName zone_name;
    zone_name.Set(q.qname.data, q.qname.length);
    rcode = options_.notify->OnNotify(zone_name.data, zone_name.len, client);
    aa = rcode == dns::kNoError;
  } else if (opcode != dns::kOpQuery) {
    rcode = dns::kNotImp;
  } else if (q.qclass == dns::kClassCh) {
    rcode = AnswerChaos(q, options_, w, &counts[kAnswer], &tc);
  } else if (q.qclass != dns::kClassIn && q.qclass != dns::kClassAny) {
    rcode = dns::kRefused;
  } else if (q.qtype == dns::kTypeAXFR || q.qtype == dns::kTypeIXFR) {
    // Transfers are served over TCP (the TCP port hands them to the transfer server).
    // AXFR is TCP only (NOTIMP over UDP, as Knot DNS and NSD answer). IXFR may use UDP
    // (RFC 1995 2), but tandem serves it over TCP only: REFUSED, as NSD answers, sends a
    // client there.
    bool axfr_over_udp = transport == Transport::kUdp && q.qtype == dns::kTypeAXFR;
    rcode = axfr_over_udp ? dns::kNotImp : dns::kRefused;
  } else if (q.qtype == 0) {
    rcode = dns::kNotImp;  // reserved type, as Knot DNS answers it
  } else {
    const Zone* z = prepared.zone;
    if (z == nullptr) {
      rcode = dns::kRefused;
    } else if (z->servfail()) {
      rcode = dns::kServFail;  // a pulled zone without a valid copy
    } else {
      Response r(w, *z);
      Outcome o = Resolve(*z, q, prepared.name, r, options_.max_cname_chain, snapshot->pools(),
                          counters);
      r.PutAdditional();
      rcode = o.rcode;
      aa = o.aa;
      tc = r.truncated();
      for (int s = 0; s < 3; ++s) counts[s] = r.count(static_cast<Section>(s));
    }
  }

  if (q.has_edns) {
    w.set_limit(limit - reserve);
    if (w.WriteOpt(options_.udp_max_payload, static_cast<uint8_t>(rcode >> 4), q.edns_do)) ++counts[kAdditional];
  }
  StartHeader(out, query, static_cast<uint8_t>(rcode));
  if (aa) out[2] |= 0x04;
  if (tc) out[2] |= 0x02;
  dns::Put16(out + 4, 1);
  dns::Put16(out + 6, counts[kAnswer]);
  dns::Put16(out + 8, counts[kAuthority]);
  dns::Put16(out + 10, counts[kAdditional]);
  ++counters.responses[std::min<int>(rcode, 23)];
  if (tc) ++counters.truncated;
  return w.size();
}

}  // namespace tandem::dataplane
