#!/usr/bin/env bash
# A whole booking against a running `marquee up`, from search to the door, with a common gRPC
# client: `buf curl` (from this repository's npm tooling: `npm ci` once) and jq. Every step is
# one RPC; README.md shows the same calls. Usage: scripts/walkthrough.sh [host:port]
# (default 127.0.0.1:50051). It needs the marquee binary's data directory for the one-time admin
# (WALKTHROUGH_DATA, default .marquee) to create the door staff account.
set -euo pipefail
M=${1:-127.0.0.1:50051}
DATA=${WALKTHROUGH_DATA:-.marquee}
MARQUEE=${WALKTHROUGH_MARQUEE:-cargo run -q --release -p marquee --}
BUF="$(cd "$(dirname "$0")/.." && pwd)/node_modules/.bin/buf"
call() { # call <method> <json> [token]
  local auth=()
  [ -n "${3:-}" ] && auth=(-H "authorization: Bearer $3")
  "$BUF" curl --protocol grpc --http2-prior-knowledge "${auth[@]}" -d "$2" "http://$M/$1"
}
rid() { cat /proc/sys/kernel/random/uuid; }
say() { printf '\n== %s\n' "$*"; }

say "a city, tomorrow's first show there, its seats"
CITY=$(call marquee.catalog.v1.CatalogService/ListCities '{}' | jq -r '.cities[0].id')
SHOW=$(call marquee.catalog.v1.CatalogService/SearchShows \
  '{"city_id": "'"$CITY"'", "date": "'"$(date -d tomorrow +%F)"'", "page_size": 1}' | jq -r '.shows[0].show.id')
call marquee.seating.v1.SeatingService/GetSeatMap '{"show_id": "'"$SHOW"'"}' | jq -c '.seatMap.seats[:2]'

say "sign up and in"
EMAIL="asha.$(date +%s)@example.com"
call marquee.identity.v1.IdentityService/SignUp \
  '{"request_id": "'"$(rid)"'", "email": "'"$EMAIL"'", "password": "Correct-horse-9"}' >/dev/null
TOKEN=$(call marquee.identity.v1.IdentityService/SignIn \
  '{"email": "'"$EMAIL"'", "password": "Correct-horse-9"}' | jq -r .tokens.accessToken)

say "hold the best two CLASSIC seats, book them, start paying"
HOLD=$(call marquee.seating.v1.SeatingService/HoldSeats '{"request_id": "'"$(rid)"'", "show_id": "'"$SHOW"'",
  "best_available": {"count": 2, "category_code": "CLASSIC"}}' "$TOKEN" | jq -r .hold.holdId)
BOOKING=$(call marquee.booking.v1.BookingService/CreateBooking \
  '{"request_id": "'"$(rid)"'", "hold_id": "'"$HOLD"'"}' "$TOKEN" | jq -r .booking.id)
ORDER=$(call marquee.booking.v1.BookingService/StartPayment \
  '{"request_id": "'"$(rid)"'", "booking_id": "'"$BOOKING"'"}' "$TOKEN" | jq -r .checkout.providerOrderId)

say "pay on the mock provider's checkout; follow the booking to INVOICED"
call marquee.payments.v1.MockCheckoutService/Pay \
  '{"provider_order_id": "'"$ORDER"'", "outcome": "OUTCOME_SUCCESS"}' | jq -c .
# (a checkout page would hold a WatchBooking stream open; here GetBooking is asked each second)
for _ in $(seq 30); do
  STATUS=$(call marquee.booking.v1.BookingService/GetBooking '{"booking_id": "'"$BOOKING"'"}' "$TOKEN" \
    | jq -r .booking.status)
  echo "$STATUS"
  [ "$STATUS" = BOOKING_STATUS_INVOICED ] && break
  sleep 1
done
call marquee.booking.v1.BookingService/GetBooking '{"booking_id": "'"$BOOKING"'"}' "$TOKEN" \
  | jq -r '.booking.history[] | "\(.toStatus): \(.cause)"'

say "the ticket (QR code in ticket.svg) and the invoice (invoice.html)"
call marquee.booking.v1.BookingService/GetTicket '{"booking_id": "'"$BOOKING"'"}' "$TOKEN" \
  | tee >(jq -r .ticket.qrSvg > ticket.svg) | jq -c '{code: .ticket.bookingCode, seats: .ticket.seatIds}'
call marquee.booking.v1.BookingService/GetInvoice '{"booking_id": "'"$BOOKING"'"}' "$TOKEN" \
  | tee >(jq -r .html > invoice.html) | jq -c '.invoice | {number, total}'

say "door staff of the show's theatre admit the booking; a second scan is refused"
THEATRE=$(call marquee.catalog.v1.CatalogService/GetShow '{"show_id": "'"$SHOW"'"}' | jq -r .show.theatreId)
ADMIN="admin.$(date +%s)@example.com"
echo 'Admin-pass-2026' | $MARQUEE admin create --email "$ADMIN" --password-stdin --data "$DATA" >/dev/null
ADMIN_TOKEN=$(call marquee.identity.v1.IdentityService/SignIn \
  '{"email": "'"$ADMIN"'", "password": "Admin-pass-2026"}' | jq -r .tokens.accessToken)
DOOR="door.$(date +%s)@example.com"
call marquee.identity.v1.IdentityService/CreateUser '{"request_id": "'"$(rid)"'", "email": "'"$DOOR"'",
  "password": "Door-pass-2026", "roles": ["ROLE_STAFF"], "theatre_ids": ["'"$THEATRE"'"]}' "$ADMIN_TOKEN" >/dev/null
STAFF=$(call marquee.identity.v1.IdentityService/SignIn \
  '{"email": "'"$DOOR"'", "password": "Door-pass-2026"}' | jq -r .tokens.accessToken)
CODE=$(call marquee.booking.v1.BookingService/GetBooking '{"booking_id": "'"$BOOKING"'"}' "$TOKEN" | jq -r .booking.code)
call marquee.booking.v1.BookingService/AdmitTicket \
  '{"request_id": "'"$(rid)"'", "booking_code": "'"$CODE"'"}' "$STAFF" | jq -c '{admission, admitTime, seatIds}'
call marquee.booking.v1.BookingService/AdmitTicket \
  '{"request_id": "'"$(rid)"'", "booking_code": "'"$CODE"'"}' "$STAFF" | jq -c '{admission, admitTime}'
