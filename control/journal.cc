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

std::string Key(const dns::Record& r) {
  std::string k = r.owner;
  k.push_back(static_cast<char>(r.type >> 8));
  k.push_back(static_cast<char>(r.type));
  k += r.rdata;
  return k;
}

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
  out.push_back({});  // the SOA's place
  for (size_t i = 0; i < z.node_count(); ++i) {
    const zone::Node& n = z.node(static_cast<uint32_t>(i));
    std::string owner(reinterpret_cast<const char*>(z.NodeName(n)), n.name_len);
    for (const zone::RRset* set = z.RRsetsBegin(n); set != z.RRsetsEnd(n); ++set) {
      zone::Rdata rr = z.First(*set);
      for (uint16_t k = 0; k < set->count; ++k, rr = z.Next(rr)) {
        dns::Record r{owner, set->type, dns::kClassIn, set->ttl,
                      std::string(reinterpret_cast<const char*>(rr.data), rr.size)};
        if (set->type == dns::kTypeSOA) out[0] = std::move(r);
        else out.push_back(std::move(r));
      }
    }
  }
  return out;
}

IxfrDiff Difference(const std::vector<dns::Record>& from, const std::vector<dns::Record>& to) {
  IxfrDiff d;
  absl::flat_hash_map<std::string, const dns::Record*> old_set, new_set;
  for (const auto& r : from) {
    if (r.type == dns::kTypeSOA) d.from_soa = r;
    else old_set.emplace(Key(r), &r);
  }
  for (const auto& r : to) {
    if (r.type == dns::kTypeSOA) d.to_soa = r;
    else new_set.emplace(Key(r), &r);
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

Journal Journal::Load(const std::string& dir, size_t max_versions) {
  Journal j;
  j.dir_ = dir;
  j.max_versions_ = max_versions;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return j;
  std::vector<std::string> files;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 5 && name.substr(name.size() - 5) == ".diff") files.push_back(name);
  }
  closedir(d);
  std::sort(files.begin(), files.end());  // "<sequence>.diff", zero-padded
  for (const auto& f : files) {
    std::ifstream in(absl::StrCat(dir, "/", f));
    IxfrDiff diff;
    std::string line;
    bool ok = true;
    while (std::getline(in, line) && ok) {
      char sign = 0;
      dns::Record r;
      if (!(ok = ParseLine(line, &sign, &r))) break;
      if (sign == 'F') diff.from_soa = r;
      else if (sign == 'T') diff.to_soa = r;
      else if (sign == '-') diff.removed.push_back(r);
      else if (sign == '+') diff.added.push_back(r);
    }
    if (!ok || diff.from_soa.rdata.size() < 20 || diff.to_soa.rdata.size() < 20) {
      LogWarning(dir, "/", f, ": unreadable IXFR history file; history restarts");
      j.diffs_.clear();
      continue;
    }
    if (!j.diffs_.empty() && SoaSerial(j.diffs_.back().to_soa) != SoaSerial(diff.from_soa)) j.diffs_.clear();
    j.diffs_.push_back(std::move(diff));
  }
  return j;
}

absl::Status Journal::Append(IxfrDiff diff) {
  if (!diffs_.empty() && SoaSerial(diffs_.back().to_soa) != SoaSerial(diff.from_soa)) {
    diffs_.clear();
    // Files of the broken chain go too.
    if (DIR* d = opendir(dir_.c_str())) {
      while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name.size() > 5 && name.substr(name.size() - 5) == ".diff") unlink(absl::StrCat(dir_, "/", name).c_str());
      }
      closedir(d);
    }
  }
  std::string text = Line('F', diff.from_soa) + Line('T', diff.to_soa);
  for (const auto& r : diff.removed) text += Line('-', r);
  for (const auto& r : diff.added) text += Line('+', r);
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.diff", static_cast<unsigned long long>(absl::ToUnixMicros(absl::Now())));
  diffs_.push_back(std::move(diff));
  if (auto s = WriteFileAtomically(absl::StrCat(dir_, "/", name), text); !s.ok()) return s;
  while (diffs_.size() > max_versions_) diffs_.erase(diffs_.begin());
  // Older files beyond the limit are removed by name order.
  if (DIR* d = opendir(dir_.c_str())) {
    std::vector<std::string> files;
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 5 && n.substr(n.size() - 5) == ".diff") files.push_back(n);
    }
    closedir(d);
    std::sort(files.begin(), files.end());
    for (size_t i = 0; i + max_versions_ < files.size(); ++i) unlink(absl::StrCat(dir_, "/", files[i]).c_str());
  }
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
