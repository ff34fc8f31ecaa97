// TSIG signing and verification (RFC 8945) over OpenSSL's EVP_MAC HMAC.
//
// MAC input (4.3.3), fed piecewise to the HMAC:
//
//   request/first message:  [len16 prior MAC] message' | key name | ANY | 0 | algorithm |
//                           time48 | fudge | error | other len | other
//   later stream messages:  len16 prior MAC | unsigned messages since | message' | time48 | fudge
//
// message' is the message before its TSIG record, with the original ID in the header and
// ARCOUNT not counting the TSIG. Names are uncompressed and lower-case throughout.
#include "control/tsig.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <iterator>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/wire.h"

namespace tandem::control::tsig {
namespace {

struct AlgorithmInfo {
  const char* text;       // config spelling
  const char* wire_text;  // the RFC 8945 algorithm name
  const char* digest;     // OpenSSL digest name
  size_t mac_length;
};

// Indexed by Algorithm.
constexpr AlgorithmInfo kAlgorithms[] = {
    {"hmac-md5", "hmac-md5.sig-alg.reg.int", "MD5", 16},
    {"hmac-sha1", "hmac-sha1", "SHA1", 20},
    {"hmac-sha224", "hmac-sha224", "SHA224", 28},
    {"hmac-sha256", "hmac-sha256", "SHA256", 32},
    {"hmac-sha384", "hmac-sha384", "SHA384", 48},
    {"hmac-sha512", "hmac-sha512", "SHA512", 64},
};
constexpr Algorithm kAllAlgorithms[] = {Algorithm::kHmacMd5,    Algorithm::kHmacSha1,
                                        Algorithm::kHmacSha224, Algorithm::kHmacSha256,
                                        Algorithm::kHmacSha384, Algorithm::kHmacSha512};

// RFC 8945 5.3.1: a client accepts at most 99 unsigned messages between signed ones.
constexpr int kMaxUnsignedRun = 99;

const AlgorithmInfo& Info(Algorithm a) { return kAlgorithms[static_cast<int>(a)]; }

// One HMAC computation, fed piecewise.
class Digest {
 public:
  Digest(Algorithm alg, std::string_view key) {
    static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    ctx_ = hmac != nullptr ? EVP_MAC_CTX_new(hmac) : nullptr;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>(Info(alg).digest), 0),
        OSSL_PARAM_construct_end()};
    ok_ = ctx_ != nullptr &&
          EVP_MAC_init(ctx_, reinterpret_cast<const uint8_t*>(key.data()), key.size(), params) == 1;
  }
  ~Digest() { EVP_MAC_CTX_free(ctx_); }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void Add(const void* data, size_t n) {
    ok_ = ok_ && EVP_MAC_update(ctx_, static_cast<const uint8_t*>(data), n) == 1;
  }
  void Add(std::string_view s) { Add(s.data(), s.size()); }

  absl::StatusOr<std::string> Final() {
    uint8_t out[EVP_MAX_MD_SIZE];
    size_t n = 0;
    ok_ = ok_ && EVP_MAC_final(ctx_, out, &n, sizeof(out)) == 1;
    if (!ok_) return absl::InternalError("OpenSSL HMAC failed");
    return std::string(reinterpret_cast<const char*>(out), n);
  }

 private:
  EVP_MAC_CTX* ctx_ = nullptr;
  bool ok_ = false;
};

// The fields of a TSIG record (owner and RDATA).
struct TsigRecord {
  std::string key_name;   // wire, lower-case
  std::string algorithm;  // wire, lower-case
  uint64_t time_signed = 0;
  uint16_t fudge = kDefaultFudge;
  std::string mac;
  uint16_t original_id = 0;
  uint16_t error = 0;
  std::string other;
};

