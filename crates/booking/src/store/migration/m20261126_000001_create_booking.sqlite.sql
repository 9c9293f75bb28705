-- booking's first tables on SQLite: the entities' tables as they were on 2026-11-25 (with the
-- columns that later migrations add where they are missing). Never edit this file: a change of
-- schema is a migration of its own.
CREATE TABLE "bookings" (
  "id" varchar NOT NULL PRIMARY KEY,
  "code" varchar NOT NULL UNIQUE,
  "user_id" varchar NOT NULL,
  "show_id" varchar NOT NULL,
  "theatre_id" varchar NOT NULL,
  "hold_id" varchar NOT NULL UNIQUE,
  "fencing_token" integer NOT NULL,
  "hold_expires_at" timestamp_with_timezone_text NOT NULL,
  "currency" varchar NOT NULL,
  "total_minor" integer NOT NULL,
  "status" varchar NOT NULL,
  "payment_order_id" varchar,
  "provider_order_id" varchar,
  "payment_deadline" timestamp_with_timezone_text,
  "parked_reason" varchar,
  "created_at" timestamp_with_timezone_text NOT NULL,
  "updated_at" timestamp_with_timezone_text NOT NULL,
  "movie_title" varchar NOT NULL,
  "theatre_name" varchar NOT NULL,
  "screen_name" varchar NOT NULL,
  "show_starts_at" timestamp_with_timezone_text,
  "show_ends_at" timestamp_with_timezone_text,
  "tax_bps" integer NOT NULL,
  "admitted_at" timestamp_with_timezone_text,
  "admitted_by" varchar,
  "refund_minor" integer
);

CREATE TABLE "booking_items" (
  "booking_id" varchar NOT NULL,
  "seat_id" varchar NOT NULL,
  "category_code" varchar NOT NULL,
  "currency" varchar NOT NULL,
  "price_minor" integer NOT NULL,
  "fee_minor" integer NOT NULL,
  "tax_minor" integer NOT NULL,
  CONSTRAINT "pk-booking_items" PRIMARY KEY ("booking_id", "seat_id")
);

CREATE TABLE "booking_status_history" (
  "id" varchar NOT NULL PRIMARY KEY,
  "booking_id" varchar NOT NULL,
  "from_status" varchar,
  "to_status" varchar NOT NULL,
  "cause" varchar NOT NULL,
  "changed_at" timestamp_with_timezone_text NOT NULL
);

CREATE TABLE "saga_steps" (
  "booking_id" varchar NOT NULL,
  "step" varchar NOT NULL,
  "state" varchar NOT NULL,
  "attempts" integer NOT NULL,
  "next_run_at" timestamp_with_timezone_text NOT NULL,
  "lease_id" varchar,
  "lease_until" timestamp_with_timezone_text,
  "last_error" text NOT NULL,
  "updated_at" timestamp_with_timezone_text NOT NULL,
  CONSTRAINT "pk-saga_steps" PRIMARY KEY ("booking_id", "step")
);

CREATE TABLE "tickets" (
  "id" varchar NOT NULL PRIMARY KEY,
  "booking_id" varchar NOT NULL,
  "show_id" varchar NOT NULL,
  "seat_id" varchar NOT NULL,
  "issued_at" timestamp_with_timezone_text NOT NULL
);

CREATE TABLE "invoices" (
  "id" varchar NOT NULL PRIMARY KEY,
  "booking_id" varchar NOT NULL UNIQUE,
  "theatre_id" varchar NOT NULL,
  "year" integer NOT NULL,
  "sequence" integer NOT NULL,
  "number" varchar NOT NULL,
  "currency" varchar NOT NULL,
  "total_minor" integer NOT NULL,
  "issued_at" timestamp_with_timezone_text NOT NULL
);

CREATE TABLE "invoice_counters" (
  "theatre_id" varchar NOT NULL,
  "year" integer NOT NULL,
  "last" integer NOT NULL,
  CONSTRAINT "pk-invoice_counters" PRIMARY KEY ("theatre_id", "year")
);

CREATE TABLE "outbox" (
  "id" varchar NOT NULL PRIMARY KEY,
  "topic" varchar NOT NULL,
  "aggregate_id" varchar NOT NULL,
  "payload" text NOT NULL,
  "created_at" timestamp_with_timezone_text NOT NULL,
  "published_at" timestamp_with_timezone_text
);

CREATE TABLE IF NOT EXISTS "idempotency_keys" (
  "scope" varchar NOT NULL,
  "request_id" varchar NOT NULL,
  "fingerprint" varchar NOT NULL,
  "result" text NOT NULL,
  "created_at" timestamp_with_timezone_text NOT NULL,
  CONSTRAINT "pk-idempotency_keys" PRIMARY KEY ("scope", "request_id")
);
