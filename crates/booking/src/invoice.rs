//! Invoices as documents: the structured invoice of a booking (its lines are the booking's
//! seats with price, convenience fee and tax) and the same rendered as a standalone HTML page,
//! ready to show or print. Amounts are printed with their currency's ISO 4217 minor unit.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use html_escape::encode_text as esc;
use iso_currency::Currency;

use crate::store::{BookingView, InvoiceView};

/// `amount_minor` of `currency` as people read it, for example `INR 370.65` (`JPY 1200`).
pub fn format_money(amount_minor: i64, currency: &str) -> String {
    let exponent = Currency::from_code(currency)
        .and_then(|c| c.exponent())
        .unwrap_or(2);
    if exponent == 0 {
        return format!("{currency} {amount_minor}");
    }
    let scale = 10_i64.pow(u32::from(exponent));
    let sign = if amount_minor < 0 { "-" } else { "" };
    let abs = amount_minor.unsigned_abs();
    let scale = scale.unsigned_abs();
    format!(
        "{currency} {sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = usize::from(exponent)
    )
}

/// The totals of an invoice, in minor units: `(subtotal, fees, tax, total)`.
pub fn totals(booking: &BookingView) -> (i64, i64, i64, i64) {
    let subtotal = booking.items.iter().map(|i| i.price.amount_minor).sum();
    let fees = booking.items.iter().map(|i| i.fee_minor).sum();
    let tax = booking.items.iter().map(|i| i.tax_minor).sum();
    (subtotal, fees, tax, booking.total.amount_minor)
}

/// `t` as people at the venue read it: in the venue's time zone with its abbreviation
/// (`2026-11-25 19:30 IST`), or in UTC when the zone is not known.
fn when(t: Option<DateTime<Utc>>, tz: Option<Tz>) -> String {
    match (t, tz) {
        (None, _) => String::new(),
        (Some(t), Some(tz)) => t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string(),
        (Some(t), None) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

/// The invoice as a standalone HTML document; its times in `tz`, the venue's time zone (UTC
/// when `None`).
pub fn render_html(booking: &BookingView, invoice: &InvoiceView, tz: Option<Tz>) -> String {
    let cur = booking.total.currency.as_str();
    let m = |minor: i64| esc(&format_money(minor, cur)).into_owned();
    let (subtotal, fees, tax, total) = totals(booking);
    let rate = f64::from(booking.tax_bps) / 100.0;
    let mut lines = String::new();
    for i in &booking.items {
        lines.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
            esc(&i.seat_id),
            esc(&i.category_code),
            m(i.price.amount_minor),
            m(i.fee_minor),
            m(i.tax_minor),
            m(i.total_minor()),
        ));
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Invoice {number}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 48rem; margin: 2rem auto; color: #222; }}
h1 {{ font-size: 1.4rem; margin-bottom: 0; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 1rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .4rem; text-align: left; }}
.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
tfoot td {{ font-weight: 600; border-bottom: none; }}
</style>
</head>
<body>
<h1>Tax invoice {number}</h1>
<p>Issued {issued} &middot; Booking {code}</p>
<p><strong>{movie}</strong><br>{theatre} &middot; {screen}<br>Show: {show}</p>
<table>
<thead><tr><th>Seat</th><th>Category</th><th class="n">Price</th><th class="n">Convenience fee</th><th class="n">Tax ({rate:.2}% on fee)</th><th class="n">Amount</th></tr></thead>
<tbody>
{lines}</tbody>
<tfoot>
<tr><td colspan="5">Tickets</td><td class="n">{subtotal}</td></tr>
<tr><td colspan="5">Convenience fees</td><td class="n">{fees}</td></tr>
<tr><td colspan="5">Tax</td><td class="n">{tax}</td></tr>
<tr><td colspan="5">Total paid</td><td class="n">{total}</td></tr>
</tfoot>
</table>
<p>Ticket prices include the theatre's taxes. Marquee, for {theatre}.</p>
</body>
</html>
"#,
        number = esc(&invoice.number),
        issued = esc(&when(Some(invoice.issued_at), tz)),
        code = esc(&booking.code),
        movie = esc(&booking.show.movie_title),
        theatre = esc(&booking.show.theatre_name),
        screen = esc(&booking.show.screen_name),
        show = esc(&when(booking.show.starts_at, tz)),
        subtotal = m(subtotal),
        fees = m(fees),
        tax = m(tax),
        total = m(total),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_printed_in_the_venue_time_zone() {
        let t = DateTime::parse_from_rfc3339("2026-11-25T14:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            when(Some(t), Some(chrono_tz::Asia::Kolkata)),
            "2026-11-25 19:30 IST"
        );
        assert_eq!(
            when(Some(t), Some(chrono_tz::America::New_York)),
            "2026-11-25 09:00 EST"
        );
        assert_eq!(when(Some(t), None), "2026-11-25 14:00 UTC");
        assert_eq!(when(None, Some(chrono_tz::Asia::Kolkata)), "");
    }

    #[test]
    fn money_uses_the_currency_minor_unit() {
        assert_eq!(format_money(37_065, "INR"), "INR 370.65");
        assert_eq!(format_money(5, "USD"), "USD 0.05");
        assert_eq!(format_money(1_200, "JPY"), "JPY 1200");
        assert_eq!(format_money(1_234, "KWD"), "KWD 1.234");
        assert_eq!(format_money(-150, "EUR"), "EUR -1.50");
    }
}
