// Zone copies: IXFR application, building, persistence.
#include "control/zone_copy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
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


uint32_t SerialOf(const dns::Record& soa) {
  return dns::Get32(reinterpret_cast<const uint8_t*>(soa.rdata.data()) + soa.rdata.size() - 20);
}

}  // namespace

absl::StatusOr<ZoneCopy> ZoneCopy::FromRecords(const std::string& zone, std::vector<dns::Record> records) {
  ZoneCopy c;
  c.zone_ = zone;
  int soas = 0;
  const auto* apex = reinterpret_cast<const uint8_t*>(zone.data());
  for (size_t i = 0; i < records.size(); ++i) {
    const dns::Record& r = records[i];
    const auto* owner = reinterpret_cast<const uint8_t*>(r.owner.data());
    if (!dns::IsSubdomain(owner, r.owner.size(), apex, zone.size()))
      return absl::InvalidArgumentError(absl::StrCat("out-of-zone record ", Text(r.owner), " in ", Text(zone)));
    if (r.type == dns::kTypeSOA) {
      if (!dns::NameEqual(owner, apex)) return absl::InvalidArgumentError(absl::StrCat("SOA record at ", Text(r.owner), ", not at the apex"));
      if (r.rdata.size() < 22) return absl::InvalidArgumentError("malformed SOA record");
      ++soas;
      c.soa_index_ = i;
    }
  }
  if (soas != 1)
    return absl::InvalidArgumentError(absl::StrCat(Text(zone), ": ", soas, " SOA records at the apex, not one"));
  c.records_ = std::move(records);
  c.serial_ = SerialOf(c.records_[c.soa_index_]);
  return c;
}

absl::StatusOr<ZoneCopy> ZoneCopy::Apply(const std::vector<IxfrDiff>& diffs) const {
  absl::flat_hash_map<std::string, dns::Record> set;
  set.reserve(records_.size());
  for (const auto& r : records_) set.emplace(dns::RecordKey(r), r);
  uint32_t serial = serial_;
  for (const IxfrDiff& d : diffs) {
    if (SerialOf(d.from_soa) != serial)
      return absl::InvalidArgumentError(absl::StrCat("IXFR difference from serial ", SerialOf(d.from_soa),
                                                     " does not follow serial ", serial));
    set.erase(dns::RecordKey(d.from_soa));  // the old SOA is replaced by the difference's new one
    for (const auto& r : d.removed) {
      if (r.type == dns::kTypeSOA) continue;
      if (set.erase(dns::RecordKey(r)) == 0)
        return absl::InvalidArgumentError(absl::StrCat("IXFR removes ", Text(r.owner), " ", dns::TypeToText(r.type),
                                                       " which the copy at serial ", serial, " does not hold"));
    }
    for (const auto& r : d.added)
      if (r.type != dns::kTypeSOA) set.insert_or_assign(dns::RecordKey(r), r);
    set.insert_or_assign(dns::RecordKey(d.to_soa), d.to_soa);
    serial = SerialOf(d.to_soa);
  }
  std::vector<dns::Record> records;
  records.reserve(set.size());
  for (auto& [k, r] : set) records.push_back(std::move(r));
  return FromRecords(zone_, std::move(records));
}

absl::StatusOr<std::shared_ptr<const zone::Zone>> ZoneCopy::Build() const {
  zone::ZoneBuilder builder(zone_);
  for (const auto& r : records_) {
    if (r.rclass != dns::kClassIn) continue;
    builder.Add(reinterpret_cast<const uint8_t*>(r.owner.data()), r.owner.size(), r.type, r.ttl,
                reinterpret_cast<const uint8_t*>(r.rdata.data()), static_cast<uint16_t>(r.rdata.size()), {});
  }
  auto z = builder.Build();
  if (!z) {
    std::string msg;
    for (const auto& e : builder.errors()) absl::StrAppend(&msg, msg.empty() ? "" : "; ", e.message);
    return absl::InvalidArgumentError(absl::StrCat(Text(zone_), " serial ", serial_, ": ", msg));
  }
  return z;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& data) {
  std::filesystem::path p(path);
  std::error_code ec;
  std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) return absl::InternalError(absl::StrCat(p.parent_path().string(), ": ", ec.message()));
  std::string tmp = absl::StrCat(path, ".tmp");
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return absl::InternalError(absl::StrCat(tmp, ": ", strerror(errno)));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string why = strerror(errno);
      close(fd);
      return absl::InternalError(absl::StrCat(tmp, ": write: ", why));
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) return absl::InternalError(absl::StrCat(tmp, ": fsync: ", strerror(errno)));
  if (rename(tmp.c_str(), path.c_str()) != 0) return absl::InternalError(absl::StrCat(path, ": rename: ", strerror(errno)));
  int dir = open(p.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    fsync(dir);
    close(dir);
  }
  return absl::OkStatus();
}

absl::Status ZoneCopy::Save(const std::string& path) const {
  std::string out = absl::StrCat("; ", Text(zone_), " serial ", serial_, ", saved by tandemd\n");
  // The SOA first, so a reader sees the serial at once.
  std::vector<const dns::Record*> order = {&records_[soa_index_]};
  for (size_t i = 0; i < records_.size(); ++i)
    if (i != soa_index_) order.push_back(&records_[i]);
  char hex[3];
  for (const dns::Record* r : order) {
    if (r->rclass != dns::kClassIn) continue;  // only IN data is served
    absl::StrAppend(&out, Text(r->owner), " ", r->ttl, " IN TYPE", r->type, " \\# ", r->rdata.size());
    if (!r->rdata.empty()) out.push_back(' ');
    for (unsigned char c : r->rdata) {
      std::snprintf(hex, sizeof hex, "%02x", c);
      out += hex;
    }
    out.push_back('\n');
  }
  return WriteFileAtomically(path, out);
}

absl::StatusOr<ZoneCopy> ZoneCopy::Load(const std::string& zone, const std::string& path) {
  auto records = ReadZoneRecords(Text(zone), path);
  if (!records.ok()) return records.status();
  return FromRecords(zone, std::move(*records));
}

}  // namespace tandem::control
