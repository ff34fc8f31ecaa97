// Zone copies: checks, IXFR application, persistence.
#include "control/zone_copy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "control/journal.h"
#include "control/zone_file.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/rrtype.h"
#include "dataplane/dns/wire.h"
#include "dataplane/zone/builder.h"

namespace tandem::control {
namespace {

std::string Text(const std::string& wire) {
  return dns::NameToText(reinterpret_cast<const uint8_t*>(wire.data()));
}

std::string Text(const uint8_t* wire, size_t len) {
  return Text(std::string(reinterpret_cast<const char*>(wire), len));
}

uint32_t SerialOf(const dns::Record& soa) {
  return dns::Get32(reinterpret_cast<const uint8_t*>(soa.rdata.data()) + soa.rdata.size() - 20);
}

const uint8_t* U8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

std::string Lower(const uint8_t* name, size_t len) {
  std::string s(reinterpret_cast<const char*>(name), len);
  dns::LowerName(reinterpret_cast<uint8_t*>(s.data()), s.size());
  return s;
}

size_t CountRecords(const zone::Zone& z) {
  size_t n = 0;
  for (size_t i = 0; i < z.node_count(); ++i) {
    const zone::Node& node = z.NodeAt(i);
    for (const zone::RRset* set = z.RRsetsBegin(node); set != z.RRsetsEnd(node); ++set)
      n += set->count;
  }
  return n;
}

void AppendNumber(std::string* out, uint32_t v) {
  char buf[10];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out->push_back(buf[--n]);
}

}  // namespace

namespace {

constexpr size_t kBatchBytes = size_t{256} << 10;
constexpr size_t kMaxQueued = 8;  // batches handed over and not yet built: at most 2 MiB

// One record appended to a batch, in RecordArena's layout.
void Append(std::vector<uint8_t>* b, const uint8_t* owner, size_t owner_len, uint16_t type,
            uint16_t rclass, uint32_t ttl, const uint8_t* rdata, uint16_t rdlen) {
  size_t at = b->size();
  b->resize(at + RecordArena::EncodedSize(owner_len, rdlen));
  RecordArena::Encode(b->data() + at, owner, owner_len, type, rclass, ttl, rdata, rdlen);
}

}  // namespace

CopyBuilder::CopyBuilder(const std::string& apex)
    : apex_(apex), builder_(std::make_unique<zone::ZoneBuilder>(apex)) {}

CopyBuilder::~CopyBuilder() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    full_.clear();  // a copy given up (a failed transfer): nothing more to build
    done_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

// The checks run here, on the caller's thread: reading a transfer leaves it time to spare,
// the builder's thread has none.
void CopyBuilder::Add(const uint8_t* owner, size_t owner_len, uint16_t type, uint16_t rclass,
                      uint32_t ttl, const uint8_t* rdata, uint16_t rdlen) {
  if (!error_.empty()) return;
  if (!NameInZone(owner, owner_len, apex_)) {
    error_ = absl::StrCat("out-of-zone record ", Text(owner, owner_len), " in ", Text(apex_));
    return;
  }
  if (type == dns::kTypeSOA) {
    if (!dns::NameEqual(owner, U8(apex_))) {
      error_ = absl::StrCat("SOA record at ", Text(owner, owner_len), ", not at the apex");
      return;
    }
    if (rdlen < 22) {
      error_ = "malformed SOA record";
      return;
    }
    ++soas_;
    serial_ = dns::Get32(rdata + rdlen - 20);
  }
  if (rclass != dns::kClassIn) return;  // only IN data is served
  if (batch_.capacity() == 0) batch_.reserve(kBatchBytes + 1 + 255 + 10 + 65535);
  Append(&batch_, owner, owner_len, type, rclass, ttl, rdata, rdlen);
  if (batch_.size() >= kBatchBytes) HandOver();
}

void CopyBuilder::Add(const RecordArena::View& r) {
  Add(r.owner, r.owner_len, r.type, r.rclass, r.ttl, r.rdata, r.rdlen);
}

void CopyBuilder::Add(const dns::Record& r) {
  Add(U8(r.owner), r.owner.size(), r.type, r.rclass, r.ttl, U8(r.rdata),
      static_cast<uint16_t>(r.rdata.size()));
}

void CopyBuilder::HandOver() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return full_.size() < kMaxQueued; });  // the builder is behind: wait
  full_.push_back(std::move(batch_));
  batch_.clear();
  if (!empty_.empty()) {
    batch_ = std::move(empty_.back());
    empty_.pop_back();
  }
  if (!worker_.joinable()) worker_ = std::thread([this] { Work(); });
  lock.unlock();
  cv_.notify_all();
}

