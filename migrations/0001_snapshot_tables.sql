-- Snapshot tables of the usage application (DESIGN.md §8). `cmstream migrate` runs this file
-- with search_path set to the target schema, in one transaction.
--
-- Every snapshot table has `task_id`: the stream task ("0_3") whose stores hold the row. A
-- full snapshot of a task replaces exactly that task's rows.

-- One row per stream task: the changelog offsets (store -> next offset) that the task's rows
-- in every table reflect, written in the same transaction as the rows.
CREATE TABLE snapshot_tasks (
  task_id           text PRIMARY KEY,
  changelog_offsets jsonb NOT NULL,
  snapshotted_at    timestamptz NOT NULL DEFAULT now()
);

-- usage-aggregates: one row per metric, granularity, bucket and dimension group. `value` is
-- the figure GET /v1/usage/orgs/{org}/metrics reports for the bucket (count, sum, the
-- HyperLogLog estimate, max or latest); dimension_key is '' for the ungrouped figure, else
-- name=value pairs joined by '&' (usage::DimensionKey).
CREATE TABLE usage_aggregates (
  organization_id text NOT NULL,
  metric_type     text NOT NULL,
  granularity     text NOT NULL CHECK (granularity IN ('minute', 'hour', 'day', 'month')),
  bucket_start    timestamptz NOT NULL,
  dimension_key   text NOT NULL,
  value           double precision NOT NULL,
  events          bigint NOT NULL,       -- events that contributed
  dimensions      jsonb NOT NULL,        -- {"userId": "alice"}; {} when ungrouped
  aggregation     text NOT NULL,         -- count | sum | unique_count | max | latest
  task_id         text NOT NULL,
  PRIMARY KEY (organization_id, metric_type, granularity, bucket_start, dimension_key)
);
-- Time-range queries per organization across metrics; the primary key serves them per metric.
CREATE INDEX usage_aggregates_org_time ON usage_aggregates (organization_id, granularity, bucket_start);
CREATE INDEX usage_aggregates_task ON usage_aggregates (task_id);

-- usage-totals: running totals per billing period (scope 'period') and all time (scope
-- 'lifetime', period_start '-infinity'): the `used` figure of the quota routes.
CREATE TABLE usage_totals (
  organization_id text NOT NULL,
  metric_type     text NOT NULL,
  period_start    timestamptz NOT NULL,
  scope           text NOT NULL CHECK (scope IN ('period', 'lifetime')),
  value           double precision NOT NULL,
  events          bigint NOT NULL,
  task_id         text NOT NULL,
  PRIMARY KEY (organization_id, metric_type, period_start)
);
CREATE INDEX usage_totals_org_period ON usage_totals (organization_id, period_start);
CREATE INDEX usage_totals_task ON usage_totals (task_id);

-- usage-orgs: an organization's plan and billing settings.
CREATE TABLE usage_org_settings (
  organization_id     text PRIMARY KEY,
  plan                text,               -- the latest plan change; NULL: the catalog default
  plan_effective_from timestamptz,
  billing_anchor_day  integer NOT NULL,
  settings            jsonb NOT NULL,     -- plan history, anchor day, rollup marks
  task_id             text NOT NULL
);
CREATE INDEX usage_org_settings_task ON usage_org_settings (task_id);

-- usage-alerts, subscriptions: POST /v1/usage/orgs/{org}/alerts.
CREATE TABLE usage_alert_subscriptions (
  organization_id text NOT NULL,
  metric_type     text NOT NULL,
  subscription_id text NOT NULL,
  subscription    jsonb NOT NULL,         -- thresholds, notification channels, createdAt
  task_id         text NOT NULL,
  PRIMARY KEY (organization_id, metric_type, subscription_id)
);
CREATE INDEX usage_alert_subscriptions_task ON usage_alert_subscriptions (task_id);

-- usage-alerts, fired markers: one alert per subscription, threshold and period.
CREATE TABLE usage_fired_alerts (
  organization_id text NOT NULL,
  subscription_id text NOT NULL,
  threshold       double precision NOT NULL,  -- percent of the limit
  period_start    timestamptz NOT NULL,
  alert_id        text NOT NULL,
  task_id         text NOT NULL,
  PRIMARY KEY (organization_id, subscription_id, threshold, period_start)
);
CREATE INDEX usage_fired_alerts_org_period ON usage_fired_alerts (organization_id, period_start);
CREATE INDEX usage_fired_alerts_task ON usage_fired_alerts (task_id);
