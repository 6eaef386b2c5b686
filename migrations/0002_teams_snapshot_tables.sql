-- Snapshot tables of the teams application (processors/teams/teams_snapshot_schema.h), written
-- by the same snapshotter as usage's: each row carries the task whose stores hold it, and a
-- task's snapshot replaces that task's rows in one transaction with snapshot_tasks.

-- teams-teams: one row per team (the seeds' Team). parent_team_id NULL for a root.
CREATE TABLE teams_teams (
  organization_id text NOT NULL,
  team_id         text NOT NULL,
  name            text NOT NULL,
  description     text,
  parent_team_id  text,
  visibility      text NOT NULL CHECK (visibility IN ('public', 'private', 'secret')),
  settings        jsonb NOT NULL,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  created_by      text,
  task_id         text NOT NULL,
  PRIMARY KEY (organization_id, team_id)
);
CREATE INDEX teams_teams_parent ON teams_teams (organization_id, parent_team_id);
CREATE INDEX teams_teams_task ON teams_teams (task_id);

-- teams-members: direct memberships (the seeds' TeamMember).
CREATE TABLE teams_memberships (
  organization_id text NOT NULL,
  team_id         text NOT NULL,
  user_id         text NOT NULL,
  role            text NOT NULL CHECK (role IN ('member', 'admin', 'owner')),
  joined_at       timestamptz NOT NULL,
  added_by        text,
  task_id         text NOT NULL,
  PRIMARY KEY (organization_id, team_id, user_id)
);
CREATE INDEX teams_memberships_user ON teams_memberships (user_id);
CREATE INDEX teams_memberships_task ON teams_memberships (task_id);

-- teams-invitations: the token's SHA-256 (hex) only; the token itself is stored nowhere.
CREATE TABLE teams_invitations (
  organization_id text NOT NULL,
  invitation_id   text NOT NULL,
  team_id         text NOT NULL,
  email           text NOT NULL,
  role            text NOT NULL,
  status          text NOT NULL CHECK (status IN ('pending', 'accepted', 'expired', 'revoked')),
  invited_by      text,
  created_at      timestamptz NOT NULL,
  expires_at      timestamptz NOT NULL,
  token_sha256    text NOT NULL,
  task_id         text NOT NULL,
  PRIMARY KEY (organization_id, invitation_id)
);
CREATE INDEX teams_invitations_task ON teams_invitations (task_id);

-- teams-permissions: the materialized effective permissions, one row per user and team where
-- the user holds a role there or above: the deciding role, the team that grants it, its
-- permissions, and every grant on the path from the root ([{teamId, role}]).
CREATE TABLE teams_permissions (
  organization_id text NOT NULL,
  team_id         text NOT NULL,
  user_id         text NOT NULL,
  role            text NOT NULL,
  granted_by_team text NOT NULL,
  permissions     jsonb NOT NULL,
  grants          jsonb NOT NULL,
  task_id         text NOT NULL,
  PRIMARY KEY (organization_id, team_id, user_id)
);
CREATE INDEX teams_permissions_task ON teams_permissions (task_id);
