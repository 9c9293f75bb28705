-- catalog's first tables on PostgreSQL: the entities' tables as they were on 2026-11-25 (with the
-- columns that later migrations add where they are missing). Never edit this file: a change of
-- schema is a migration of its own.
CREATE TABLE "cities" (
  "id" varchar NOT NULL PRIMARY KEY,
  "name" varchar NOT NULL,
  "region" varchar NOT NULL,
  "country_code" varchar NOT NULL,
  "time_zone" varchar NOT NULL,
  "currency_code" varchar NOT NULL,
  "created_at" timestamp with time zone NOT NULL
);

CREATE TABLE "movies" (
  "id" varchar NOT NULL PRIMARY KEY,
  "title" varchar NOT NULL,
  "title_lower" varchar NOT NULL,
  "synopsis" text NOT NULL,
  "original_language" varchar NOT NULL,
  "genres" text NOT NULL,
  "runtime_minutes" integer NOT NULL,
  "certification" varchar NOT NULL,
  "release_date" varchar NOT NULL,
  "cast_members" text NOT NULL,
  "directors" text NOT NULL,
  "created_at" timestamp with time zone NOT NULL,
  "updated_at" timestamp with time zone NOT NULL
);

CREATE TABLE "movie_genres" (
  "movie_id" varchar NOT NULL,
  "genre" varchar NOT NULL,
  CONSTRAINT "pk-movie_genres" PRIMARY KEY ("movie_id", "genre")
);

CREATE TABLE "theatres" (
  "id" varchar NOT NULL PRIMARY KEY,
  "city_id" varchar NOT NULL,
  "name" varchar NOT NULL,
  "address" varchar NOT NULL,
  "amenities" text NOT NULL,
  "created_at" timestamp with time zone NOT NULL,
  "updated_at" timestamp with time zone NOT NULL
);

CREATE TABLE "screens" (
  "id" varchar NOT NULL PRIMARY KEY,
  "theatre_id" varchar NOT NULL,
  "name" varchar NOT NULL,
  "formats" text NOT NULL,
  "layout" text NOT NULL,
  "seat_count" integer NOT NULL,
  "created_at" timestamp with time zone NOT NULL,
  "updated_at" timestamp with time zone NOT NULL
);

CREATE TABLE "shows" (
  "id" varchar NOT NULL PRIMARY KEY,
  "movie_id" varchar NOT NULL,
  "theatre_id" varchar NOT NULL,
  "screen_id" varchar NOT NULL,
  "city_id" varchar NOT NULL,
  "start_at" bigint NOT NULL,
  "end_at" bigint NOT NULL,
  "language" varchar NOT NULL,
  "format" varchar NOT NULL,
  "prices" text NOT NULL,
  "state" varchar NOT NULL,
  "cancel_reason" varchar NOT NULL,
  "created_at" timestamp with time zone NOT NULL,
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
