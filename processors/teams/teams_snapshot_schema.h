#pragma once

#include "topology/processor/snapshot_schema.h"

namespace cm::teams {

// The teams stores as the snapshot tables of migrations/0002_teams_snapshot_tables.sql:
//   teams-teams        -> teams_teams (team records; the name and children indexes are not rows)
//   teams-members      -> teams_memberships
//   teams-invitations  -> teams_invitations (the token's SHA-256 only; the token is nowhere)
//   teams-permissions  -> teams_permissions (the materialized grants with the deciding role and
//                         its permissions: what checkPermission answers)
// The user index, mail outbox, timers and command results are internal and not snapshotted.
topology::SnapshotSchema TeamsSnapshotSchema();

}  // namespace cm::teams
