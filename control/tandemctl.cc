// tandemctl: the operator's client of tandemd's control socket. It sends one command,
// prints the answer as aligned tables (or the raw JSON with --json) and exits 0 on
// success, 1 when the command failed or tandemd could not be reached, 2 on a usage error.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "control/control_socket.h"

namespace {

using tandem::control::json::Value;

constexpr const char* kDefaultSocket = "/run/tandem/control.sock";

constexpr const char* kUsage =
    "usage: tandemctl [--socket PATH] [--json] [--timeout SECONDS] <command> [args]\n"
    "\n"
    "commands:\n"
    "  status                 version, uptime, mode, listen addresses, zones, query rate\n"
    "  zones                  the zones served: serial, source, size, state\n"
    "  sources ZONE           the upstream sources of a pulled zone and their health\n"
    "  refresh ZONE           ask the sources of a pulled zone for a newer serial now\n"
    "  use ZONE SOURCE|auto   pin a pulled zone to one source, or release the pin\n"
    "  reload                 re-read the configuration and every zone file (all or nothing)\n"
    "  stats                  query and response counters: in total, per worker, per DPDK port\n"
    "  pool POOL              a load-balancing pool's members: state, checks, latency\n"
    "  pool POOL MEMBER up|down|auto   override a member's health, or return to its checks\n"
    "\n"
    "options:\n"
    "  --socket PATH          the control socket (default /run/tandem/control.sock)\n"
    "  --json                 print tandemd's JSON response as it is\n"
    "  --timeout SECONDS      how long to wait for the response (default 60)\n"
    "  -h, --help             this text\n"
    "\n"
    "exit status: 0 success, 1 the command failed or tandemd is unreachable, 2 usage error\n";

struct Command {
  const char* name;
  size_t args;
  const char* usage;
};

constexpr Command kCommands[] = {
    {"status", 0, "status"},
    {"zones", 0, "zones"},
    {"sources", 1, "sources ZONE"},
    {"refresh", 1, "refresh ZONE"},
    {"use", 2, "use ZONE SOURCE|auto"},
    {"reload", 0, "reload"},
    {"stats", 0, "stats"},
    {"pool", 1, "pool POOL [MEMBER up|down|auto]"},
};

struct Options {
  std::string socket = kDefaultSocket;
  bool json = false;
  absl::Duration timeout = absl::Seconds(60);
  std::vector<std::string> words;  // the command and its arguments
};

int UsageError(const std::string& message) {
  std::fprintf(stderr,
               "tandemctl: %s\n"
               "usage: tandemctl [--socket PATH] [--json] <command> [args]; "
               "'tandemctl --help' lists the commands\n",
               message.c_str());
  return 2;
}

// Returns -1 when the command line is usable, otherwise the exit status.
int ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (arg.rfind(std::string(flag) + "=", 0) == 0) return argv[i] + std::strlen(flag) + 1;
      return i + 1 < argc ? argv[++i] : nullptr;
    };
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--json") {
      o->json = true;
    } else if (arg == "--socket" || arg.rfind("--socket=", 0) == 0) {
      const char* v = value("--socket");
      if (v == nullptr || *v == '\0') return UsageError("--socket needs a PATH");
      o->socket = v;
    } else if (arg == "--timeout" || arg.rfind("--timeout=", 0) == 0) {
      const char* v = value("--timeout");
      double seconds = 0;
      if (v == nullptr || !absl::SimpleAtod(v, &seconds) || seconds <= 0)
        return UsageError("--timeout needs a number of seconds");
      o->timeout = absl::Seconds(seconds);
    } else if (arg.size() > 1 && arg[0] == '-') {
      return UsageError(absl::StrCat("unknown option '", arg, "'"));
    } else {
      o->words.push_back(arg);
    }
  }
  return -1;
}