void Append16(std::string* s, uint16_t v) {
  s->push_back(static_cast<char>(v >> 8));
  s->push_back(static_cast<char>(v));
}
void Append32(std::string* s, uint32_t v) {
  Append16(s, static_cast<uint16_t>(v >> 16));
  Append16(s, static_cast<uint16_t>(v));
}
void Append48(std::string* s, uint64_t v) {
  Append16(s, static_cast<uint16_t>(v >> 32));
  Append32(s, static_cast<uint32_t>(v));
}

std::string Timers(const TsigRecord& t) {
  std::string out;
  Append48(&out, t.time_signed);
  Append16(&out, t.fudge);
  return out;
}

std::string Variables(const TsigRecord& t) {
  std::string out = t.key_name;
  Append16(&out, dns::kClassAny);
  Append32(&out, 0);
  out += t.algorithm;
  out += Timers(t);
  Append16(&out, t.error);
  Append16(&out, static_cast<uint16_t>(t.other.size()));
  return out + t.other;
}

// What goes into one message's MAC besides its TSIG variables.
struct MacInput {
  std::string_view prior;   // request MAC or previous MAC; empty: none
  std::string_view before;  // unsigned stream messages since the last signed one
  const uint8_t* msg;       // the message up to (not including) its TSIG record
  size_t len;
  uint16_t arcount;  // ARCOUNT without the TSIG
  bool timers_only;  // a later message of a stream
};

absl::StatusOr<std::string> ComputeMac(const Key& key, const MacInput& in, const TsigRecord& t) {
  Digest d(key.algorithm, key.secret);
  if (!in.prior.empty()) {
    std::string n;
    Append16(&n, static_cast<uint16_t>(in.prior.size()));
    d.Add(n);
    d.Add(in.prior);
  }
  d.Add(in.before);
  uint8_t header[dns::kHeaderSize];
  std::copy(in.msg, in.msg + dns::kHeaderSize, header);
  dns::Put16(header, t.original_id);
  dns::Put16(header + 10, in.arcount);
  d.Add(header, sizeof(header));
  d.Add(in.msg + dns::kHeaderSize, in.len - dns::kHeaderSize);
  d.Add(in.timers_only ? Timers(t) : Variables(t));
  return d.Final();
}

// Appends the TSIG RR and counts it in ARCOUNT.
absl::Status AppendRecord(std::string* msg, const TsigRecord& t) {
  if (msg->size() < dns::kHeaderSize)
    return absl::InvalidArgumentError("message shorter than a DNS header");
  auto* h = reinterpret_cast<uint8_t*>(msg->data());
  if (dns::header::Arcount(h) == 0xffff) return absl::InvalidArgumentError("ARCOUNT full");
  std::string rdata = t.algorithm + Timers(t);
  Append16(&rdata, static_cast<uint16_t>(t.mac.size()));
  rdata += t.mac;
  Append16(&rdata, t.original_id);
  Append16(&rdata, t.error);
  Append16(&rdata, static_cast<uint16_t>(t.other.size()));
  rdata += t.other;
  size_t total = msg->size() + t.key_name.size() + 10 + rdata.size();
  if (total > dns::kMaxMessageSize)
    return absl::ResourceExhaustedError("no room for the TSIG record");
  dns::Put16(h + 10, dns::header::Arcount(h) + 1);
  *msg += t.key_name;
  Append16(msg, kTypeTsig);
  Append16(msg, dns::kClassAny);
  Append32(msg, 0);
  Append16(msg, static_cast<uint16_t>(rdata.size()));
  *msg += rdata;
  return absl::OkStatus();
}

// Bounds-checked reads from the message.
struct Reader {
  const uint8_t* msg;
  size_t pos;
  size_t end;
  bool ok = true;

