//! Seating's types.

use std::{collections::HashMap, sync::Arc};

use serde::{Deserialize, Serialize};

/// The most seats one hold may have.
pub const MAX_SEATS_PER_HOLD: usize = 10;

/// Money in integer minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// ISO 4217 code.
    pub currency: String,
    /// Minor units.
    pub amount_minor: i64,
}

/// One seat of a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatDef {
    /// Stable id such as `C-12`.
    pub id: String,
    /// Index of its row in the layout.
    pub row: u32,
    /// Position in the row counted in seat widths, gaps included: adjacent seats differ by 1.
    pub position: u32,
    /// Price category code.
    pub category: String,
}

/// A screen's seats in layout order; a seat's index in `seats` is its index everywhere in
/// seating (bitmaps, events).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// The seats.
    pub seats: Vec<SeatDef>,
    /// Seat id to index.
    pub index: HashMap<String, u32>,
    /// How many rows.
    pub rows: u32,
}

impl Layout {
    /// Builds the index.
    pub fn new(seats: Vec<SeatDef>) -> Self {
        let index = seats
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i as u32))
            .collect();
        let rows = seats.iter().map(|s| s.row + 1).max().unwrap_or(0);
        Self { seats, index, rows }
    }

    /// The id of seat `index` (empty when out of range).
    pub fn seat_id(&self, index: u32) -> &str {
        self.seats
            .get(index as usize)
            .map(|s| s.id.as_str())
            .unwrap_or("")
    }

    /// The ids of `indexes`.
    pub fn seat_ids(&self, indexes: &[u32]) -> Vec<String> {
        indexes
            .iter()
            .map(|i| self.seat_id(*i).to_owned())
            .collect()
    }
}

/// A show as seating needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowInfo {
    /// The show id.
    pub id: String,
    /// Its screen.
    pub screen_id: String,
    /// Its theatre.
    pub theatre_id: String,
    /// Start, Unix seconds.
    pub start_secs: i64,
    /// True when cancelled.
    pub cancelled: bool,
    /// Price by category code.
    pub prices: HashMap<String, Money>,
}

/// A show with its layout.
#[derive(Debug, Clone)]
pub struct ShowContext {
    /// The show.
    pub show: Arc<ShowInfo>,
    /// Its screen's seats.
    pub layout: Arc<Layout>,
}

/// A sales channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Channel {
    /// Marquee's apps (customers).
    Platform,
    /// The box office (staff).
    BoxOffice,
    /// A partner.
    Partner(String),
}

impl Channel {
    /// Stored form: `platform`, `box_office`, `partner:<id>`.
    pub fn key(&self) -> String {
        match self {
            Channel::Platform => "platform".into(),
            Channel::BoxOffice => "box_office".into(),
            Channel::Partner(p) => format!("partner:{p}"),
        }
    }

    /// Parses the stored form.
    pub fn from_key(key: &str) -> Option<Channel> {
        match key {
            "platform" => Some(Channel::Platform),
            "box_office" => Some(Channel::BoxOffice),
            k => k
                .strip_prefix("partner:")
                .filter(|p| !p.is_empty())
                .map(|p| Channel::Partner(p.to_owned())),
        }
    }
}

/// Which seats belong to channels other than the platform (seat index -> channel).
pub type Allocation = HashMap<u32, Channel>;

/// Who is asking, as seating sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The user id; `None` for anonymous viewers.
    pub user: Option<String>,
    /// The channel the viewer buys through.
    pub channel: Channel,
}

/// A hold as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Hold id (see [`hold_id`]).
    pub id: String,
    /// The show.
    pub show_id: String,
    /// The holder's user id.
    pub user: String,
    /// Seat indexes.
    pub seats: Vec<u32>,
    /// Fencing token.
    pub token: i64,
    /// Deadline, Unix milliseconds (the store's clock).
    pub expires_ms: i64,
    /// Created, Unix milliseconds.
    pub created_ms: i64,
    /// The latest deadline, Unix milliseconds.
    pub max_expires_ms: i64,
}

/// A new hold id for `show_id`: the show is part of the id so that a hold can be found (and its
/// store keys named) from the id alone.
pub fn hold_id(show_id: &str) -> String {
    format!("{}.{}", uuid::Uuid::now_v7().simple(), show_id)
}

/// The show of a hold id, if it is well formed.
pub fn show_of_hold(hold_id: &str) -> Option<&str> {
    let (head, show) = hold_id.split_once('.')?;
    (head.len() == 32 && head.bytes().all(|b| b.is_ascii_hexdigit()) && valid_id(show))
        .then_some(show)
}

