// The request as the handler's stages share it: parsed once, its name lower-cased and
// hashed once, its zone found once. QueryHandler::Answer prepares one request and answers
// it; QueryHandler::AnswerBurst prepares a whole burst, warms the cache for each request's
// lookup, then answers each the same way (burst.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/dns/message.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::dataplane {

struct PreparedQuery {
  dns::QueryVerdict verdict = dns::QueryVerdict::kDrop;
  dns::Query q;
  // With a valid question (kOk, kFormErr, kBadVersion): the question's name, and the
  // deepest zone of the snapshot holding it (null when none does).
  zone::LookupName name;
  const zone::Zone* zone = nullptr;
};

void PrepareQuery(const zone::Snapshot* snapshot, const uint8_t* query, size_t query_len,
                  PreparedQuery* prepared);

}  // namespace tandem::dataplane
