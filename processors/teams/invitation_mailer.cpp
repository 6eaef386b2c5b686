#include "processors/teams/invitation_mailer.h"

#include <algorithm>
#include <chrono>

#include "processors/teams/invitation_token.h"
#include "processors/teams/mail_sender.h"
#include "processors/teams/teams_commands.h"
#include "processors/teams/teams_stores.h"
#include "state/key_codec.h"
#include "topology/common/backoff.h"
#include "topology/common/crypto.h"
#include "topology/common/log.h"

namespace cm::teams {

using nlohmann::json;
using topology::Log;
using topology::LogLevel;

namespace {

constexpr size_t kMaxHandOversPerPunctuation = 100;

// Control characters would end a header line early (or start another): a team name goes into
// the subject, so they become spaces.
std::string OneLine(std::string text) {
  for (char& ch : text)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = ' ';
  return text;
}

// An address SMTP and a To header can carry as it is: no spaces, controls, brackets or commas.
bool UsableAddress(const std::string& address) {
  if (address.empty() || address.size() > 254) return false;
  for (unsigned char ch : address)
    if (ch <= 0x20 || ch == 0x7f || ch == '<' || ch == '>' || ch == ',' || ch == '"' || ch == '(' ||
        ch == ')' || ch == ';' || ch == '\\')
      return false;
  const size_t at = address.rfind('@');
  return at != std::string::npos && at != 0 && at + 1 < address.size();
}

}  // namespace

InvitationMailer::InvitationMailer(topology::ProcessorContext& context,
                                   std::shared_ptr<const TeamsOptions> options)
    : context_(context), options_(std::move(options)) {
  outbox_ = &context.GetKeyValueStore(kMailOutboxStore);
  timers_ = &context.GetTimerStore(kMailTimersStore);
  teams_ = &context.GetKeyValueStore(kTeamsStore);
  if (!enabled()) return;
  context.Schedule(std::chrono::milliseconds(options_->mail.check_interval_ms),
                   topology::PunctuationType::kWallClockTime,
                   [this](int64_t now) { Punctuate(now); });
}

std::string InvitationMailer::OutboxKey(const std::string& org, const std::string& invitation_id) {
  std::string key(1, 'o');
  state::AppendLengthPrefixed(key, org);
  state::AppendLengthPrefixed(key, invitation_id);
  return key;
}

int64_t InvitationMailer::RetryDelayMs(const InvitationMailOptions& o, int attempts,
                                       const std::string& key) {
  return topology::ExponentialBackoffMs(o.backoff_base_ms, o.backoff_max_ms, attempts, 0.2, key);
}

void InvitationMailer::Put(const std::string& key, const json& entry) {
  outbox_->Put(key, entry.dump());
}

void InvitationMailer::Invited(const json& inv, const std::string& nonce, int64_t now_ms) {
  if (!enabled() || nonce.empty() || context_.Replaying()) return;
  const std::string org = inv.value("organizationId", "");
  const std::string id = inv.value("id", "");
  const std::string team = inv.value("teamId", "");
  std::string team_name = team;
  if (auto stored = teams_->Get(keys::TeamKey(org, team))) {
    json t = json::parse(*stored, nullptr, false);
    if (t.is_object()) team_name = t.value("name", team);
  }
  const std::string key = OutboxKey(org, id);
  json entry = {{"organizationId", org},
                {"invitationId", id},
                {"teamId", team},
                {"teamName", team_name},
                {"email", inv.value("email", "")},
                {"role", inv.value("role", "")},
                {"invitedBy", inv.value("invitedBy", "")},
                {"message", inv.value("message", json())},
                {"createdAtMs", now_ms},
                {"expiresAt", inv.value("expiresAt", "")},
                {"nonce", nonce},
                {"attempts", 0},
                {"nextAttemptAt", now_ms},
                {"state", "pending"},
                {"lastError", json()}};
  if (!UsableAddress(entry["email"].get<std::string>())) {
    entry["state"] = "failed";
    entry["lastError"] = "the address cannot be used in an email header";
    Put(key, entry);
    return;
  }
  Put(key, entry);
  // Due at once (not at the record's time, which may run ahead of this machine's clock).
  timers_->Schedule(key, 0, "");
}

void InvitationMailer::Closed(const std::string& org, const std::string& invitation_id,
                              const std::string& why) {
  if (!enabled()) return;
  const std::string key = OutboxKey(org, invitation_id);
  auto stored = outbox_->Get(key);
  if (!stored) return;
  json entry = json::parse(*stored, nullptr, false);
  if (!entry.is_object() || entry.value("state", "") != "pending") return;
  // An email already with the sender may still go out; its result is recorded all the same.
  entry["state"] = "cancelled";
  entry["cancelledBecause"] = why;
  Put(key, entry);
  timers_->Cancel(key);
}

void InvitationMailer::Punctuate(int64_t now_ms) {
  if (!enabled()) return;
  Collect(now_ms);
  HandOver(now_ms);
}

void InvitationMailer::Collect(int64_t now_ms) {
  const InvitationMailOptions& o = options_->mail;
  for (auto& result : o.sender->Collect(context_.TaskId())) {
    auto stored = outbox_->Get(result.key);
    if (!stored) continue;
    json entry = json::parse(*stored, nullptr, false);
    if (!entry.is_object()) continue;
    const bool pending = entry.value("state", "") == "pending";
    if (result.status.ok()) {
      entry["state"] = "sent";  // also when cancelled meanwhile: the email did go out
      entry["sentAt"] = FormatTimestamp(now_ms);
      entry["attempts"] = entry.value("attempts", 0) + 1;
      entry["lastError"] = json();
      Put(result.key, entry);
      timers_->Cancel(result.key);
      Log(LogLevel::kInfo, "invitation_email_sent",
          {{"invitationId", entry.value("invitationId", "")}, {"attempts", entry["attempts"]}});
      continue;
    }
    entry["lastError"] = result.status.ToString();
    if (!pending) {
      Put(result.key, entry);
      continue;
    }
    const int attempts = entry.value("attempts", 0) + 1;
    entry["attempts"] = attempts;
    if (now_ms - entry.value("createdAtMs", now_ms) >= o.max_age_ms) {
      entry["state"] = "failed";
      Put(result.key, entry);
      timers_->Cancel(result.key);
      Log(LogLevel::kWarn, "invitation_email_failed",
          {{"invitationId", entry.value("invitationId", "")},
           {"attempts", attempts},
           {"error", entry["lastError"]}});
      continue;
    }
    const int64_t next = now_ms + RetryDelayMs(o, attempts, result.key);
    entry["nextAttemptAt"] = next;
    Put(result.key, entry);
    timers_->Schedule(result.key, next, "");
  }
}

void InvitationMailer::HandOver(int64_t now_ms) {
  const InvitationMailOptions& o = options_->mail;
  bool full = false;
  for (const auto& timer : timers_->PopDue(now_ms, kMaxHandOversPerPunctuation)) {
    if (full) {  // the sender is saturated: try again at the next punctuation
      timers_->Schedule(timer.id, now_ms + o.check_interval_ms, "");
      continue;
    }
    auto stored = outbox_->Get(timer.id);
    if (!stored) continue;
    json entry = json::parse(*stored, nullptr, false);
    if (!entry.is_object() || entry.value("state", "") != "pending") continue;
    if (now_ms - entry.value("createdAtMs", now_ms) >= o.max_age_ms) {
      entry["state"] = "failed";
      if (entry["lastError"].is_null())
        entry["lastError"] = "not sent within the maximum age of an invitation email";
      Put(timer.id, entry);
      continue;
    }
    switch (o.sender->Submit(context_.TaskId(), timer.id, Compose(*options_, entry))) {
      case MailSender::Handover::kAccepted: {
        // The timer stays as a lease: if the process stops before the result is recorded, the
        // entry is due again after the delay a failure would have caused.
        const int attempts = entry.value("attempts", 0) + 1;
        const int64_t lease = std::max(RetryDelayMs(o, attempts, timer.id), o.check_interval_ms);
        entry["nextAttemptAt"] = now_ms + lease;
        Put(timer.id, entry);
        timers_->Schedule(timer.id, now_ms + lease, "");
        break;
      }
      case MailSender::Handover::kBusy:  // still with the sender: its result comes first
        timers_->Schedule(timer.id, now_ms + o.check_interval_ms, "");
        break;
      case MailSender::Handover::kFull:
      case MailSender::Handover::kStopped:
        full = true;
        timers_->Schedule(timer.id, now_ms + o.check_interval_ms, "");
        break;
    }
  }
}

Mail InvitationMailer::Compose(const TeamsOptions& options, const json& entry) {
  const std::string org = entry.value("organizationId", "");
  const std::string id = entry.value("invitationId", "");
  const std::string token =
      DeriveInvitationToken(options.invitation_secret, org, id, entry.value("nonce", ""));
  std::string base = options.mail.public_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::string link = base + "/v1/invitations/" + token + "/accept";
  const std::string team = OneLine(entry.value("teamName", ""));
  const std::string inviter = OneLine(entry.value("invitedBy", ""));
  const std::string role = entry.value("role", "member");

  Mail mail;
  mail.from = options.mail.from;
  mail.to = entry.value("email", "");
  mail.subject = "Invitation to join the team " + team;
  std::string text = inviter + " invited you to join the team \"" + team + "\" as " + role + ".\n";
  if (entry.contains("message") && entry["message"].is_string())
    text += "\nTheir message:\n" + entry["message"].get<std::string>() + "\n";
  text += "\nTo accept, POST to this link with your API key:\n" + link + "\n";
  text +=
      "\nfor example:\n  curl -X POST -H 'Authorization: Bearer <your API key>' '" + link + "'\n";
  text += "\nInvitation token: " + token + "\n";
  text += "The invitation expires at " + entry.value("expiresAt", "") +
          " and works once. If you did not expect it, ignore this email.\n";
  mail.text = std::move(text);
  mail.message_id = id + "@cmstream";
  mail.headers = {{"X-Cmstream-Invitation", id}};
  return mail;
}

}  // namespace cm::teams
