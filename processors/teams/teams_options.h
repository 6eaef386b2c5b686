#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "processors/teams/team_limits.h"
#include "state/status.h"

namespace cm::teams {

// The node that reads the commands topic. The builder lets one source read a topic, and the
// usage application (added before teams in `cmstream run --topology cloudmatrix`) owns that
// source, so the teams processor hangs off it as a second child. `own_source` makes the teams
// topology add that source itself (a test of teams alone on the test driver).
inline constexpr char kCommandsSourceNode[] = "usage-source";

class MailSender;

// Invitation emails (README "Teams", "Invitation emails"): with a sender, every invitation made
// (not replayed) gets an entry in the teams-mail-outbox store, and a wall-clock punctuation
// hands due entries to the sender and records what became of them.
struct InvitationMailOptions {
  std::shared_ptr<MailSender> sender;  // null: no email, the outbox is not written
  std::string from = "cmstream <no-reply@localhost>";
  std::string public_url;  // base of the accept link, e.g. https://teams.example.com
  // An invitation whose email has not gone out this long after it was made is given up.
  int64_t max_age_ms = 24LL * 3600 * 1000;
  int64_t check_interval_ms = 1000;  // how often due entries are handed over
  int64_t backoff_base_ms = 1000;    // retry n waits base·2^n ...
  int64_t backoff_max_ms = 600'000;  // ... at most this (then less up to 20% of jitter)
};

struct TeamsOptions {
  std::string commands_topic = "cloudmatrix.commands";
  std::string team_events_topic = "cloudmatrix.team-events";
  std::string source_node = kCommandsSourceNode;
  bool own_source = false;
  // A hierarchy has at most this many levels (a root team is level 1), as documented.
  int max_depth = 32;
  // Invitations expire this long after they are made unless the request says otherwise.
  int64_t invitation_ttl_ms = 7LL * 24 * 3600 * 1000;
  // How often the expiry punctuation looks for invitations past their expiry (wall clock).
  int64_t expiry_check_interval_ms = 1000;
  // A command's result answers its retries (same Idempotency-Key) for this long.
  int64_t command_result_retention_ms = 7LL * 24 * 3600 * 1000;
  size_t max_id_bytes = 128;
  // The per-organization team limit (429 quota_exceeded beyond it); null: no limit. Shared by
  // the copies of the options each processor instance holds; immutable.
  std::shared_ptr<const TeamLimits> team_limits;
  size_t max_json_depth = 32;
  // The --cluster-secret: with it, invitation tokens derive from it (invitation_token.h), so
  // the mailer can rebuild them; without it they are random and cannot be emailed.
  std::string invitation_secret;
  InvitationMailOptions mail;

  state::Status Validate() const {
    if (commands_topic.empty() || team_events_topic.empty() || source_node.empty())
      return state::Status::InvalidArgument("teams: topics and the source node must be named");
    if (max_depth < 1 || max_depth > 1000)
      return state::Status::InvalidArgument("teams: max_depth must be 1..1000");
    if (invitation_ttl_ms <= 0 || expiry_check_interval_ms <= 0 || command_result_retention_ms <= 0)
      return state::Status::InvalidArgument(
          "teams: invitation and retention times must be positive");
    if (mail.sender) {
      if (invitation_secret.empty())
        return state::Status::InvalidArgument(
            "invitation emails (--smtp-url) need --cluster-secret: the mailer rebuilds each "
            "invitation's token from it, as the token itself is never stored");
      if (mail.public_url.empty() || mail.from.empty())
        return state::Status::InvalidArgument(
            "invitation emails need a public URL for the accept link and a From address");
      if (mail.max_age_ms <= 0 || mail.check_interval_ms <= 0 || mail.backoff_base_ms <= 0 ||
          mail.backoff_max_ms < mail.backoff_base_ms)
        return state::Status::InvalidArgument("teams: invitation mail times must be positive");
    }
    return state::Status::OK();
  }
};

}  // namespace cm::teams