  bool Has(size_t n) { return ok = ok && end - pos >= n; }
  uint16_t U16() {
    if (!Has(2)) return 0;
    pos += 2;
    return dns::Get16(msg + pos - 2);
  }
  uint64_t U48() {
    uint64_t hi = U16();
    uint64_t lo = Has(4) ? dns::Get32(msg + pos) : 0;
    if (ok) pos += 4;
    return hi << 32 | lo;
  }
  std::string Bytes(size_t n) {
    if (!Has(n)) return {};
    pos += n;
    return std::string(reinterpret_cast<const char*>(msg + pos - n), n);
  }
  std::string Name() {
    dns::NameBuf name;
    int budget = 16;
    size_t next = 0;
    if (!ok || dns::ParseName(msg, end, pos, &name, &next, &budget) != dns::NameError::kOk) {
      ok = false;
      return {};
    }
    pos = next;
    dns::LowerName(name.data, name.length);
    return std::string(reinterpret_cast<const char*>(name.data), name.length);
  }
};

// Walks the message: the offset of its TSIG record if it is the last record, `len` if it
// has none. A TSIG anywhere else, or a malformed message, is an error.
absl::StatusOr<size_t> FindTsig(const uint8_t* msg, size_t len) {
  size_t pos = dns::kHeaderSize;
  for (int i = 0; i < dns::header::Qdcount(msg); ++i) {
    if (dns::SkipName(msg, len, pos, &pos) != dns::NameError::kOk || len - pos < 4)
      return absl::InvalidArgumentError("malformed question");
    pos += 4;
  }
  int records = dns::header::Ancount(msg) + dns::header::Nscount(msg) + dns::header::Arcount(msg);
  size_t last = len;
  for (int i = 0; i < records; ++i) {
    size_t start = pos;
    if (dns::SkipName(msg, len, pos, &pos) != dns::NameError::kOk || len - pos < 10)
      return absl::InvalidArgumentError("malformed record");
    uint16_t type = dns::Get16(msg + pos);
    size_t rdlen = dns::Get16(msg + pos + 8);
    if (len - pos - 10 < rdlen) return absl::InvalidArgumentError("record truncated");
    pos += 10 + rdlen;
    if (type != kTypeTsig) continue;
    if (i != records - 1 || dns::header::Arcount(msg) == 0)
      return absl::InvalidArgumentError("TSIG not the last additional record");
    last = start;
  }
  if (pos != len) return absl::InvalidArgumentError("trailing bytes after the last record");
  return last;
}

absl::StatusOr<TsigRecord> ParseTsig(const uint8_t* msg, size_t len, size_t at) {
  Reader r{msg, at, len};
  TsigRecord t;
  t.key_name = r.Name();
  r.U16();  // type, known to be TSIG
  uint16_t rclass = r.U16();
  r.Bytes(4);  // TTL
  size_t rdlen = r.U16();
  if (!r.ok || rclass != dns::kClassAny || len - r.pos != rdlen)
    return absl::InvalidArgumentError("malformed TSIG record");
  t.algorithm = r.Name();
  t.time_signed = r.U48();
  t.fudge = r.U16();
  t.mac = r.Bytes(r.U16());
  t.original_id = r.U16();
  t.error = r.U16();
  t.other = r.Bytes(r.U16());
  if (!r.ok || r.pos != len) return absl::InvalidArgumentError("malformed TSIG RDATA");
  return t;
}

// RFC 8945 5.2.2.1: full length, or truncated to at least max(10, half the hash).
bool MacSizeOk(size_t n, Algorithm alg) {
  size_t full = MacLength(alg);
  return n <= full && n >= std::max<size_t>(10, full / 2);
}

bool MacEqual(const std::string& computed, const std::string& received) {
  return computed.size() >= received.size() &&
         CRYPTO_memcmp(computed.data(), received.data(), received.size()) == 0;
}

bool TimeOk(uint64_t signed_at, uint16_t fudge, uint64_t now) {
  uint64_t skew = now > signed_at ? now - signed_at : signed_at - now;
  return skew <= fudge;
}

std::string NameText(const std::string& wire) {
  return dns::NameToText(reinterpret_cast<const uint8_t*>(wire.data()));
}

