// Zone version history.
#include "control/journal.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "control/log.h"
#include "control/zone_copy.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/rrtype.h"
#include "dataplane/dns/wire.h"

namespace tandem::control {
namespace {


// One record per line: "<sign> <hex owner> <type> <ttl> <hex rdata>".
std::string Line(char sign, const dns::Record& r) {
  return absl::StrCat(std::string(1, sign), " ", absl::BytesToHexString(r.owner), " ", r.type, " ",
                      r.ttl, " ", absl::BytesToHexString(r.rdata), "\n");
}

bool ParseLine(const std::string& line, char* sign, dns::Record* r) {
  std::vector<std::string> f = absl::StrSplit(line, ' ');
  if (f.size() != 5 || f[0].size() != 1) return false;
  *sign = f[0][0];
  r->owner = absl::HexStringToBytes(f[1]);
  r->type = static_cast<uint16_t>(std::stoul(f[2]));
  r->rclass = dns::kClassIn;
  r->ttl = static_cast<uint32_t>(std::stoul(f[3]));
  r->rdata = absl::HexStringToBytes(f[4]);
  return true;
}

}  // namespace

uint32_t SoaSerial(const dns::Record& soa) {
  return dns::Get32(reinterpret_cast<const uint8_t*>(soa.rdata.data()) + soa.rdata.size() - 20);
}

std::vector<dns::Record> ZoneRecords(const zone::Zone& z) {
  std::vector<dns::Record> out;
  if (z.FindRRset(z.node(0), dns::kTypeSOA) == nullptr)
    return out;  // a SERVFAIL zone has no records
  ForEachRecord(z, [&](const uint8_t* owner, size_t owner_len, uint16_t type, uint32_t ttl,
                       const uint8_t* rdata, uint16_t rdlen) {
    out.push_back({std::string(reinterpret_cast<const char*>(owner), owner_len), type,
                   dns::kClassIn, ttl, std::string(reinterpret_cast<const char*>(rdata), rdlen)});
  });
  return out;
}

IxfrDiff Difference(const std::vector<dns::Record>& from, const std::vector<dns::Record>& to) {
  IxfrDiff d;
  absl::flat_hash_map<std::string, const dns::Record*> old_set, new_set;
  for (const auto& r : from) {
    if (r.type == dns::kTypeSOA) d.from_soa = r;
    else old_set.emplace(dns::RecordKey(r), &r);
  }
  for (const auto& r : to) {
    if (r.type == dns::kTypeSOA) d.to_soa = r;
    else new_set.emplace(dns::RecordKey(r), &r);
  }
  for (const auto& [k, r] : old_set) {
    auto it = new_set.find(k);
    if (it == new_set.end() || it->second->ttl != r->ttl) d.removed.push_back(*r);
  }
  for (const auto& [k, r] : new_set) {
    auto it = old_set.find(k);
    if (it == old_set.end() || it->second->ttl != r->ttl) d.added.push_back(*r);
  }
  return d;
}

namespace {

dns::Record MakeRecord(const uint8_t* owner, size_t owner_len, uint16_t type, uint32_t ttl,
                       zone::Rdata rr) {
  return dns::Record{std::string(reinterpret_cast<const char*>(owner), owner_len), type,
                     dns::kClassIn, ttl,
                     std::string(reinterpret_cast<const char*>(rr.data), rr.size)};
}

// Every record of `a` that `b` does not hold with the same TTL, the SOA aside. One index
// probe per name.
void RecordsNotIn(const zone::Zone& a, const zone::Zone& b, std::vector<dns::Record>* out) {
  for (size_t i = 0; i < a.node_count(); ++i) {
    const zone::Node& n = a.NodeAt(i);
    if (n.rrset_count == 0) continue;
    const uint8_t* name = a.NodeName(n);
    uint32_t id = b.Find(name, n.name_len, zone::HashName(name, n.name_len));
    for (const zone::RRset* set = a.RRsetsBegin(n); set != a.RRsetsEnd(n); ++set) {
      if (set->type == dns::kTypeSOA) continue;
      const zone::RRset* other = id == zone::kNone ? nullptr : b.FindRRset(b.node(id), set->type);
      bool same_ttl = other != nullptr && other->ttl == set->ttl;
      for (zone::Rdata rr : a.Records(*set))
        if (!same_ttl || !RRsetHas(b, *other, rr.data, rr.size))
          out->push_back(MakeRecord(name, n.name_len, set->type, set->ttl, rr));
    }
  }
}

dns::Record SoaOf(const zone::Zone& z) {
  return MakeRecord(z.apex(), z.apex_len(), dns::kTypeSOA, z.soa().ttl, z.First(z.soa()));
}

}  // namespace

IxfrDiff Difference(const zone::Zone& from, const zone::Zone& to) {
  IxfrDiff d;
  d.from_soa = SoaOf(from);
  d.to_soa = SoaOf(to);
  RecordsNotIn(from, to, &d.removed);
  RecordsNotIn(to, from, &d.added);
  return d;
}

namespace {

std::vector<std::string> DiffFiles(const std::string& dir) {
  std::vector<std::string> files;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.size() > 5 && name.substr(name.size() - 5) == ".diff") files.push_back(name);
    }
    closedir(d);
  }
  return files;
}

