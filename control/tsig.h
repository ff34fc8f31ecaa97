// TSIG (RFC 8945): HMAC transaction signatures for zone transfers, NOTIFY and SOA queries.
// Owns the TSIG record layout, the MAC input (4.3.3), the client side of one exchange
// (request, then one or more response messages: 5.3.1) and the server side (verify a
// request, sign the response stream, or answer an error). No I/O: bytes in, bytes out;
// the caller passes the time, so tests are deterministic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "config/config.h"

namespace tandem::control::tsig {

enum class Algorithm { kHmacMd5, kHmacSha1, kHmacSha224, kHmacSha256, kHmacSha384, kHmacSha512 };

struct Key {
  std::string name;  // wire form, lower-case
  Algorithm algorithm = Algorithm::kHmacSha256;
  std::string secret;  // raw bytes
};

// TSIG error codes (the RDATA Error field), next to FORMERR for malformed records.
inline constexpr uint16_t kFormErr = 1;
inline constexpr uint16_t kBadSig = 16;
inline constexpr uint16_t kBadKey = 17;
inline constexpr uint16_t kBadTime = 18;
inline constexpr uint16_t kBadTrunc = 22;
inline constexpr uint16_t kTypeTsig = 250;
inline constexpr uint16_t kDefaultFudge = 300;

// Config text -> key: name text -> wire (lower-case); "hmac-sha256" (or the RFC wire name
// "hmac-sha256.", "hmac-md5.sig-alg.reg.int") -> enum. Errors name the key.
absl::StatusOr<Key> MakeKey(const config::TsigKey& k);

// "hmac-sha256" etc. (case-insensitive, trailing dot allowed) -> enum.
absl::StatusOr<Algorithm> AlgorithmFromText(std::string_view text);
// The algorithm's name in uncompressed wire form, lower-case ("hmac-md5.sig-alg.reg.int." for MD5).
std::string AlgorithmWireName(Algorithm alg);
// Output length of the keyed hash in octets.
size_t MacLength(Algorithm alg);
// One-shot HMAC (the primitive under TSIG; exposed for the RFC 4231 vectors).
absl::StatusOr<std::string> Hmac(Algorithm alg, std::string_view key, std::string_view data);
// Text for a TSIG error code: "BADSIG", "BADKEY", "BADTIME", "BADTRUNC", "FORMERR", "error N".
std::string ErrorText(uint16_t error);

// Client side of one exchange: SignRequest once, then VerifyResponse for every response
// message in order, then Finish. After an error the session stays failed.
class ClientSession {
 public:
  explicit ClientSession(const Key& key, uint16_t fudge = kDefaultFudge);

  // Appends a TSIG RR to `msg` (a complete DNS message) and increments ARCOUNT.
  absl::Status SignRequest(std::string* msg, uint64_t now);

  // Verifies the next response message. Returns the length of the message without its
  // TSIG record (ARCOUNT decremented in `msg`), or `len` for an allowed unsigned message.
  absl::StatusOr<size_t> VerifyResponse(uint8_t* msg, size_t len, uint64_t now);

  // After the last message: an error if the stream ended unsigned or never started.
  absl::Status Finish() const;

  int messages() const { return messages_; }
  int signed_messages() const { return signed_messages_; }

 private:
  absl::StatusOr<size_t> VerifySigned(uint8_t* msg, size_t len, size_t tsig_at, uint64_t now);
  absl::StatusOr<size_t> Fail(absl::Status s);

  Key key_;
  uint16_t fudge_;
  std::string prior_mac_;  // the request MAC, then the MAC of the last signed response
  std::string unsigned_;   // response messages since the last signed one (RFC 8945 5.3.1)
  int unsigned_run_ = 0;
  int messages_ = 0;
  int signed_messages_ = 0;
  bool requested_ = false;
  bool failed_ = false;
};

// What VerifyRequest found. `error` is 0, kBadKey, kBadSig, kBadTime, or kFormErr (the
// message or its TSIG is malformed: answer FORMERR without TSIG). When a well-formed TSIG
// record was found (any error but kFormErr), it is stripped: ARCOUNT is decremented and
// `length_without_tsig` is where it started; the other fields echo the request for the
// error answer (AppendErrorTsig) or the signed response (ServerSession, SignBadTime).
struct ServerVerdict {
  bool signed_request = false;
  uint16_t error = 0;
  std::string key_name;     // wire, lower-case, as in the request
  std::string request_mac;  // as received (possibly truncated)
  size_t length_without_tsig = 0;
  std::string algorithm;  // wire, lower-case, as in the request
  uint64_t time_signed = 0;
  uint16_t original_id = 0;
};

// Looks for a TSIG record last in the additional section and verifies it with the key of
// that name (and algorithm) from `keys`.
ServerVerdict VerifyRequest(uint8_t* msg, size_t len, const std::vector<Key>& keys, uint64_t now);

// Signs the response to a verified request: the first message with the request MAC, each
// later message of the stream with the previous MAC (sign every message).
class ServerSession {
 public:
  ServerSession(const Key& key, std::string request_mac, uint16_t fudge = kDefaultFudge);

  absl::Status Sign(std::string* msg, uint64_t now);

  // The answer to a request that failed with BADTIME (RFC 8945 5.2.3): signed, Time Signed
  // copied from the request, Other Data = the server's time. Set RCODE NOTAUTH yourself.
  absl::Status SignBadTime(std::string* msg, uint64_t now, uint64_t request_time);

 private:
  Key key_;
  std::string prior_mac_;
  uint16_t fudge_;
  bool first_ = true;
};

// For a request that failed verification with BADKEY or BADSIG (RFC 8945 5.3.2): appends an
// unsigned TSIG RR (MAC size 0) carrying `error`, and increments ARCOUNT.
absl::Status AppendErrorTsig(std::string* msg, const std::string& key_name, Algorithm alg,
                             uint16_t original_id, uint16_t error, uint64_t now);
// The same echoing the request's key and algorithm names (even an unknown algorithm).
absl::Status AppendErrorTsig(std::string* msg, const ServerVerdict& verdict, uint64_t now);

}  // namespace tandem::control::tsig