// A record to sign `msg` with: its ID as the original ID, no error.
TsigRecord Fresh(const Key& key, uint64_t now, uint16_t fudge, const std::string& msg) {
  TsigRecord t;
  t.key_name = key.name;
  t.algorithm = AlgorithmWireName(key.algorithm);
  t.time_signed = now;
  t.fudge = fudge;
  if (msg.size() >= dns::kHeaderSize)
    t.original_id = dns::header::Id(reinterpret_cast<const uint8_t*>(msg.data()));
  return t;
}

absl::Status Unauthenticated(const auto&... parts) {
  return absl::UnauthenticatedError(absl::StrCat(parts...));
}

// The response's TSIG record before its MAC is computed: our key, our algorithm, a MAC.
absl::Status CheckResponseRecord(const TsigRecord& t, const Key& key) {
  if (t.key_name != key.name)
    return Unauthenticated("key name mismatch: response signed with '", NameText(t.key_name),
                           "', expected '", NameText(key.name), "'");
  if (t.algorithm != AlgorithmWireName(key.algorithm))
    return Unauthenticated("algorithm mismatch: response uses '", NameText(t.algorithm), "'");
  if (t.error != 0 && t.mac.empty()) return Unauthenticated("server answered ", ErrorText(t.error));
  if (!MacSizeOk(t.mac.size(), key.algorithm))
    return Unauthenticated("MAC size ", t.mac.size(), " not allowed (FORMERR)");
  return absl::OkStatus();
}

// Signs `msg` with `t` (MAC filled in) after `prior`; returns the MAC.
absl::StatusOr<std::string> SignMessage(const Key& key, std::string* msg, std::string_view prior,
                                        bool timers_only, TsigRecord* t) {
  if (msg->size() < dns::kHeaderSize)
    return absl::InvalidArgumentError("message shorter than a DNS header");
  const auto* m = reinterpret_cast<const uint8_t*>(msg->data());
  MacInput in{prior, {}, m, msg->size(), dns::header::Arcount(m), timers_only};
  auto mac = ComputeMac(key, in, *t);
  if (!mac.ok()) return mac.status();
  t->mac = *mac;
  if (auto s = AppendRecord(msg, *t); !s.ok()) return s;
  return t->mac;
}

}  // namespace

absl::StatusOr<Algorithm> AlgorithmFromText(std::string_view text) {
  std::string t = absl::AsciiStrToLower(std::string(text));
  if (!t.empty() && t.back() == '.') t.pop_back();
  for (Algorithm a : kAllAlgorithms)
    if (t == Info(a).text || t == Info(a).wire_text) return a;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown TSIG algorithm '", std::string(text), "'"));
}

std::string AlgorithmWireName(Algorithm alg) {
  std::string out;
  std::string_view rest = Info(alg).wire_text;
  while (!rest.empty()) {
    std::string_view label = rest.substr(0, rest.find('.'));
    out.push_back(static_cast<char>(label.size()));
    out += label;
    rest.remove_prefix(std::min(rest.size(), label.size() + 1));
  }
  return out + std::string(1, '\0');
}

size_t MacLength(Algorithm alg) { return Info(alg).mac_length; }

absl::StatusOr<std::string> Hmac(Algorithm alg, std::string_view key, std::string_view data) {
  Digest d(alg, key);
  d.Add(data);
  return d.Final();
}

std::string ErrorText(uint16_t error) {
  static constexpr const char* kNames[] = {"BADSIG",  "BADKEY", "BADTIME",  "BADMODE",
                                           "BADNAME", "BADALG", "BADTRUNC", "BADCOOKIE"};
  if (error == kFormErr) return "FORMERR";
  if (error >= kBadSig && error < kBadSig + std::size(kNames)) return kNames[error - kBadSig];
  return absl::StrCat("error ", error);
}

absl::StatusOr<Key> MakeKey(const config::TsigKey& k) {
  auto fail = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("TSIG key '", k.name, "': ", what));
  };
  auto name = dns::NameFromText(k.name);
  if (!name.ok()) return fail(name.status().message());
  if (name->size() <= 1) return fail("empty key name");
  auto alg = AlgorithmFromText(k.algorithm);
  if (!alg.ok()) return fail(alg.status().message());
  if (k.secret.empty()) return fail("empty secret");
  Key key{*name, *alg, k.secret};
  dns::LowerName(reinterpret_cast<uint8_t*>(key.name.data()), key.name.size());
  return key;
}

