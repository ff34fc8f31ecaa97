// Pools: member health, overrides, the published table.
#include "control/pools.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "control/log.h"
#include "dataplane/address.h"
#include "dataplane/dns/name.h"

namespace tandem::control {
namespace {

MemberCheck::Kind KindOf(const std::string& k) {
  if (k == "tcp") return MemberCheck::Kind::kTcp;
  if (k == "http") return MemberCheck::Kind::kHttp;
  if (k == "https") return MemberCheck::Kind::kHttps;
  if (k == "dns") return MemberCheck::Kind::kDns;
  return MemberCheck::Kind::kNone;
}

uint16_t TypeOf(const std::string& t) {
  if (t == "A") return 1;
  if (t == "NS") return 2;
  if (t == "MX") return 15;
  if (t == "TXT") return 16;
  if (t == "AAAA") return 28;
  return 6;  // SOA
}

int RcodeOf(const std::string& r) {
  if (r == "SERVFAIL") return 2;
  if (r == "NXDOMAIN") return 3;
  if (r == "REFUSED") return 5;
  return 0;
}

// A pooled owner relative to its zone ("www", "@") or absolute ("www.example.com.").
absl::StatusOr<std::string> PooledOwner(const std::string& owner, const std::string& zone) {
  std::string text = owner == "@" ? zone : (!owner.empty() && owner.back() == '.') ? owner
                                                                                  : absl::StrCat(owner, ".", zone);
  return dns::NameFromText(text);
}

}  // namespace

Pools::Pools(const config::Config& cfg, std::function<void()> on_change)
    : cfg_(cfg), on_change_(std::move(on_change)) {}

Pools::~Pools() { Stop(); }

absl::Status Pools::Init() {
  uint16_t next_id = 0;
  monitor_ = std::make_unique<PoolMonitor>([this](size_t i, const CheckResult& r) { OnCheck(i, r); });
  for (size_t p = 0; p < cfg_.pools.size(); ++p) {
    const config::PoolConfig& pc = cfg_.pools[p];
    std::vector<Member> members;
    for (const auto& mc : pc.members) {
      if (next_id >= zone::kMaxPoolMembers)
        return absl::InvalidArgumentError(absl::StrCat(cfg_.path, ":", mc.line, ": more than ",
                                                       zone::kMaxPoolMembers, " pool members in all"));
      Member m;
      m.pool_name = pc.name;
      m.cfg = mc;
      auto prefix = dataplane::ParsePrefix(mc.address);
      if (!prefix) return absl::InvalidArgumentError(absl::StrCat(cfg_.path, ":", mc.line, ": bad address ", mc.address));
      m.v6 = prefix->family == AF_INET6;
      std::memcpy(m.addr, prefix->bytes, 16);
      m.health = Health(pc.check.rise, pc.check.fall);
      m.checked = !pc.check.kind.empty();
      ++next_id;
      members.push_back(std::move(m));
    }
    members_.push_back(std::move(members));
  }
  for (size_t p = 0; p < members_.size(); ++p) {
    const config::PoolCheck& c = cfg_.pools[p].check;
    for (size_t i = 0; i < members_[p].size(); ++i) {
      if (!members_[p][i].checked) continue;
      MemberCheck mc;
      mc.kind = KindOf(c.kind);
      std::string host = members_[p][i].v6 ? absl::StrCat("[", members_[p][i].cfg.address, "]") : members_[p][i].cfg.address;
      mc.target = *dataplane::ParseEndpoint(absl::StrCat(host, ":", c.port));
      mc.path = c.path;
      mc.host = c.host;
      mc.expect = c.expect;
      mc.body = c.body;
      mc.ca_file = c.ca_file;
      mc.dns_name = c.query;
      mc.dns_type = TypeOf(c.query_type);
      mc.dns_rcode = RcodeOf(c.rcode);
      mc.interval = c.interval;
      mc.timeout = c.timeout;
      monitor_->Add(mc);
      monitored_.emplace_back(p, i);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  RebuildLocked();
  return absl::OkStatus();
}

void Pools::Start() {
  if (monitor_ && !monitored_.empty()) monitor_->Start();
}

void Pools::Stop() {
  if (monitor_) monitor_->Stop();
}

void Pools::RebuildLocked() {
  auto set = std::make_shared<zone::PoolSet>();
  uint16_t id = 0;
  for (size_t p = 0; p < members_.size(); ++p) {
    zone::Pool pool;
    const config::PoolConfig& pc = cfg_.pools[p];
    pool.policy = pc.policy == "failover"   ? zone::PoolPolicy::kFailover
                  : pc.policy == "weighted" ? zone::PoolPolicy::kWeighted
                                            : zone::PoolPolicy::kAllHealthy;
    pool.max_answers = static_cast<uint16_t>(pc.max_answers);
    for (const Member& m : members_[p]) {
      zone::PoolMember zm{};
      std::memcpy(zm.addr, m.addr, 16);
      zm.v6 = m.v6;
      zm.up = m.Up();
      zm.weight = static_cast<uint32_t>(m.cfg.weight);
      zm.id = id++;
      pool.members.push_back(zm);
    }
    set->pools().push_back(std::move(pool));
  }
  for (const auto& z : cfg_.zones) {
    for (const auto& pn : z.pooled) {
      for (size_t p = 0; p < cfg_.pools.size(); ++p) {
        if (cfg_.pools[p].name != pn.pool) continue;
        auto owner = PooledOwner(pn.name, z.name);
        if (owner.ok()) set->Bind(*owner, static_cast<uint32_t>(p), pn.ttl);
      }
    }
  }
  set->Finish();
  table_ = std::move(set);
}

void Pools::OnCheck(size_t index, const CheckResult& r) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [p, i] = monitored_[index];
    Member& m = members_[p][i];
    m.latency = r.latency;
    m.error = r.ok ? "" : r.error;
    ++(r.ok ? m.ok : m.failed);
    bool before = m.Up();
    if (!m.health.Record(r.ok)) return;
    if (m.health.up())
      LogInfo("pool ", m.pool_name, " member ", m.cfg.name, " UP after ", cfg_.pools[p].check.rise, " good checks");
    else
      LogWarning("pool ", m.pool_name, " member ", m.cfg.name, " DOWN after ", cfg_.pools[p].check.fall,
                 " failed checks: ", r.error);
    if (m.Up() == before) return;  // an override holds it
    RebuildLocked();
  }
  on_change_();
}

std::shared_ptr<const zone::PoolSet> Pools::Table() const {
  std::lock_guard<std::mutex> lock(mu_);
  return table_;
}

std::vector<PoolStatus> Pools::Status() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PoolStatus> out;
  uint16_t id = 0;
  for (size_t p = 0; p < members_.size(); ++p) {
    PoolStatus ps{cfg_.pools[p].name, cfg_.pools[p].policy,
                  cfg_.pools[p].check.kind.empty() ? "none" : cfg_.pools[p].check.kind, {}};
    for (const Member& m : members_[p]) {
      ps.members.push_back({m.cfg.name, m.cfg.address, id++, static_cast<uint32_t>(m.cfg.weight), m.Up(),
                            m.health.up(), m.override == 0 ? "auto" : m.override > 0 ? "up" : "down",
                            m.latency, m.error, m.ok, m.failed});
    }
    out.push_back(std::move(ps));
  }
  return out;
}

absl::Status Pools::Override(const std::string& pool, const std::string& member, const std::string& state) {
  if (state != "up" && state != "down" && state != "auto")
    return absl::InvalidArgumentError(absl::StrCat("state must be up, down or auto, not '", state, "'"));
  {
    std::lock_guard<std::mutex> lock(mu_);
    Member* found = nullptr;
    bool pool_found = false;
    for (auto& members : members_)
      for (auto& m : members)
        if (m.pool_name == pool) {
          pool_found = true;
          if (m.cfg.name == member || m.cfg.address == member) found = &m;
        }
    if (!pool_found) return absl::NotFoundError(absl::StrCat("no pool ", pool));
    if (found == nullptr) return absl::NotFoundError(absl::StrCat("pool ", pool, " has no member ", member));
    found->override = state == "up" ? 1 : state == "down" ? -1 : 0;
    LogInfo("pool ", pool, " member ", member, ": operator override ", state);
    RebuildLocked();
  }
  on_change_();
  return absl::OkStatus();
}

}  // namespace tandem::control