void CopyBuilder::Work() {
  for (;;) {
    Batch b;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return !full_.empty() || done_; });
      if (full_.empty()) return;
      b = std::move(full_.front());
      full_.pop_front();
    }
    cv_.notify_all();
    Consume(b);
    b.clear();
    std::lock_guard<std::mutex> lock(mu_);
    empty_.push_back(std::move(b));
  }
}

void CopyBuilder::Consume(const Batch& batch) {
  const uint8_t* p = batch.data();
  const uint8_t* end = p + batch.size();
  while (p < end) {
    uint8_t owner_len = p[0];
    const uint8_t* owner = p + 1;
    const uint8_t* h = owner + owner_len;
    uint16_t type, rdlen;
    uint32_t ttl;
    std::memcpy(&type, h, 2);
    std::memcpy(&ttl, h + 4, 4);
    std::memcpy(&rdlen, h + 8, 2);
    builder_->Add(owner, owner_len, type, ttl, h + 10, rdlen, {});
    p = h + 10 + rdlen;
  }
}

absl::StatusOr<ZoneCopy> CopyBuilder::Finish() {
  if (!builder_) return absl::FailedPreconditionError("the copy was made already");
  if (worker_.joinable()) {
    if (!batch_.empty()) HandOver();
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    worker_.join();
  } else {
    Consume(batch_);
  }
  batch_ = Batch();
  empty_.clear();
  if (!error_.empty()) return absl::InvalidArgumentError(error_);
  if (soas_ != 1)
    return absl::InvalidArgumentError(
        absl::StrCat(Text(apex_), ": ", soas_, " SOA records at the apex, not one"));
  auto z = builder_->Build();
  if (!z) {
    std::string msg;
    for (const auto& e : builder_->errors())
      absl::StrAppend(&msg, msg.empty() ? "" : "; ", e.message);
    return absl::InvalidArgumentError(absl::StrCat(Text(apex_), " serial ", serial_, ": ", msg));
  }
  builder_.reset();
  return ZoneCopy::FromZone(std::move(z));
}

bool ZoneHas(const zone::Zone& z, const uint8_t* owner, size_t owner_len, uint16_t type,
             const uint8_t* rdata, uint16_t rdlen, uint32_t* ttl) {
  if (owner_len == 0 || owner_len > dns::kMaxNameLength) return false;
  uint8_t lower[dns::kMaxNameLength];
  std::memcpy(lower, owner, owner_len);
  dns::LowerName(lower, owner_len);
  uint32_t id = z.Find(lower, owner_len, zone::HashName(lower, owner_len));
  if (id == zone::kNone) return false;
  const zone::RRset* set = z.FindRRset(z.node(id), type);
  if (set == nullptr) return false;
  if (ttl) *ttl = set->ttl;
  return RRsetHas(z, *set, rdata, rdlen);
}

bool RRsetHas(const zone::Zone& z, const zone::RRset& set, const uint8_t* rdata, uint16_t rdlen) {
  bool names = dns::HasNames(set.type);
  std::string want;
  for (zone::Rdata rr : z.Records(set)) {
    if (rr.size == rdlen && std::memcmp(rr.data, rdata, rdlen) == 0) return true;
    if (!names) continue;
    // Names inside RDATA compare without case: a primary may spell them differently.
    if (want.empty())
      want =
          dns::CanonicalRdata(set.type, std::string(reinterpret_cast<const char*>(rdata), rdlen));
    if (dns::CanonicalRdata(set.type,
                            std::string(reinterpret_cast<const char*>(rr.data), rr.size)) == want)
      return true;
  }
  return false;
}

absl::StatusOr<ZoneCopy> ZoneCopy::FromRecords(const std::string& zone,
                                               const std::vector<dns::Record>& records) {
  CopyBuilder b(zone);
  for (const dns::Record& r : records) b.Add(r);
  return b.Finish();
}