// ---- client -------------------------------------------------------------------------

ClientSession::ClientSession(const Key& key, uint16_t fudge) : key_(key), fudge_(fudge) {}

absl::Status ClientSession::SignRequest(std::string* msg, uint64_t now) {
  TsigRecord t = Fresh(key_, now, fudge_, *msg);
  auto mac = SignMessage(key_, msg, {}, false, &t);
  if (!mac.ok()) return mac.status();
  prior_mac_ = *mac;
  unsigned_.clear();
  unsigned_run_ = messages_ = signed_messages_ = 0;
  requested_ = true;
  failed_ = false;
  return absl::OkStatus();
}

absl::StatusOr<size_t> ClientSession::Fail(absl::Status s) {
  failed_ = true;
  return s;
}

absl::StatusOr<size_t> ClientSession::VerifyResponse(uint8_t* msg, size_t len, uint64_t now) {
  if (failed_)
    return absl::FailedPreconditionError("TSIG verification failed earlier in this stream");
  if (!requested_) return absl::FailedPreconditionError("no signed request");
  if (len < dns::kHeaderSize)
    return Fail(absl::InvalidArgumentError("response shorter than a DNS header"));
  auto at = FindTsig(msg, len);
  if (!at.ok())
    return Fail(
        absl::InvalidArgumentError(absl::StrCat("malformed response: ", at.status().message())));
  ++messages_;
  if (*at < len) return VerifySigned(msg, len, *at, now);
  if (messages_ == 1) return Fail(Unauthenticated("no TSIG in the first response"));
  if (++unsigned_run_ > kMaxUnsignedRun)
    return Fail(Unauthenticated("more than ", kMaxUnsignedRun, " unsigned messages in a row"));
  unsigned_.append(reinterpret_cast<const char*>(msg), len);
  return len;
}

absl::StatusOr<size_t> ClientSession::VerifySigned(uint8_t* msg, size_t len, size_t tsig_at,
                                                   uint64_t now) {
  auto t = ParseTsig(msg, len, tsig_at);
  if (!t.ok()) return Fail(t.status());
  if (auto s = CheckResponseRecord(*t, key_); !s.ok()) return Fail(s);
  uint16_t arcount = dns::header::Arcount(msg) - 1;
  MacInput in{prior_mac_, unsigned_, msg, tsig_at, arcount, signed_messages_ > 0};
  auto mac = ComputeMac(key_, in, *t);
  if (!mac.ok()) return Fail(mac.status());
  if (!MacEqual(*mac, t->mac)) return Fail(Unauthenticated("bad MAC (BADSIG)"));
  if (!TimeOk(t->time_signed, t->fudge, now))
    return Fail(Unauthenticated("time outside fudge (BADTIME): signed at ", t->time_signed,
                                ", now ", now, ", fudge ", t->fudge));
  if (t->error != 0) return Fail(Unauthenticated("server answered ", ErrorText(t->error)));
  prior_mac_ = t->mac;
  unsigned_.clear();
  unsigned_run_ = 0;
  ++signed_messages_;
  dns::Put16(msg + 10, arcount);
  return tsig_at;
}

absl::Status ClientSession::Finish() const {
  if (failed_)
    return absl::FailedPreconditionError("TSIG verification failed earlier in this stream");
  if (messages_ == 0) return absl::FailedPreconditionError("no response verified");
  if (unsigned_run_ > 0) return Unauthenticated("the last message of the stream is not signed");
  return absl::OkStatus();
}

// ---- server -------------------------------------------------------------------------

