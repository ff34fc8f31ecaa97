// A TSIG-signed AXFR over TCP, every message verified with tsig::ClientSession: the
// interoperability probe of tests/tsig/knot_tsig_test.py.
//
//   tsig_axfr_probe HOST PORT ZONE KEYNAME ALGORITHM BASE64SECRET
//
// Prints "verified N messages (S signed), R records" and exits 0, or prints the error and
// exits 1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "control/tsig.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/wire.h"

namespace {

using tandem::control::tsig::ClientSession;
namespace dns = tandem::dns;

constexpr int kMaxMessages = 100000;
constexpr uint16_t kTypeSoa = 6;
constexpr uint16_t kTypeAxfr = 252;

uint64_t Now() { return static_cast<uint64_t>(time(nullptr)); }

absl::StatusOr<int> Connect(const char* host, int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
    return absl::InvalidArgumentError("bad IPv4 address");
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    close(fd);
    return absl::UnavailableError("connect failed");
  }
  return fd;
}

bool WriteAll(int fd, const std::string& data) {
  for (size_t done = 0; done < data.size();) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool ReadExact(int fd, uint8_t* buf, size_t len) {
  for (size_t done = 0; done < len;) {
    ssize_t n = read(fd, buf + done, len - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

absl::StatusOr<std::string> AxfrQuery(const std::string& zone, uint16_t id) {
  auto name = dns::NameFromText(zone);
  if (!name.ok()) return name.status();
  std::string q(dns::kHeaderSize, '\0');
  auto* h = reinterpret_cast<uint8_t*>(q.data());
  dns::Put16(h, id);
  dns::Put16(h + 4, 1);
  q += *name;
  uint8_t tail[4];
  dns::Put16(tail, kTypeAxfr);
  dns::Put16(tail + 2, dns::kClassIn);
  q.append(reinterpret_cast<const char*>(tail), 4);
  return q;
}

// Counts the answer records of msg[0, len) and how many of them are SOA.
absl::Status CountAnswers(const uint8_t* msg, size_t len, int* records, int* soas) {
  size_t pos = dns::kHeaderSize;
  for (int i = 0; i < dns::header::Qdcount(msg); ++i) {
    if (dns::SkipName(msg, len, pos, &pos) != dns::NameError::kOk || len - pos < 4)
      return absl::InvalidArgumentError("malformed question");
    pos += 4;
  }
  for (int i = 0; i < dns::header::Ancount(msg); ++i) {
    if (dns::SkipName(msg, len, pos, &pos) != dns::NameError::kOk || len - pos < 10)
      return absl::InvalidArgumentError("malformed answer record");
    if (dns::Get16(msg + pos) == kTypeSoa) ++*soas;
    size_t rdlen = dns::Get16(msg + pos + 8);
    if (len - pos - 10 < rdlen) return absl::InvalidArgumentError("answer record truncated");
    pos += 10 + rdlen;
    ++*records;
  }
  return absl::OkStatus();
}

struct Transfer {
  int records = 0;
  int soas = 0;
};

// Reads and verifies one response message; false when the transfer is complete.
absl::StatusOr<bool> ReadOne(int fd, uint16_t id, ClientSession* session, Transfer* t) {
  uint8_t buf[dns::kMaxMessageSize];
  if (!ReadExact(fd, buf, 2)) return absl::DataLossError("connection closed before the end");
  size_t len = dns::Get16(buf);
  if (len < dns::kHeaderSize || !ReadExact(fd, buf, len))
    return absl::DataLossError("short message");
  if (dns::header::Id(buf) != id) return absl::DataLossError("response ID mismatch");
  auto dns_len = session->VerifyResponse(buf, len, Now());
  if (!dns_len.ok()) return dns_len.status();
  if (dns::header::Rcode(buf) != 0)
    return absl::PermissionDeniedError(absl::StrCat("rcode ", dns::header::Rcode(buf)));
  if (auto s = CountAnswers(buf, *dns_len, &t->records, &t->soas); !s.ok()) return s;
  return t->soas < 2;
}

absl::Status Run(char** argv) {
  std::string secret;
  if (!absl::Base64Unescape(argv[6], &secret))
    return absl::InvalidArgumentError("bad base64 secret");
  auto key = tandem::control::tsig::MakeKey({argv[4], argv[5], secret});
  if (!key.ok()) return key.status();
  uint16_t id = static_cast<uint16_t>(getpid() ^ Now());
  auto query = AxfrQuery(argv[3], id);
  if (!query.ok()) return query.status();
  ClientSession session(*key);
  if (auto s = session.SignRequest(&*query, Now()); !s.ok()) return s;
  auto fd = Connect(argv[1], atoi(argv[2]));
  if (!fd.ok()) return fd.status();
  std::string framed(2, '\0');
  dns::Put16(reinterpret_cast<uint8_t*>(framed.data()), static_cast<uint16_t>(query->size()));
  absl::Status status =
      WriteAll(*fd, framed + *query) ? absl::OkStatus() : absl::UnavailableError("write failed");
  Transfer t;
  for (int i = 0; status.ok() && i < kMaxMessages; ++i) {
    auto more = ReadOne(*fd, id, &session, &t);
    if (!more.ok()) status = more.status();
    if (!more.ok() || !*more) break;
  }
  close(*fd);
  if (status.ok()) status = session.Finish();
  if (status.ok() && t.soas < 2) status = absl::DataLossError("transfer did not end with the SOA");
  if (status.ok())
    printf("verified %d messages (%d signed), %d records\n", session.messages(),
           session.signed_messages(), t.records);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s HOST PORT ZONE KEYNAME ALGORITHM BASE64SECRET\n", argv[0]);
    return 2;
  }
  absl::Status s = Run(argv);
  if (!s.ok()) {
    printf("error: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
