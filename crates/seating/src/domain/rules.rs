//! The rules of hold requests: which seats a request names, whether the caller may hold them,
//! and which seats "best available" picks.

use std::collections::HashSet;

use marquee_platform::validation::Violations;

use super::{
    Allocation, Channel, Layout, MAX_SEATS_PER_HOLD, SeatingError, ShowContext,
    error::SeatingError as E,
};

/// Checks that a show can be held now (`now_secs`): not cancelled, not started.
pub fn check_show_open(ctx: &ShowContext, now_secs: i64) -> Result<(), SeatingError> {
    if ctx.show.cancelled {
        return Err(E::precondition("SHOW_CANCELLED", "the show is cancelled"));
    }
    if ctx.show.start_secs <= now_secs {
        return Err(E::precondition(
            "SHOW_STARTED",
            "the show has started or is over",
        ));
    }
    Ok(())
}

/// The indexes of explicitly named seats: 1 to 10 distinct seats of the layout.
pub fn explicit_seats(layout: &Layout, seat_ids: &[String]) -> Result<Vec<u32>, Violations> {
    let mut v = Violations::new();
    if seat_ids.is_empty() {
        v.add("seats.seat_ids", "at least one seat is required");
    }
    if seat_ids.len() > MAX_SEATS_PER_HOLD {
        v.add(
            "seats.seat_ids",
            format!("at most {MAX_SEATS_PER_HOLD} seats per hold"),
        );
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(seat_ids.len());
    for (i, id) in seat_ids.iter().enumerate() {
        match layout.index.get(id) {
            None => v.add(format!("seats.seat_ids[{i}]"), "no such seat in this show"),
            Some(ix) => {
                if !seen.insert(*ix) {
                    v.add(format!("seats.seat_ids[{i}]"), "seat named twice");
                }
                out.push(*ix);
            }
        }
    }
    v.into_result()?;
    Ok(out)
}

/// Checks a best-available request.
pub fn check_best_available(layout: &Layout, count: i32, category: &str) -> Result<(), Violations> {
    let mut v = Violations::new();
    if count < 1 || count as usize > MAX_SEATS_PER_HOLD {
        v.add(
            "best_available.count",
            format!("must be 1 to {MAX_SEATS_PER_HOLD}"),
        );
    }
    if !layout.seats.iter().any(|s| s.category == category) {
        v.add(
            "best_available.category_code",
            "no seat of this category in this show",
        );
    }
    v.into_result()
}

/// Refuses seats allotted to another channel than `channel`.
pub fn check_channel(
    layout: &Layout,
    allocation: &Allocation,
    channel: &Channel,
    seats: &[u32],
) -> Result<(), SeatingError> {
    let foreign: Vec<String> = seats
        .iter()
        .filter(|s| allocation.get(s).unwrap_or(&Channel::Platform) != channel)
        .map(|s| layout.seat_id(*s).to_owned())
        .collect();
    if foreign.is_empty() {
        Ok(())
    } else {
        Err(SeatingError::Precondition {
            reason: "SEAT_NOT_FOR_SALE",
            message: "some seats are not for sale on your channel".into(),
            seats: foreign,
        })
    }
}

/// Picks `count` seats of `category` among those for which `free` holds: `count` adjacent seats
/// in one row when some row has them (the run closest to the row's middle, rows nearest the
/// middle of the category's rows first); else the block of rows nearest each other, seats
/// nearest the middle of each row. `None` when fewer than `count` seats are free.
pub fn best_available(
    layout: &Layout,
    category: &str,
    count: usize,
    free: impl Fn(u32) -> bool,
) -> Option<Vec<u32>> {
    if count == 0 {
        return None;
    }
    // Free seats of the category, grouped by row, in row order.
    let mut rows: Vec<(u32, Vec<(u32, u32)>)> = Vec::new();
    let mut all_rows: Vec<u32> = Vec::new();
    for (i, s) in layout.seats.iter().enumerate() {
        if s.category != category {
            continue;
        }
        if all_rows.last() != Some(&s.row) {
            all_rows.push(s.row);
        }
        if !free(i as u32) {
            continue;
        }
        match rows.last_mut() {
            Some((r, seats)) if *r == s.row => seats.push((s.position, i as u32)),
            _ => rows.push((s.row, vec![(s.position, i as u32)])),
        }
    }
    let total: usize = rows.iter().map(|(_, s)| s.len()).sum();
    if total < count {
        return None;
    }
    let mid_row = if all_rows.is_empty() {
        0.0
    } else {
        (f64::from(all_rows[0]) + f64::from(all_rows[all_rows.len() - 1])) / 2.0
    };
    // Row middles in positions, from the whole row (free or not).
    let row_mid = |row: u32| -> f64 {
        let ps: Vec<u32> = layout
            .seats
            .iter()
            .filter(|s| s.row == row)
            .map(|s| s.position)
            .collect();
        match (ps.iter().min(), ps.iter().max()) {
            (Some(a), Some(b)) => (f64::from(*a) + f64::from(*b)) / 2.0,
            _ => 0.0,
        }
    };

    // 1. adjacent runs.
    let mut best: Option<(f64, Vec<u32>)> = None;
    for (row, seats) in &rows {
        let mid = row_mid(*row);
        let mut start = 0;
        while start < seats.len() {
            let mut end = start + 1;
            while end < seats.len() && seats[end].0 == seats[end - 1].0 + 1 {
                end += 1;
            }
            // seats[start..end] is a run of adjacent free seats.
            if end - start >= count {
                for w in start..=(end - count) {
                    let window = &seats[w..w + count];
                    let centre = (f64::from(window[0].0) + f64::from(window[count - 1].0)) / 2.0;
                    let score = (f64::from(*row) - mid_row).abs() * 1000.0 + (centre - mid).abs();
                    if best.as_ref().is_none_or(|(b, _)| score < *b) {
                        best = Some((score, window.iter().map(|(_, i)| *i).collect()));
                    }
                }
            }
            start = end;
        }
    }
    if let Some((_, seats)) = best {
        return Some(seats);
    }

    // 2. the closest block: for each starting row, take seats nearest the middle of that row and
    // the following rows until `count` are taken; keep the block spanning the fewest rows.
    let mut block: Option<(usize, f64, Vec<u32>)> = None;
    for first in 0..rows.len() {
        let mut picked = Vec::new();
        let mut spread = 0.0;
        let mut last = first;
        for (k, (row, seats)) in rows.iter().enumerate().skip(first) {
            let mid = row_mid(*row);
            let mut sorted = seats.clone();
            sorted.sort_by(|a, b| {
                (f64::from(a.0) - mid)
                    .abs()
                    .total_cmp(&(f64::from(b.0) - mid).abs())
            });
            for (p, i) in sorted {
                if picked.len() == count {
                    break;
                }
                spread += (f64::from(p) - mid).abs();
                picked.push(i);
            }
            last = k;
            if picked.len() == count {
                break;
            }
        }
        if picked.len() == count {
            let span = last - first;
            if block
                .as_ref()
                .is_none_or(|(s, sp, _)| span < *s || (span == *s && spread < *sp))
            {
                block = Some((span, spread, picked));
            }
        }
    }
    block.map(|(_, _, mut seats)| {
        seats.sort_unstable();
        seats
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SeatDef;

    /// Rows of `n` seats with a gap after seat `gap_after` (0 for none).
    fn layout(rows: &[(&str, u32, u32)]) -> Layout {
        let mut seats = Vec::new();
        for (r, (label, n, gap_after)) in rows.iter().enumerate() {
            let mut pos = 0;
            for k in 1..=*n {
                seats.push(SeatDef {
                    id: format!("{label}-{k}"),
                    row: r as u32,
                    position: pos,
                    category: "C".into(),
                });
                pos += if k == *gap_after { 2 } else { 1 };
            }
        }
        Layout::new(seats)
    }

    fn ids(l: &Layout, s: &[u32]) -> Vec<String> {
        l.seat_ids(s)
    }

    #[test]
    fn adjacent_in_the_middle_row_first() {
        let l = layout(&[("A", 6, 0), ("B", 6, 0), ("C", 6, 0)]);
        let s = best_available(&l, "C", 2, |_| true).expect("seats");
        assert_eq!(ids(&l, &s), vec!["B-3", "B-4"]);
    }

    #[test]
    fn gaps_break_adjacency_and_taken_seats_are_skipped() {
        let l = layout(&[("A", 4, 2)]);
        // A-1 A-2 | A-3 A-4 : 3 adjacent seats do not exist; falls back to a block.
        let s = best_available(&l, "C", 3, |_| true).expect("seats");
        assert_eq!(s.len(), 3);
        let taken = l.index["A-3"];
        let s = best_available(&l, "C", 2, |i| i != taken).expect("seats");
        assert_eq!(ids(&l, &s), vec!["A-1", "A-2"]);
        assert!(best_available(&l, "C", 4, |i| i != taken).is_none());
    }

    #[test]
    fn started_and_cancelled_shows_are_closed() {
        use std::sync::Arc;
        let ctx = |start_secs, cancelled| ShowContext {
            show: Arc::new(crate::domain::ShowInfo {
                id: "s".into(),
                screen_id: "x".into(),
                theatre_id: "t".into(),
                start_secs,
                cancelled,
                prices: Default::default(),
            }),
            layout: Arc::new(layout(&[("A", 2, 0)])),
        };
        assert!(check_show_open(&ctx(100, false), 50).is_ok());
        assert!(check_show_open(&ctx(100, false), 100).is_err());
        assert!(check_show_open(&ctx(100, true), 50).is_err());
    }

    #[test]
    fn explicit_seats_are_checked() {
        let l = layout(&[("A", 12, 0)]);
        let ok = explicit_seats(&l, &["A-1".into(), "A-2".into()]).expect("ok");
        assert_eq!(ok, vec![0, 1]);
        assert!(explicit_seats(&l, &["A-1".into(), "A-1".into()]).is_err());
        assert!(explicit_seats(&l, &["Z-1".into()]).is_err());
        assert!(explicit_seats(&l, &[]).is_err());
        let eleven: Vec<String> = (1..=11).map(|k| format!("A-{k}")).collect();
        assert!(explicit_seats(&l, &eleven).is_err());
    }
}