int CheckCommand(const std::vector<std::string>& words) {
  if (words.empty()) return UsageError("a command is required");
  for (const Command& c : kCommands) {
    if (words[0] != c.name) continue;
    if (words.size() - 1 == c.args) return -1;
    if (words[0] == "pool" && words.size() == 4) return -1;
    return UsageError(absl::StrCat("usage: tandemctl ", c.usage));
  }
  return UsageError(absl::StrCat("unknown command '", words[0], "'"));
}

// ---------------------------------------------------------------------------------------
// Presentation.

std::string Text(const Value* v) {
  if (v == nullptr) return "-";
  switch (v->type) {
    case Value::Type::kNull:
      return "-";
    case Value::Type::kBool:
      return v->boolean ? "yes" : "no";
    case Value::Type::kNumber:
      return v->text;
    case Value::Type::kString:
      return v->text.empty() ? "-" : v->text;
    case Value::Type::kArray: {
      std::vector<std::string> parts;
      for (const Value& item : v->items) parts.push_back(Text(&item));
      return absl::StrJoin(parts, ", ");
    }
    case Value::Type::kObject:
      return tandem::control::json::Serialize(*v);
  }
  return "-";
}

uint64_t Count(const Value* v) {
  uint64_t n = 0;
  if (v != nullptr && v->is_number()) (void)absl::SimpleAtoi(v->text, &n);
  return n;
}

// Columns separated by two spaces; the last column is not padded.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) {
      if (width.size() <= c) width.push_back(0);
      width[c] = std::max(width[c], row[c].size());
    }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

std::string Duration(uint64_t seconds) {
  uint64_t d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60, s = seconds % 60;
  if (d > 0) return absl::StrFormat("%dd %dh %dm %ds", d, h, m, s);
  if (h > 0) return absl::StrFormat("%dh %dm %ds", h, m, s);
  if (m > 0) return absl::StrFormat("%dm %ds", m, s);
  return absl::StrFormat("%ds", s);
}

std::string Bytes(uint64_t n) {
  if (n < 1024) return absl::StrCat(n, " B");
  if (n < (1u << 20)) return absl::StrFormat("%.1f KiB", static_cast<double>(n) / 1024);
  if (n < (1u << 30)) return absl::StrFormat("%.1f MiB", static_cast<double>(n) / (1 << 20));
  return absl::StrFormat("%.1f GiB", static_cast<double>(n) / (1 << 30));
}

std::string Rate(const Value* v) {
  double rate = 0;
  if (v == nullptr || !absl::SimpleAtod(v->text, &rate)) return "-";
  return absl::StrFormat("%.1f", rate);
}

void PrintStatus(const Value& r) {
  std::string reloads = Text(r.Find("reloads"));
  if (uint64_t failed = Count(r.Find("reload_failures")); failed > 0)
    absl::StrAppend(&reloads, " (", failed, " failed)");
  std::string published = Text(r.Find("last_publish"));
  double took = 0;
  if (const Value* t = r.Find("last_publish_seconds");
      t != nullptr && absl::SimpleAtod(t->text, &took))
    absl::StrAppend(&published, absl::StrFormat(" (took %.3f ms)", took * 1000));
  PrintTable({
      {"version", Text(r.Find("version"))},
      {"uptime", Duration(Count(r.Find("uptime_seconds")))},
      {"mode", Text(r.Find("mode"))},
      {"workers", Text(r.Find("workers"))},
      {"listen", Text(r.Find("listen"))},
      {"zones", Text(r.Find("zones"))},
      {"queries", Text(r.Find("queries_total"))},
      {"queries/s", Rate(r.Find("queries_per_second"))},
      {"reloads", reloads},
      {"last publish", published},
  });
}

void PrintZones(const Value& r) {
  std::vector<std::vector<std::string>> rows = {
      {"ZONE", "SERIAL", "SOURCE", "STATE", "NODES", "MEMORY", "FILE"}};
  if (const Value* zones = r.Find("zones"); zones != nullptr && zones->is_array()) {
    for (const Value& z : zones->items)
      rows.push_back({Text(z.Find("name")), Text(z.Find("serial")), Text(z.Find("source")),
                      Text(z.Find("state")), Text(z.Find("nodes")),
                      Bytes(Count(z.Find("memory_bytes"))), Text(z.Find("file"))});
  }
  if (rows.size() == 1) {
    std::printf("no zones\n");
    return;
  }
  PrintTable(rows);
}