/// True for ids seating accepts in keys: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What happened to seats of a show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Held.
    Held,
    /// Released by the holder.
    Released,
    /// Replaced by a new hold of the same holder (the old hold's seats are freed).
    Replaced,
    /// Deadline moved.
    Extended,
    /// Expired.
    Expired,
    /// Sold.
    Sold,
    /// A sale was cancelled: the seats are on sale again.
    Unsold,
}

impl EventKind {
    /// One-letter wire form.
    pub fn code(self) -> &'static str {
        match self {
            EventKind::Held => "H",
            EventKind::Released => "R",
            EventKind::Replaced => "P",
            EventKind::Extended => "E",
            EventKind::Expired => "X",
            EventKind::Sold => "S",
            EventKind::Unsold => "U",
        }
    }

    /// Parses the wire form.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "H" => EventKind::Held,
            "R" => EventKind::Released,
            "P" => EventKind::Replaced,
            "E" => EventKind::Extended,
            "X" => EventKind::Expired,
            "S" => EventKind::Sold,
            "U" => EventKind::Unsold,
            _ => return None,
        })
    }
}

/// A change of seats of one show, fanned out to every watcher of the show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatEvent {
    /// The show's version after this event: each event of a show is one more than the one
    /// before it (see [`Cursor`]).
    pub version: u64,
    /// What happened.
    pub kind: EventKind,
    /// The show.
    pub show_id: String,
    /// The hold concerned.
    pub hold_id: String,
    /// Its holder (never sent to other viewers).
    pub user: String,
    /// Its fencing token.
    pub token: i64,
    /// Its deadline after the event, Unix milliseconds.
    pub expires_ms: i64,
    /// The seats concerned.
    pub seats: Vec<u32>,
}

impl SeatEvent {
    /// The wire form published by the store:
    /// `version|kind|hold|token|expires|s1,s2,...|user` (the user last, so that it may contain
    /// any character).
    pub fn encode(&self) -> String {
        let seats: Vec<String> = self.seats.iter().map(u32::to_string).collect();
        format!(
            "{}|{}|{}|{}|{}|{}|{}",
            self.version,
            self.kind.code(),
            self.hold_id,
            self.token,
            self.expires_ms,
            seats.join(","),
            self.user,
        )
    }

    /// Parses the wire form.
    pub fn decode(show_id: &str, text: &str) -> Option<Self> {
        let mut parts = text.splitn(7, '|');
        let version = parts.next()?.parse().ok()?;
        let kind = EventKind::from_code(parts.next()?)?;
        let hold_id = parts.next()?.to_owned();
        let token = parts.next()?.parse().ok()?;
        let expires_ms = parts.next()?.parse().ok()?;
        let seats = parse_seats(parts.next()?)?;
        let user = parts.next()?.to_owned();
        Some(SeatEvent {
            version,
            kind,
            show_id: show_id.to_owned(),
            hold_id,
            user,
            token,
            expires_ms,
            seats,
        })
    }
}

/// What a watcher does with the next event of a show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The event follows what the watcher has: apply it.
    Apply,
    /// The event is already in what the watcher has (it was published before the snapshot was
    /// read, and reached this instance after): skip it.
    Skip,
    /// Events were missed (the pub/sub connection dropped, or the store lost its data and
    /// started a new run of versions): read a fresh snapshot.
    Resync,
}

/// A watcher's place in a show's run of versions.
///
/// The store gives every event of a show the next version, in the same atomic step as the
/// change, and reads a snapshot's version with its seats. Events reach a watcher in order but
/// may have been published before its snapshot was read, and a dropped connection loses some.
/// The cursor tells which is which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(u64);

impl Cursor {
    /// At a snapshot of this version.
    pub fn at(version: u64) -> Self {
        Self(version)
    }

    /// The version the watcher has.
    pub fn version(self) -> u64 {
        self.0
    }

    /// What to do with an event of this version; the cursor moves past it when it is applied.
    pub fn step(&mut self, version: u64) -> Step {
        if version <= self.0 {
            Step::Skip
        } else if version == self.0 + 1 {
            self.0 = version;
            Step::Apply
        } else {
            Step::Resync
        }
    }
}

/// Parses `1,2,3` (empty is no seats).
pub fn parse_seats(text: &str) -> Option<Vec<u32>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split(',').map(|s| s.parse().ok()).collect()
}

