-- identity's first tables on PostgreSQL: the entities' tables as they were on 2026-11-25 (with the
-- columns that later migrations add where they are missing). Never edit this file: a change of
-- schema is a migration of its own.
CREATE TABLE "users" (
  "id" varchar NOT NULL PRIMARY KEY,
  "email" varchar NOT NULL,
  "email_lower" varchar NOT NULL,
  "phone" varchar,
  "password_hash" text NOT NULL,
  "roles" text NOT NULL,
  "theatres" text NOT NULL,
  "created_at" bigint NOT NULL
);

CREATE TABLE "consents" (
  "id" varchar NOT NULL PRIMARY KEY,
  "user_id" varchar NOT NULL,
  "channel" varchar NOT NULL,
  "granted" bool NOT NULL,
  "policy_version" varchar NOT NULL,
  "recorded_at" bigint NOT NULL
);

CREATE TABLE "token_families" (
  "id" varchar NOT NULL PRIMARY KEY,
  "user_id" varchar NOT NULL,
  "created_at" bigint NOT NULL,
  "revoked_at" bigint
);

CREATE TABLE "refresh_tokens" (
  "token_hash" varchar NOT NULL PRIMARY KEY,
  "family_id" varchar NOT NULL,
  "user_id" varchar NOT NULL,
  "created_at" bigint NOT NULL,
  "expires_at" bigint NOT NULL,
  "used_at" bigint
);

CREATE TABLE "clients" (
  "id" varchar NOT NULL PRIMARY KEY,
  "display_name" varchar NOT NULL,
  "secret_hash" varchar NOT NULL,
  "role" varchar NOT NULL,
  "theatres" text NOT NULL,
  "created_at" bigint NOT NULL,
  "revoked_at" bigint
);

CREATE TABLE "signing_keys" (
  "kid" varchar NOT NULL PRIMARY KEY,
  "private_pkcs8" text NOT NULL,
  "public_key" varchar NOT NULL,
  "created_at" bigint NOT NULL
);

CREATE TABLE "sign_in_failures" (
  "id" varchar NOT NULL PRIMARY KEY,
  "subject" varchar NOT NULL,
  "at" bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS "idempotency_keys" (
  "scope" varchar NOT NULL,
  "request_id" varchar NOT NULL,
  "fingerprint" varchar NOT NULL,
  "result" text NOT NULL,
  "created_at" timestamp with time zone NOT NULL,
  CONSTRAINT "pk-idempotency_keys" PRIMARY KEY ("scope", "request_id")
);