void PrintSources(const Value& r) {
  std::printf("zone %s: %s, serial %s, active source %s\n", Text(r.Find("zone")).c_str(),
              Text(r.Find("state")).c_str(), Text(r.Find("serial")).c_str(),
              Text(r.Find("active_source")).empty() ? "none" : Text(r.Find("active_source")).c_str());
  if (!Text(r.Find("pinned")).empty() && Text(r.Find("pinned")) != "-")
    std::printf("pinned to %s by the operator\n", Text(r.Find("pinned")).c_str());
  if (!Text(r.Find("last_swap_reason")).empty())
    std::printf("%s swaps; last at %s: %s\n", Text(r.Find("swaps")).c_str(), Text(r.Find("last_swap")).c_str(),
                Text(r.Find("last_swap_reason")).c_str());
  std::vector<std::vector<std::string>> rows = {{"SOURCE", "ADDRESS", "STATE", "ACTIVE", "SERIAL", "PROBE",
                                                 "LAST REFRESH", "EXPIRES", "LAST TRANSFER", "LAST ERROR"}};
  if (const Value* sources = r.Find("sources"); sources != nullptr && sources->is_array()) {
    for (const Value& s : sources->items) {
      std::string error = Text(s.Find("last_error"));
      if (error.empty() || error == "-") error = Text(s.Find("probe_error"));
      rows.push_back({Text(s.Find("name")), Text(s.Find("address")), Text(s.Find("state")),
                      Text(s.Find("active")), Text(s.Find("has_copy")) == "yes" ? Text(s.Find("serial")) : "-",
                      Text(s.Find("probe_latency_ms")) + " ms", Text(s.Find("last_refresh")),
                      Text(s.Find("expires")), Text(s.Find("last_transfer")), error});
    }
  }
  PrintTable(rows);
}

void PrintPool(const Value& r) {
  if (const Value* m = r.Find("message"); m != nullptr) {
    std::printf("%s\n", Text(m).c_str());
    return;
  }
  std::printf("pool %s: policy %s, check %s\n", Text(r.Find("pool")).c_str(), Text(r.Find("policy")).c_str(),
              Text(r.Find("check")).c_str());
  std::vector<std::vector<std::string>> rows = {
      {"MEMBER", "ADDRESS", "WEIGHT", "STATE", "CHECKS", "OVERRIDE", "LATENCY", "ANSWERS", "LAST ERROR"}};
  if (const Value* members = r.Find("members"); members != nullptr && members->is_array()) {
    for (const Value& m : members->items)
      rows.push_back({Text(m.Find("name")), Text(m.Find("address")), Text(m.Find("weight")),
                      Text(m.Find("state")), Text(m.Find("healthy")) == "yes" ? "passing" : "failing",
                      Text(m.Find("override")), Text(m.Find("latency_ms")) + " ms", Text(m.Find("answers")),
                      Text(m.Find("error"))});
  }
  PrintTable(rows);
}