std::optional<IxfrDiff> ReadDiff(const std::string& path) {
  std::ifstream in(path);
  IxfrDiff diff;
  std::string line;
  while (std::getline(in, line)) {
    char sign = 0;
    dns::Record r;
    if (!ParseLine(line, &sign, &r)) return std::nullopt;
    if (sign == 'F') diff.from_soa = r;
    else if (sign == 'T') diff.to_soa = r;
    else if (sign == '-') diff.removed.push_back(r);
    else if (sign == '+') diff.added.push_back(r);
  }
  if (diff.from_soa.rdata.size() < 20 || diff.to_soa.rdata.size() < 20) return std::nullopt;
  return diff;
}

// "<from serial>-<to serial>.diff": the history is put in order by its serials, not by
// file names or times.
std::string FileName(const IxfrDiff& d) {
  return absl::StrCat(SoaSerial(d.from_soa), "-", SoaSerial(d.to_soa), ".diff");
}

}  // namespace

Journal Journal::Load(const std::string& dir, size_t max_versions) {
  Journal j;
  j.dir_ = dir;
  j.max_versions_ = max_versions;
  absl::flat_hash_map<uint32_t, IxfrDiff> by_from;
  absl::flat_hash_map<uint32_t, int> to_count;
  for (const auto& f : DiffFiles(dir)) {
    auto diff = ReadDiff(absl::StrCat(dir, "/", f));
    if (!diff) {
      LogWarning(dir, "/", f, ": unreadable IXFR history file, ignored");
      continue;
    }
    ++to_count[SoaSerial(diff->to_soa)];
    by_from[SoaSerial(diff->from_soa)] = std::move(*diff);
  }
  // A chain starts at a difference whose from serial no other difference leads to; with
  // several (a broken history), the longest is kept.
  for (auto& [from, diff] : by_from) {
    if (to_count.count(from)) continue;
    std::vector<IxfrDiff> chain;
    uint32_t at = from;
    while (by_from.count(at) && chain.size() <= by_from.size()) {
      chain.push_back(by_from[at]);
      at = SoaSerial(chain.back().to_soa);
    }
    if (chain.size() > j.diffs_.size()) j.diffs_ = std::move(chain);
  }
  return j;
}

absl::Status Journal::Append(IxfrDiff diff) {
  if (!diffs_.empty() && SoaSerial(diffs_.back().to_soa) != SoaSerial(diff.from_soa)) diffs_.clear();
  std::string text = Line('F', diff.from_soa) + Line('T', diff.to_soa);
  for (const auto& r : diff.removed) text += Line('-', r);
  for (const auto& r : diff.added) text += Line('+', r);
  std::string name = FileName(diff);
  diffs_.push_back(std::move(diff));
  while (diffs_.size() > max_versions_) diffs_.erase(diffs_.begin());
  if (auto s = WriteFileAtomically(absl::StrCat(dir_, "/", name), text); !s.ok()) return s;
  // Files not in the history any more (dropped, or of a broken chain) go.
  absl::flat_hash_map<std::string, bool> keep;
  for (const auto& d : diffs_) keep[FileName(d)] = true;
  for (const auto& f : DiffFiles(dir_))
    if (!keep.count(f)) unlink(absl::StrCat(dir_, "/", f).c_str());
  return absl::OkStatus();
}

std::optional<std::vector<const IxfrDiff*>> Journal::Chain(uint32_t from_serial, uint32_t to_serial) const {
  std::vector<const IxfrDiff*> chain;
  size_t i = 0;
  while (i < diffs_.size() && SoaSerial(diffs_[i].from_soa) != from_serial) ++i;
  for (; i < diffs_.size(); ++i) {
    chain.push_back(&diffs_[i]);
    if (SoaSerial(diffs_[i].to_soa) == to_serial) return chain;
  }
  return std::nullopt;
}

}  // namespace tandem::control