/// A seat's state for a viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatState {
    /// Free to hold.
    Available,
    /// Held by someone else.
    Held,
    /// Held by the viewer.
    HeldByYou,
    /// Sold.
    Sold,
    /// Another channel's seat.
    NotForSale,
}

/// The live state of a show's seats in the hold store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeatStates {
    /// The show's version: the version of the last event whose change these states include.
    pub version: u64,
    /// Bit i (most significant bit first, as Redis bitmaps) set when seat i is held.
    pub held: Vec<u8>,
    /// Bit i set when seat i is sold.
    pub sold: Vec<u8>,
    /// The viewer's own hold on the show, if any.
    pub mine: Option<Hold>,
}

/// What a booking reference must be.
pub const BOOKING_REFERENCE_RULE: &str = "must be 1 to 64 printable ASCII characters";

/// True for a booking reference seating accepts (the booking service's id).
pub fn valid_booking_reference(reference: &str) -> bool {
    !reference.is_empty()
        && reference.len() <= 64
        && reference.bytes().all(|b| b.is_ascii_graphic())
}

/// Bit `i` of a Redis-ordered bitmap.
pub fn bit(bits: &[u8], i: u32) -> bool {
    bits.get((i / 8) as usize)
        .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
}

/// Sets bit `i` of a Redis-ordered bitmap.
pub fn set_bit(bits: &mut Vec<u8>, i: u32, on: bool) {
    let byte = (i / 8) as usize;
    if bits.len() <= byte {
        bits.resize(byte + 1, 0);
    }
    if on {
        bits[byte] |= 0x80 >> (i % 8);
    } else {
        bits[byte] &= !(0x80 >> (i % 8));
    }
}

impl SeatStates {
    /// The state of seat `i` for a viewer on `channel`, given the show's allocation.
    pub fn state(&self, i: u32, channel: &Channel, allocation: &Allocation) -> SeatState {
        if bit(&self.sold, i) {
            SeatState::Sold
        } else if self.mine.as_ref().is_some_and(|h| h.seats.contains(&i)) {
            SeatState::HeldByYou
        } else if bit(&self.held, i) {
            SeatState::Held
        } else if allocation.get(&i).unwrap_or(&Channel::Platform) != channel {
            SeatState::NotForSale
        } else {
            SeatState::Available
        }
    }
}

/// A sold seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoldSeat {
    /// Seat id.
    pub seat_id: String,
    /// The hold it was sold from.
    pub hold_id: String,
    /// The booking.
    pub booking_reference: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let e = SeatEvent {
            version: 1_764_000_000_000_123,
            kind: EventKind::Held,
            show_id: "s".into(),
            hold_id: "h".into(),
            user: "u".into(),
            token: 7,
            expires_ms: 99,
            seats: vec![1, 5],
        };
        assert_eq!(SeatEvent::decode("s", &e.encode()), Some(e));
        let anonymous = SeatEvent {
            user: "a|b".into(),
            seats: vec![],
            ..SeatEvent::decode("s", "3|U||0|0||").expect("unsold")
        };
        assert_eq!(SeatEvent::decode("s", &anonymous.encode()), Some(anonymous));
        assert_eq!(SeatEvent::decode("s", "U||0|0||"), None);
    }

    #[test]
    fn cursors_skip_old_events_and_resync_on_gaps() {
        let mut c = Cursor::at(10);
        assert_eq!(c.step(9), Step::Skip);
        assert_eq!(c.step(10), Step::Skip);
        assert_eq!(c.step(11), Step::Apply);
        assert_eq!(c.version(), 11);
        assert_eq!(c.step(11), Step::Skip);
        assert_eq!(c.step(13), Step::Resync);
        assert_eq!(c.version(), 11);
        assert_eq!(c.step(12), Step::Apply);
    }

    #[test]
    fn hold_ids_carry_the_show() {
        let id = hold_id("0193-abc");
        assert_eq!(show_of_hold(&id), Some("0193-abc"));
        assert_eq!(show_of_hold("nope"), None);
        assert_eq!(show_of_hold("x.show"), None);
    }

    #[test]
    fn bitmaps_are_msb_first() {
        let mut b = Vec::new();
        set_bit(&mut b, 0, true);
        set_bit(&mut b, 9, true);
        assert_eq!(b, vec![0x80, 0x40]);
        assert!(bit(&b, 9) && !bit(&b, 8) && !bit(&b, 100));
    }
}