absl::StatusOr<ZoneCopy> ZoneCopy::FromArena(const std::string& zone, const RecordArena& records) {
  CopyBuilder b(zone);
  for (RecordArena::View r : records)
    b.Add(r.owner, r.owner_len, r.type, r.rclass, r.ttl, r.rdata, r.rdlen);
  return b.Finish();
}

ZoneCopy ZoneCopy::FromZone(std::shared_ptr<const zone::Zone> built) {
  ZoneCopy c;
  const zone::Zone& z = *built;
  zone::Rdata soa = z.First(z.soa());
  c.soa_ = dns::Record{std::string(reinterpret_cast<const char*>(z.apex()), z.apex_len()),
                       dns::kTypeSOA, dns::kClassIn, z.soa().ttl,
                       std::string(reinterpret_cast<const char*>(soa.data), soa.size)};
  c.serial_ = z.serial();
  c.size_ = CountRecords(z);
  c.zone_ = std::move(built);
  return c;
}

std::vector<dns::Record> ZoneCopy::records() const { return ZoneRecords(*zone_); }

// The differences become an overlay on this copy's zone (by record identity: present with
// its record, or removed); the new zone is built from the records the overlay leaves alone
// and the ones it holds. Only owners the differences touch are looked up in the overlay.
absl::StatusOr<ZoneCopy> ZoneCopy::Apply(const std::vector<IxfrDiff>& diffs) const {
  struct Change {
    bool present = false;
    bool emitted = false;
    dns::Record record;
  };
  absl::flat_hash_map<std::string, Change> overlay;
  absl::flat_hash_set<std::string> owners;  // lower-case wire
  const std::string apex(reinterpret_cast<const char*>(zone_->apex()), zone_->apex_len());
  dns::Record soa = soa_;
  uint32_t serial = serial_;
  for (const IxfrDiff& d : diffs) {
    if (SerialOf(d.from_soa) != serial)
      return absl::InvalidArgumentError(absl::StrCat("IXFR difference from serial ", SerialOf(d.from_soa),
                                                     " does not follow serial ", serial));
    if (dns::RecordKey(d.from_soa) != dns::RecordKey(soa))
      return absl::InvalidArgumentError(
          absl::StrCat("IXFR difference from serial ", serial,
                       " starts from another SOA record than the copy's"));
    for (const auto& r : d.removed) {
      if (r.type == dns::kTypeSOA) continue;
      std::string key = dns::RecordKey(r);
      auto it = overlay.find(key);
      bool exists = it != overlay.end()
                        ? it->second.present
                        : ZoneHas(*zone_, U8(r.owner), r.owner.size(), r.type, U8(r.rdata),
                                  static_cast<uint16_t>(r.rdata.size()));
      if (!exists)
        return absl::InvalidArgumentError(absl::StrCat("IXFR removes ", Text(r.owner), " ", dns::TypeToText(r.type),
                                                       " which the copy at serial ", serial, " does not hold"));
      overlay[key] = Change{};
      owners.insert(Lower(U8(r.owner), r.owner.size()));
    }
    for (const auto& r : d.added) {
      if (r.type == dns::kTypeSOA) continue;
      if (!dns::IsSubdomain(U8(r.owner), r.owner.size(), U8(apex), apex.size()))
        return absl::InvalidArgumentError(
            absl::StrCat("out-of-zone record ", Text(r.owner), " in ", Text(apex)));
      overlay.insert_or_assign(dns::RecordKey(r), Change{true, false, r});
      owners.insert(Lower(U8(r.owner), r.owner.size()));
    }
    soa = d.to_soa;
    serial = SerialOf(soa);
  }

  CopyBuilder b(apex);
  ForEachRecord(*zone_, [&](const uint8_t* owner, size_t owner_len, uint16_t type, uint32_t ttl,
                            const uint8_t* rdata, uint16_t rdlen) {
    if (type == dns::kTypeSOA) return;  // replaced by the last difference's
    if (owners.contains(absl::string_view(reinterpret_cast<const char*>(owner), owner_len))) {
      dns::Record r{std::string(reinterpret_cast<const char*>(owner), owner_len), type,
                    dns::kClassIn, ttl, std::string(reinterpret_cast<const char*>(rdata), rdlen)};
      if (overlay.contains(dns::RecordKey(r))) return;
    }
    b.Add(owner, owner_len, type, dns::kClassIn, ttl, rdata, rdlen);
  });
  // Added records in the order the differences brought them (the last version of each).
  for (const IxfrDiff& d : diffs) {
    for (const auto& r : d.added) {
      if (r.type == dns::kTypeSOA) continue;
      Change& c = overlay[dns::RecordKey(r)];
      if (!c.present || c.emitted) continue;
      c.emitted = true;
      b.Add(U8(c.record.owner), c.record.owner.size(), c.record.type, c.record.rclass, c.record.ttl,
            U8(c.record.rdata), static_cast<uint16_t>(c.record.rdata.size()));
    }
  }
  b.Add(U8(soa.owner), soa.owner.size(), soa.type, soa.rclass, soa.ttl, U8(soa.rdata),
        static_cast<uint16_t>(soa.rdata.size()));
  return b.Finish();
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    close(fd_);
    unlink(tmp_.c_str());
  }
}

