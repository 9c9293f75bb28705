-- payments's first tables on PostgreSQL: the entities' tables as they were on 2026-11-25 (with the
-- columns that later migrations add where they are missing). Never edit this file: a change of
-- schema is a migration of its own.
CREATE TABLE "orders" (
  "id" varchar NOT NULL PRIMARY KEY,
  "provider_order_id" varchar NOT NULL UNIQUE,
  "receipt" varchar NOT NULL,
  "currency" varchar NOT NULL,
  "amount_minor" bigint NOT NULL,
  "platform_fee_minor" bigint NOT NULL,
  "theatre_id" varchar NOT NULL,
  "captured_minor" bigint NOT NULL,
  "refunded_minor" bigint NOT NULL,
  "status" varchar NOT NULL,
  "created_at" timestamp with time zone NOT NULL,
  "updated_at" timestamp with time zone NOT NULL,
  "closed_at" timestamp with time zone,
  "close_reason" varchar
);

CREATE TABLE "payment_attempts" (
  "provider_payment_id" varchar NOT NULL PRIMARY KEY,
  "order_id" varchar NOT NULL,
  "status" varchar NOT NULL,
  "failure_reason" varchar NOT NULL,
  "updated_at" timestamp with time zone NOT NULL
);

CREATE TABLE "refunds" (
  "id" varchar NOT NULL PRIMARY KEY,
  "order_id" varchar NOT NULL,
  "provider_refund_id" varchar NOT NULL,
  "amount_minor" bigint NOT NULL,
  "reason" varchar NOT NULL,
  "created_at" timestamp with time zone NOT NULL
);

CREATE TABLE "ledger_entries" (
  "id" varchar NOT NULL PRIMARY KEY,
  "transaction_id" varchar NOT NULL,
  "order_id" varchar NOT NULL,
  "account" varchar NOT NULL,
  "currency" varchar NOT NULL,
  "amount_minor" bigint NOT NULL,
  "kind" varchar NOT NULL,
  "created_at" timestamp with time zone NOT NULL
);

CREATE TABLE "webhooks_received" (
  "event_id" varchar NOT NULL PRIMARY KEY,
  "event" varchar NOT NULL,
  "signature_valid" bool NOT NULL,
  "body" text NOT NULL,
  "outcome" varchar NOT NULL,
  "received_at" timestamp with time zone NOT NULL
);

CREATE TABLE IF NOT EXISTS "outbox" (
  "id" varchar NOT NULL PRIMARY KEY,
  "topic" varchar NOT NULL,
  "aggregate_id" varchar NOT NULL,
  "payload" text NOT NULL,
  "created_at" timestamp with time zone NOT NULL,
  "published_at" timestamp with time zone
);

CREATE TABLE "mock_provider_orders" (
  "id" varchar NOT NULL PRIMARY KEY,
  "receipt" varchar NOT NULL,
  "currency" varchar NOT NULL,
  "amount_minor" bigint NOT NULL,
  "created_at" timestamp with time zone NOT NULL
);

CREATE TABLE "mock_provider_payments" (
  "id" varchar NOT NULL PRIMARY KEY,
  "order_id" varchar NOT NULL,
  "currency" varchar NOT NULL,
  "amount_minor" bigint NOT NULL,
  "status" varchar NOT NULL,
  "error_description" varchar NOT NULL,
  "refunded_minor" bigint NOT NULL,
  "updated_at" timestamp with time zone NOT NULL
);

CREATE TABLE IF NOT EXISTS "idempotency_keys" (
  "scope" varchar NOT NULL,
  "request_id" varchar NOT NULL,
  "fingerprint" varchar NOT NULL,
  "result" text NOT NULL,
  "created_at" timestamp with time zone NOT NULL,
  CONSTRAINT "pk-idempotency_keys" PRIMARY KEY ("scope", "request_id")
);