namespace {

const Key* FindKey(const std::vector<Key>& keys, const TsigRecord& t) {
  for (const Key& k : keys)
    if (k.name == t.key_name && AlgorithmWireName(k.algorithm) == t.algorithm) return &k;
  return nullptr;
}

// RFC 8945 5.2: key, then MAC, then time.
uint16_t CheckRequest(const uint8_t* msg, size_t at, const TsigRecord& t,
                      const std::vector<Key>& keys, uint64_t now) {
  const Key* key = FindKey(keys, t);
  if (key == nullptr) return kBadKey;
  if (!MacSizeOk(t.mac.size(), key->algorithm)) return kFormErr;
  uint16_t arcount = dns::header::Arcount(msg) - 1;
  auto mac = ComputeMac(*key, MacInput{{}, {}, msg, at, arcount, false}, t);
  if (!mac.ok() || !MacEqual(*mac, t.mac)) return kBadSig;
  if (!TimeOk(t.time_signed, t.fudge, now)) return kBadTime;
  return 0;
}

}  // namespace

ServerVerdict VerifyRequest(uint8_t* msg, size_t len, const std::vector<Key>& keys, uint64_t now) {
  ServerVerdict v;
  v.length_without_tsig = len;
  auto formerr = [&v] {
    v.error = kFormErr;
    return v;
  };
  if (len < dns::kHeaderSize) return formerr();
  auto at = FindTsig(msg, len);
  if (!at.ok()) return formerr();
  if (*at == len) return v;
  v.signed_request = true;
  auto t = ParseTsig(msg, len, *at);
  if (!t.ok()) return formerr();
  v.error = CheckRequest(msg, *at, *t, keys, now);
  if (v.error == kFormErr) return v;
  v.key_name = t->key_name;
  v.algorithm = t->algorithm;
  v.request_mac = t->mac;
  v.time_signed = t->time_signed;
  v.original_id = t->original_id;
  v.length_without_tsig = *at;
  dns::Put16(msg + 10, dns::header::Arcount(msg) - 1);
  return v;
}

ServerSession::ServerSession(const Key& key, std::string request_mac, uint16_t fudge)
    : key_(key), prior_mac_(std::move(request_mac)), fudge_(fudge) {}

absl::Status ServerSession::Sign(std::string* msg, uint64_t now) {
  TsigRecord t = Fresh(key_, now, fudge_, *msg);
  auto mac = SignMessage(key_, msg, prior_mac_, !first_, &t);
  if (!mac.ok()) return mac.status();
  prior_mac_ = *mac;
  first_ = false;
  return absl::OkStatus();
}

absl::Status ServerSession::SignBadTime(std::string* msg, uint64_t now, uint64_t request_time) {
  TsigRecord t = Fresh(key_, request_time, fudge_, *msg);
  t.error = kBadTime;
  Append48(&t.other, now);
  auto mac = SignMessage(key_, msg, prior_mac_, false, &t);
  if (!mac.ok()) return mac.status();
  prior_mac_ = *mac;
  first_ = false;
  return absl::OkStatus();
}

absl::Status AppendErrorTsig(std::string* msg, const std::string& key_name, Algorithm alg,
                             uint16_t original_id, uint16_t error, uint64_t now) {
  ServerVerdict v;
  v.key_name = key_name;
  v.algorithm = AlgorithmWireName(alg);
  v.original_id = original_id;
  v.error = error;
  return AppendErrorTsig(msg, v, now);
}

absl::Status AppendErrorTsig(std::string* msg, const ServerVerdict& verdict, uint64_t now) {
  auto valid = [](const std::string& n) {
    return !n.empty() &&
           dns::WireNameLength(reinterpret_cast<const uint8_t*>(n.data()), n.size()) == n.size();
  };
  if (!valid(verdict.key_name) || !valid(verdict.algorithm))
    return absl::InvalidArgumentError("TSIG error record needs wire-form key and algorithm names");
  TsigRecord t;
  t.key_name = verdict.key_name;
  t.algorithm = verdict.algorithm;
  t.time_signed = now;
  t.original_id = verdict.original_id;
  t.error = verdict.error;
  return AppendRecord(msg, t);
}

}  // namespace tandem::control::tsig
