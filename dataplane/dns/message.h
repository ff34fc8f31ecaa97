// Query parsing (header, question, EDNS OPT) and a response writer with name compression.
// Both work on caller-owned buffers: no allocation, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/dns/name.h"
#include "dataplane/dns/rrtype.h"
#include "dataplane/dns/wire.h"

namespace tandem::dns {

struct Query {
  // The question name where it stands in the request (uncompressed, case preserved):
  // valid while the request's buffer is, and unchanged by an answer written in place.
  struct {
    const uint8_t* data = nullptr;
    uint8_t length = 0;  // wire octets including the root label
    uint8_t labels = 0;  // label count excluding the root
  } qname;
  uint8_t qname_offsets[kMaxLabels + 1];  // where each label of qname starts, then its root
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  size_t question_end = 0;  // offset just past the question in the request
  bool has_edns = false;
  uint16_t edns_udp_size = 0;
  uint8_t edns_version = 0;
  bool edns_do = false;
  bool has_tsig = false;  // a TSIG record ends the additional section (RFC 8945)
  // An OPT record in the answer or authority section (RFC 6891 6.1.1: it belongs in the
  // additional section); ParseQuery notes it and leaves the verdict to the caller.
  bool opt_outside_additional = false;
};

enum class QueryVerdict : uint8_t {
  kOk,
  kDrop,            // not answerable at all: shorter than a header, or QR set
  kFormErrHeader,   // malformed: answer FORMERR with the header only
  kFormErr,         // malformed after the question: FORMERR echoing the question
  kBadVersion,      // EDNS version above 0: BADVERS
};

// Parses a request. With kFormErr, kBadVersion and kOk the question fields are valid.
QueryVerdict ParseQuery(const uint8_t* msg, size_t len, Query* q);

// Skips one resource record starting at msg[pos]; sets *next. Returns false if malformed.
bool SkipRecord(const uint8_t* msg, size_t len, size_t pos, size_t* next, uint16_t* type);

// Writes a response message. A write that does not fit leaves the message as it was and
// returns false, so a caller can stop at the last whole RRset (and set TC).
class MessageWriter {
 public:
  MessageWriter(uint8_t* buf, size_t limit) : buf_(buf), limit_(limit) {}

  size_t size() const { return pos_; }
  uint8_t* data() { return buf_; }
  void set_limit(size_t limit) { limit_ = limit; }
  size_t limit() const { return limit_; }

  // Starts a message after an existing header and question already in the buffer.
  // The question name at offset 12 and its suffixes are compression targets, found
  // before any other. `label_offsets` (may be null): where each of its labels starts,
  // from the name's first octet (dns::Query::qname_offsets); without them the writer
  // walks the name at its first search.
  void StartAfterQuestion(size_t question_end, int qname_labels, const uint8_t* label_offsets = nullptr);

  // The question name as it stands in the message (the client's case). Passed to WriteName
  // or WriteRecord, it or any of its suffixes (a pointer into it at a label boundary, the
  // root aside) is written as a pointer to itself without a search: the search would find
  // that same place first, and most answers are owned by the question name, the zone's
  // apex or a zone cut above it.
  const uint8_t* question_name() const { return buf_ + kHeaderSize; }

  // Restores a size from size(), dropping what was written after it (and its names
  // from the compression table).
  void Rollback(size_t size);

  // Writes a name, compressed against the question and the names written before.
  bool WriteName(const uint8_t* name) {
    // The question name or a suffix of it: the search would stop at that target, the
    // first of its length. (The root name is written whole: it is shorter than a pointer.)
    if (name >= question_name() && name < buf_ + qname_root_) {
      if (!Reserve(2)) return false;
      const size_t at = static_cast<size_t>(name - buf_);
      buf_[pos_] = static_cast<uint8_t>(0xc0 | at >> 8);
      buf_[pos_ + 1] = static_cast<uint8_t>(at);
      pos_ += 2;
      return true;
    }
    return WriteSearchedName(name);
  }
  // One record: owner (compressed), type, class IN, TTL, RDATA in uncompressed wire form;
  // names in the RDATA are compressed where the type allows it.
  bool WriteRecord(const uint8_t* owner, uint16_t type, uint32_t ttl, const uint8_t* rdata,
                   uint16_t rdlen);
  bool WriteOpt(uint16_t udp_size, uint8_t ext_rcode, bool do_bit);

 private:
  struct Target {
    uint16_t offset;
    uint8_t labels;
  };
  bool Reserve(size_t n) const { return pos_ + n <= limit_; }
  // The offset of the first target equal to `suffix` (`len` octets, `labels` labels), or -1.
  int FindSuffix(const uint8_t* suffix, int labels, size_t len);
  void AddTargets(size_t start, const uint8_t* name, int labels, int count);
  // Sets *name_len (if given) to the name's length in octets: a compressible name in RDATA
  // is then walked once.
  bool WriteSearchedName(const uint8_t* name, size_t* name_len = nullptr);
  bool WriteRdata(uint16_t type, const uint8_t* rdata, uint16_t rdlen);

  uint8_t* buf_;
  size_t limit_;
  size_t pos_ = 0;
  static constexpr int kMaxTargets = 96;
  Target targets_[kMaxTargets];  // names written so far (the question's are apart)
  int ntargets_ = 0;
  int qname_labels_ = 0;
  size_t qname_root_ = 0;  // offset of the question name's root label (0: no question)
  // Where the question's labels start, from offset 12: a suffix of the question with k
  // labels starts at kHeaderSize + qname_offsets_[qname_labels_ - k], and is the only
  // place in the question a suffix of k labels can match.
  const uint8_t* qname_offsets_ = nullptr;
  uint8_t own_offsets_[kMaxLabels + 1];  // filled at the first search when not given
};

}  // namespace tandem::dns
