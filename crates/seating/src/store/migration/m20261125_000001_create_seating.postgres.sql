-- seating's first tables on PostgreSQL: the entities' tables as they were on 2026-11-25 (with the
-- columns that later migrations add where they are missing). Never edit this file: a change of
-- schema is a migration of its own.
CREATE TABLE "sold_seats" (
  "show_id" varchar NOT NULL,
  "seat_id" varchar NOT NULL,
  "hold_id" varchar NOT NULL,
  "booking_reference" varchar NOT NULL,
  "sold_at" timestamp with time zone NOT NULL,
  CONSTRAINT "pk-sold_seats" PRIMARY KEY ("show_id", "seat_id")
);

CREATE TABLE "allocations" (
  "show_id" varchar NOT NULL,
  "seat_id" varchar NOT NULL,
  "channel" varchar NOT NULL,
  CONSTRAINT "pk-allocations" PRIMARY KEY ("show_id", "seat_id")
);

CREATE TABLE IF NOT EXISTS "idempotency_keys" (
  "scope" varchar NOT NULL,
  "request_id" varchar NOT NULL,
  "fingerprint" varchar NOT NULL,
  "result" text NOT NULL,
  "created_at" timestamp with time zone NOT NULL,
  CONSTRAINT "pk-idempotency_keys" PRIMARY KEY ("scope", "request_id")
);