absl::Status AtomicFile::Open(const std::string& path) {
  path_ = path;
  tmp_ = absl::StrCat(path, ".tmp");
  std::filesystem::path p(path);
  std::error_code ec;
  std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) return absl::InternalError(absl::StrCat(p.parent_path().string(), ": ", ec.message()));
  fd_ = open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd_ < 0) return absl::InternalError(absl::StrCat(tmp_, ": ", strerror(errno)));
  return absl::OkStatus();
}

absl::Status AtomicFile::Write(const char* data, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = write(fd_, data + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat(tmp_, ": write: ", strerror(errno)));
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status AtomicFile::Commit() {
  int fd = fd_;
  fd_ = -1;
  if (fsync(fd) != 0) {
    std::string why = strerror(errno);
    close(fd);
    unlink(tmp_.c_str());
    return absl::InternalError(absl::StrCat(tmp_, ": fsync: ", why));
  }
  if (close(fd) != 0) return absl::InternalError(absl::StrCat(tmp_, ": close: ", strerror(errno)));
  if (rename(tmp_.c_str(), path_.c_str()) != 0)
    return absl::InternalError(absl::StrCat(path_, ": rename: ", strerror(errno)));
  int dir =
      open(std::filesystem::path(path_).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    fsync(dir);
    close(dir);
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& data) {
  AtomicFile f;
  if (auto s = f.Open(path); !s.ok()) return s;
  if (auto s = f.Write(data.data(), data.size()); !s.ok()) return s;
  return f.Commit();
}

// One line per record, "OWNER TTL IN TYPEn \# LEN HEX", written in 1 MiB pieces.
absl::Status ZoneCopy::Save(const std::string& path) const {
  AtomicFile f;
  if (auto s = f.Open(path); !s.ok()) return s;
  std::string out =
      absl::StrCat("; ", zone_->name_text(), " serial ", serial_, ", saved by tandemd\n");
  out.reserve(1 << 21);
  static const char kHex[] = "0123456789abcdef";
  absl::Status status;
  // Records of one node come together: the owner's text is made once per node.
  const uint8_t* last_owner = nullptr;
  std::string owner_text;
  ForEachRecord(*zone_, [&](const uint8_t* owner, size_t, uint16_t type, uint32_t ttl,
                            const uint8_t* rdata, uint16_t rdlen) {
    if (!status.ok()) return;
    if (owner != last_owner) {
      owner_text.clear();
      dns::AppendNameText(&owner_text, owner);
      last_owner = owner;
    }
    out += owner_text;
    out.push_back(' ');
    AppendNumber(&out, ttl);
    out += " IN TYPE";
    AppendNumber(&out, type);
    out += " \\# ";
    AppendNumber(&out, rdlen);
    if (rdlen) out.push_back(' ');
    for (uint16_t i = 0; i < rdlen; ++i) {
      out.push_back(kHex[rdata[i] >> 4]);
      out.push_back(kHex[rdata[i] & 15]);
    }
    out.push_back('\n');
    if (out.size() >= (1 << 20)) {
      status = f.Write(out.data(), out.size());
      out.clear();
    }
  });
  if (!status.ok()) return status;
  if (auto s = f.Write(out.data(), out.size()); !s.ok()) return s;
  return f.Commit();
}

absl::StatusOr<ZoneCopy> ZoneCopy::Load(const std::string& zone, const std::string& path) {
  auto loaded = LoadZoneFile(Text(zone), path);
  if (!loaded.ok()) return loaded.status();
  return FromZone(std::move(loaded->zone));
}

}  // namespace tandem::control
