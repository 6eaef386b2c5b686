-- Snapshot tables of the webhooks application (processors/webhooks/webhooks_snapshot_schema.h),
-- written by the same snapshotter as usage's and teams': each row carries the task whose stores
-- hold it, and a task's snapshot replaces that task's rows in one transaction with
-- snapshot_tasks.
--
-- The endpoints' signing secrets are stored in no column of any table: they are shown once,
-- when made or rotated, and stay in the changelog and RocksDB.

-- webhooks-endpoints: one row per endpoint (the seeds' Webhook, as GET /v1/webhooks/{id}
-- shows it), with its delivery stats and the circuit breaker's state. disabled_reason is set
-- when the endpoint disabled itself (410 Gone).
CREATE TABLE webhooks_endpoints (
  organization_id          text NOT NULL,
  webhook_id               text NOT NULL,
  url                      text NOT NULL,
  events                   jsonb NOT NULL,  -- ["usage.*", "team.created"]; "*" is every event
  active                   boolean NOT NULL,
  description              text,
  headers                  jsonb NOT NULL,  -- sent with every delivery
  created_by               text,
  created_at               timestamptz NOT NULL,
  updated_at               timestamptz NOT NULL,
  disabled_reason          text,
  circuit_state            text NOT NULL CHECK (circuit_state IN ('closed', 'open', 'half_open')),
  total_deliveries         bigint NOT NULL,  -- attempts with an outcome, successful or not
  successful_deliveries    bigint NOT NULL,
  failed_deliveries        bigint NOT NULL,
  average_response_time_ms double precision NOT NULL,
  last_delivery_at         timestamptz,
  last_delivery_status     text,
  task_id                  text NOT NULL,
  PRIMARY KEY (organization_id, webhook_id)
);
CREATE INDEX webhooks_endpoints_task ON webhooks_endpoints (task_id);

-- webhooks-deliveries: one row per delivery of an event to an endpoint (the seeds' Delivery):
-- its status, the latest attempt's outcome, and when it is next due while pending. Deliveries
-- outlive their endpoint's deletion (cancelled), so webhook_id has no foreign key.
CREATE TABLE webhooks_deliveries (
  organization_id  text NOT NULL,
  delivery_id      text NOT NULL,
  webhook_id       text NOT NULL,
  event_id         text NOT NULL,
  event_type       text NOT NULL,
  status           text NOT NULL
    CHECK (status IN ('pending', 'in_progress', 'succeeded', 'failed', 'cancelled')),
  attempt_number   integer NOT NULL,  -- attempts made; 0 before the first
  scheduled_at     timestamptz,
  attempted_at     timestamptz,
  response_status  integer,           -- NULL when the latest attempt got no HTTP answer
  response_time_ms bigint,
  error_class      text,              -- http_5xx, timeout, connection, ... (README "Webhooks")
  error_message    text,
  created_at       timestamptz NOT NULL,
  finished_at      timestamptz,       -- once succeeded, failed or cancelled
  task_id          text NOT NULL,
  PRIMARY KEY (organization_id, delivery_id)
);
CREATE INDEX webhooks_deliveries_webhook
  ON webhooks_deliveries (organization_id, webhook_id, created_at);
CREATE INDEX webhooks_deliveries_event ON webhooks_deliveries (organization_id, event_id);
CREATE INDEX webhooks_deliveries_task ON webhooks_deliveries (task_id);

-- The attempts of each delivery, one row per entry of its `attempts` (the latest 50 the store
-- keeps): when, the HTTP status if any, how long, and why it failed.
CREATE TABLE webhooks_attempts (
  organization_id  text NOT NULL,
  delivery_id      text NOT NULL,
  attempt_number   integer NOT NULL,
  webhook_id       text NOT NULL,
  attempted_at     timestamptz NOT NULL,
  response_status  integer,
  response_time_ms bigint NOT NULL,
  success          boolean NOT NULL,
  error_class      text,
  error_message    text,
  task_id          text NOT NULL,
  PRIMARY KEY (organization_id, delivery_id, attempt_number)
);
CREATE INDEX webhooks_attempts_webhook
  ON webhooks_attempts (organization_id, webhook_id, attempted_at);
CREATE INDEX webhooks_attempts_task ON webhooks_attempts (task_id);
