// Zone file loading: libzscanner parses, ZoneBuilder checks and builds.
#include "control/zone_file.h"

extern "C" {  // libzscanner's header has no C++ guards
#include <libzscanner/scanner.h>
}

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/wire.h"
#include "dataplane/zone/builder.h"

namespace tandem::control {
namespace {

constexpr size_t kMaxErrors = 50;

struct LoadState {
  zone::ZoneBuilder* builder;       // records go here, or
  std::vector<dns::Record>* out;    // here
  std::vector<std::string> files;  // index = zone::Position::file
  std::vector<std::string> errors;

  // libzscanner keeps the current file's name in one buffer for as long as it reads that
  // file: the last answer is remembered by that pointer, so a record costs no lookup.
  const char* last_name = nullptr;
  uint32_t last_index = 0;

  uint32_t FileIndex(const char* name) {
    if (name == nullptr) return 0;  // text input: the caller's name for it
    if (name == last_name && last_index < files.size() && files[last_index] == name)
      return last_index;
    last_name = name;
    for (uint32_t i = 0; i < files.size(); ++i)
      if (files[i] == name) return last_index = i;
    files.push_back(name);
    return last_index = static_cast<uint32_t>(files.size() - 1);
  }
  std::string Where(const zone::Position& p) const {
    return p.line ? absl::StrCat(files[p.file], ":", p.line) : files[p.file];
  }
};

void OnRecord(zs_scanner_t* s) {
  auto* st = static_cast<LoadState*>(s->process.data);
  zone::Position where{st->FileIndex(s->file.name), static_cast<uint32_t>(s->line_counter)};
  if (s->r_class != dns::kClassIn) {
    st->errors.push_back(absl::StrCat(st->Where(where), ": class ", s->r_class, " records are not served (only IN)"));
    return;
  }
  if (st->out) {
    st->out->push_back({std::string(reinterpret_cast<const char*>(s->r_owner), s->r_owner_length),
                        s->r_type, s->r_class, s->r_ttl,
                        std::string(reinterpret_cast<const char*>(s->r_data), s->r_data_length)});
    return;
  }
  st->builder->Add(s->r_owner, s->r_owner_length, s->r_type, s->r_ttl, s->r_data,
                   static_cast<uint16_t>(s->r_data_length), where);
}

void OnError(zs_scanner_t* s) {
  auto* st = static_cast<LoadState*>(s->process.data);
  zone::Position where{st->FileIndex(s->file.name), static_cast<uint32_t>(s->line_counter)};
  if (st->errors.size() < kMaxErrors)
    st->errors.push_back(absl::StrCat(st->Where(where), ": ", zs_strerror(s->error.code)));
}

// Runs libzscanner over the file (or text) into `st`; errors come back joined.
absl::Status Parse(const std::string& zone_name, const std::string& path, const std::string* text,
                   LoadState& st) {
  auto apex = dns::NameFromText(zone_name);
  if (!apex.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": zone name: ", apex.status().message()));
  std::string origin = dns::NameToText(reinterpret_cast<const uint8_t*>(apex->data()));
  auto scanner = std::make_unique<zs_scanner_t>();
  if (zs_init(scanner.get(), origin.c_str(), dns::kClassIn, 3600) != 0)
    return absl::InternalError(absl::StrCat(path, ": cannot initialise the zone parser"));
  int rc = text ? zs_set_input_string(scanner.get(), text->data(), text->size())
                : zs_set_input_file(scanner.get(), path.c_str());
  if (rc != 0) {
    std::string why = zs_strerror(scanner->error.code);
    zs_deinit(scanner.get());
    return absl::NotFoundError(absl::StrCat(path, ": cannot read: ", why));
  }
  zs_set_processing(scanner.get(), OnRecord, OnError, &st);
  zs_parse_all(scanner.get());
  zs_deinit(scanner.get());
  if (!st.errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(st.errors, "\n"));
  return absl::OkStatus();
}

absl::StatusOr<LoadedZone> Load(const std::string& zone_name, const std::string& path,
                                const std::string* text) {
  auto apex = dns::NameFromText(zone_name);
  if (!apex.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": zone name: ", apex.status().message()));
  zone::ZoneBuilder builder(*apex);
  LoadState st{&builder, nullptr, {path}, {}};
  if (auto s = Parse(zone_name, path, text, st); !s.ok()) return s;

  LoadedZone out;
  out.records = builder.record_count();
  out.zone = builder.Build();
  for (const auto& w : builder.warnings()) out.warnings.push_back(absl::StrCat(st.Where(w.where), ": ", w.message));
  if (!out.zone) {
    std::vector<std::string> errors;
    for (const auto& e : builder.errors()) errors.push_back(absl::StrCat(st.Where(e.where), ": ", e.message));
    return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  }
  return out;
}

}  // namespace

absl::StatusOr<LoadedZone> LoadZoneFile(const std::string& zone_name, const std::string& path) {
  return Load(zone_name, path, nullptr);
}

absl::StatusOr<LoadedZone> LoadZoneText(const std::string& zone_name, const std::string& text,
                                        const std::string& path) {
  return Load(zone_name, path, &text);
}

}  // namespace tandem::control

namespace tandem::control {

absl::StatusOr<std::vector<dns::Record>> ReadZoneRecords(const std::string& zone_name,
                                                         const std::string& path) {
  std::vector<dns::Record> records;
  LoadState st{nullptr, &records, {path}, {}};
  if (auto s = Parse(zone_name, path, nullptr, st); !s.ok()) return s;
  return records;
}

}  // namespace tandem::control