// One row per counter (responses by rcode flattened), one column per worker.
void PrintStats(const Value& r) {
  static const Value kEmpty = Value::Object();
  const Value* total = r.Find("total");
  if (total == nullptr || !total->is_object()) total = &kEmpty;
  std::vector<const Value*> columns = {total};
  std::vector<std::string> header = {"COUNTER", "TOTAL"};
  if (const Value* workers = r.Find("workers"); workers != nullptr && workers->is_array()) {
    for (const Value& w : workers->items) {
      const Value* c = w.Find("counters");
      columns.push_back(c != nullptr ? c : &kEmpty);
      header.push_back(Text(w.Find("name")));
    }
  }
  std::vector<std::vector<std::string>> rows = {header};
  auto add_row = [&](const std::string& label, auto&& pick) {
    std::vector<std::string> row = {label};
    for (const Value* c : columns) row.push_back(absl::StrCat(Count(pick(*c))));
    rows.push_back(std::move(row));
  };
  for (const auto& [key, value] : total->members) {
    if (!value.is_object()) {
      add_row(key, [&key = key](const Value& c) { return c.Find(key); });
      continue;
    }
    for (const auto& [sub, unused] : value.members)
      add_row(absl::StrCat(key, " ", sub), [&key = key, &sub = sub](const Value& c) {
        const Value* group = c.Find(key);
        return group != nullptr ? group->Find(sub) : nullptr;
      });
  }
  std::printf("queries/s  %s\n\n", Rate(r.Find("queries_per_second")).c_str());
  PrintTable(rows);
  // dpdk mode: the ports' own counters, one row per port.
  const Value* ports = r.Find("ports");
  if (ports == nullptr || !ports->is_array() || ports->items.empty()) return;
  static const char* const kPortColumns[] = {"rx_packets", "tx_packets", "rx_missed",
                                             "rx_errors",  "rx_no_mbuf", "tx_errors"};
  std::vector<std::vector<std::string>> port_rows = {{"PORT"}};
  for (const char* c : kPortColumns) port_rows[0].push_back(c);
  for (const Value& p : ports->items) {
    std::vector<std::string> row = {Text(p.Find("name"))};
    for (const char* c : kPortColumns) row.push_back(absl::StrCat(Count(p.Find(c))));
    port_rows.push_back(std::move(row));
  }
  std::printf("\n");
  PrintTable(port_rows);
}

// For responses without a dedicated layout: a message, or key/value rows.
void PrintGeneric(const Value& r) {
  if (const Value* m = r.Find("message"); m != nullptr && m->is_string()) {
    std::printf("%s\n", m->text.c_str());
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& [key, value] : r.members)
    if (key != "ok") rows.push_back({key, Text(&value)});
  PrintTable(rows);
}

void Print(const std::string& command, const Value& r) {
  if (command == "status") return PrintStatus(r);
  if (command == "zones") return PrintZones(r);
  if (command == "sources") return PrintSources(r);
  if (command == "pool") return PrintPool(r);
  if (command == "stats") return PrintStats(r);
  PrintGeneric(r);
}

std::string RequestLine(const std::vector<std::string>& words) {
  Value args = Value::Array();
  for (size_t i = 1; i < words.size(); ++i) args.Push(Value::String(words[i]));
  Value request =
      Value::Object().Set("command", Value::String(words[0])).Set("args", std::move(args));
  return tandem::control::json::Serialize(request) + "\n";
}

int Run(const Options& o) {
  auto raw = tandem::control::ControlExchange(o.socket, RequestLine(o.words), o.timeout);
  if (!raw.ok()) {
    std::fprintf(stderr, "tandemctl: %s\n", std::string(raw.status().message()).c_str());
    return 1;
  }
  auto response = tandem::control::json::Parse(*raw);
  if (!response.ok() || !response->is_object()) {
    std::string why =
        response.ok() ? "not a JSON object" : std::string(response.status().message());
    std::fprintf(stderr, "tandemctl: malformed response from tandemd: %s\n", why.c_str());
    return 1;
  }
  const Value* ok = response->Find("ok");
  bool success = ok != nullptr && ok->type == Value::Type::kBool && ok->boolean;
  if (o.json) std::printf("%s\n", std::string(absl::StripTrailingAsciiWhitespace(*raw)).c_str());
  if (!success) {
    std::fprintf(stderr, "tandemctl: %s\n", Text(response->Find("error")).c_str());
    return 1;
  }
  if (!o.json) Print(o.words[0], *response);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (int status = ParseArgs(argc, argv, &options); status >= 0) return status;
  if (int status = CheckCommand(options.words); status >= 0) return status;
  return Run(options);
}
