#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "processors/teams/mail_transport.h"
#include "processors/teams/teams_options.h"
#include "topology/processor/processor.h"

namespace cm::teams {

// teams-mail-outbox  'o' str org str invitationId -> entry JSON {organizationId, invitationId,
//     teamId, teamName, email, role, invitedBy, message, createdAtMs, expiresAt, nonce,
//     attempts, nextAttemptAt, state: pending|sent|failed|cancelled, lastError, sentAt, ...}
// teams-mail-timers (timer store, id = org '\0' invitationId) -> when a pending entry is due
inline constexpr char kMailOutboxStore[] = "teams-mail-outbox";
inline constexpr char kMailTimersStore[] = "teams-mail-timers";

// The invitation emails of one teams task (README "Teams", "Invitation emails"). The teams
// processor tells it what happened to invitations; it keeps an outbox of the emails to send
// in state and, in a wall-clock punctuation, hands due ones to the application's MailSender
// and records the results it collected since the last one. Sending never happens on the
// stream thread, and an outcome changes state only through this punctuation, so the outbox is
// exact across restarts: an email is sent again only when the process stopped between the
// server's acceptance and the commit that records it (README states that window).
class InvitationMailer {
 public:
  // Gets its stores from `context`; with a mail sender configured, schedules its punctuation.
  InvitationMailer(topology::ProcessorContext& context,
                   std::shared_ptr<const TeamsOptions> options);

  bool enabled() const { return options_->mail.sender != nullptr; }

  // A createInvitation was applied: queues its email, unless mail is off, the command carries
  // no nonce (no cluster secret when it was made) or the input is a replay (it was queued the
  // first time).
  void Invited(const nlohmann::json& invitation, const std::string& nonce, int64_t now_ms);
  // The invitation was accepted, revoked or expired: an email not yet sent is cancelled.
  void Closed(const std::string& org, const std::string& invitation_id, const std::string& why);
  // Records the collected results, then hands due entries over (the punctuation; public so
  // tests can drive it).
  void Punctuate(int64_t now_ms);

  // How long a retry waits after `attempts` failures (attempts >= 1): base·2^(attempts-1)
  // capped at the maximum, less up to 20% of jitter derived from the key (deterministic).
  static int64_t RetryDelayMs(const InvitationMailOptions& options, int attempts,
                              const std::string& key);
  // The email of an outbox entry, its token rebuilt from the secret and the entry's nonce.
  static Mail Compose(const TeamsOptions& options, const nlohmann::json& entry);
  static std::string OutboxKey(const std::string& org, const std::string& invitation_id);

 private:
  void Collect(int64_t now_ms);
  void HandOver(int64_t now_ms);
  void Put(const std::string& key, const nlohmann::json& entry);

  topology::ProcessorContext& context_;
  std::shared_ptr<const TeamsOptions> options_;
  state::KeyValueStore* outbox_ = nullptr;
  state::TimerStore* timers_ = nullptr;
  state::KeyValueStore* teams_ = nullptr;
};

}  // namespace cm::teams
