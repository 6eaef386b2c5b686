#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "processors/teams/invitation_mailer.h"
#include "processors/teams/roles.h"
#include "processors/teams/team_graph.h"
#include "processors/teams/teams_options.h"
#include "topology/processor/command_results.h"
#include "topology/processor/processor.h"

namespace cm::teams {

inline constexpr char kTeamsProcessorNode[] = "teams-processor";
inline constexpr char kTeamEventsSinkNode[] = "teams-events-sink";
inline constexpr char kInvitationTimersStore[] = "teams-invitation-timers";
// Memberships re-keyed by user into the user index (user_teams_processor.h).
inline constexpr char kUserIndexSinkNode[] = "teams-user-index-sink";

// What a permission check answers: allowed or not, and why (the team and role that grant it,
// or why nothing does).
struct PermissionCheck {
  bool allowed = false;
  std::string reason;
  std::optional<Grant> grant;
};
// Decided from the user's materialized grants in `team` (TeamGraph::MaterializedGrants, one
// point lookup).
PermissionCheck CheckPermission(const Grants& grants, const std::string& team,
                                const std::string& user, const std::string& permission);

// Applies teams.* commands of cloudmatrix.commands (other records are ignored: the usage
// processor reads the same source and reports malformed commands) to the stores of
// teams_stores.h, keeps the materialized grants in step with every membership, role, move
// and delete, and sends one event per change to cloudmatrix.team-events in the same
// transaction. Its parts are in files by concern: teams_processor.cpp (dispatch, checks,
// events), _teams (lifecycle and hierarchy), _members, _invitations, and _grants (the
// materialized permissions). Every decision follows from the command and the stores, so a replay
// rebuilds the same state; the invitation expiry punctuation is the one wall-clock input.
class TeamsProcessor final : public topology::Processor {
 public:
  explicit TeamsProcessor(std::shared_ptr<const TeamsOptions> options);
  void Init(topology::ProcessorContext& context) override;
  void Process(const topology::Record& record) override;

 private:
  struct Outcome {
    int status = 200;
    nlohmann::json body;
  };
  struct Command {
    std::string type;
    std::string id;
    std::string org;
    std::string actor;
    int64_t now = 0;
    const nlohmann::json* fields = nullptr;
  };

  Outcome Apply(const Command& c);
  Outcome CreateTeam(const Command& c);
  Outcome UpdateTeam(const Command& c);
  Outcome DeleteTeam(const Command& c);
  Outcome AddMember(const Command& c);
  Outcome RemoveMember(const Command& c);
  Outcome UpdateMemberRole(const Command& c);
  Outcome MoveTeam(const Command& c);
  Outcome CreateInvitation(const Command& c);
  Outcome AcceptInvitation(const Command& c);
  Outcome RevokeInvitation(const Command& c);

  // The 403 body when `actor` lacks `permission` in `team`, else nullopt.
  std::optional<nlohmann::json> Require(const Command& c, const std::string& team,
                                        const std::string& permission);
  // Loads a team of the command's organization: nullopt and a 404/422 outcome otherwise.
  std::optional<nlohmann::json> LoadTeam(const Command& c, const std::string& field,
                                         const std::string& team, Outcome& error);

  // Store primitives; each keeps the materialized grants exact.
  void SetRole(const std::string& org, const std::string& team, const std::string& user,
               std::optional<Role> role, const nlohmann::json& membership);
  void Reparent(const std::string& org, nlohmann::json team,
                const std::optional<std::string>& new_parent, int64_t now);
  void RemoveTeamRecord(const std::string& org, const std::string& team);
  // Writes a user's grants in a team, sorted by team id; no grants deletes the entry.
  void PutGrants(const std::string& key, Grants grants);

  static nlohmann::json Forbidden(const std::string& message, nlohmann::json details);
  // A membership record: the seeds' TeamMember fields.
  static nlohmann::json MembershipRecord(const std::string& team, const std::string& user,
                                         Role role, const std::string& joined_at,
                                         const std::string& added_by);

  void Emit(const Command& c, const std::string& type, const std::string& subject,
            nlohmann::json data);
  // Queues the user index's copy of a membership (nullopt: the user left the team).
  void IndexMembership(const std::string& org, const std::string& team, const std::string& user,
                       const std::optional<nlohmann::json>& membership);
  // The wall-clock punctuation: expires invitations past their expiry and old command results.
  void Maintain(int64_t now);
  void ExpireInvitations(int64_t now);

  std::shared_ptr<const TeamsOptions> options_;
  topology::ProcessorContext* context_ = nullptr;
  state::KeyValueStore* teams_ = nullptr;
  state::KeyValueStore* members_ = nullptr;
  state::KeyValueStore* permissions_ = nullptr;
  state::KeyValueStore* invitations_ = nullptr;
  std::optional<topology::CommandResults> results_;
  state::TimerStore* timers_ = nullptr;
  std::unique_ptr<TeamGraph> graph_;
  std::unique_ptr<InvitationMailer> mailer_;  // invitation emails (a no-op without a sender)
  // Sent once the command succeeded, dropped when it is refused.
  std::vector<topology::Record> pending_events_;
  std::vector<topology::Record> pending_index_;
};

}  // namespace cm::teams
