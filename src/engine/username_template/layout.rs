//! Go's time layouts (`timestamp "2006-01-02"`): the reference time
//! Mon Jan 2 15:04:05 MST 2006 written the way the result should look.
//! Every element of Go's `time.Format` is understood, found the way Go
//! finds them (first match from the left, `Jan` but not `Janet`), so a
//! layout copied from a Vault role renders alike. Always in UTC: Vault
//! uses the server's local zone, which for a plugin is usually UTC too.

use time::OffsetDateTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Element {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm {
        upper: bool,
    },
    /// A zone element, shown for UTC: "Z", "+00:00", "UTC"...
    Zone(&'static str),
    /// `.000` / `,999`: fixed digits, or `9`s that drop trailing zeros.
    Fraction {
        separator: u8,
        digits: usize,
        trim: bool,
    },
}

/// Zone elements by prefix, longest first as Go tries them.
const ZONES: &[(&str, &str)] = &[
    ("-070000", "+000000"),
    ("-07:00:00", "+00:00:00"),
    ("-0700", "+0000"),
    ("-07:00", "+00:00"),
    ("-07", "+00"),
    ("Z070000", "Z"),
    ("Z07:00:00", "Z"),
    ("Z0700", "Z"),
    ("Z07:00", "Z"),
    ("Z07", "Z"),
    ("MST", "UTC"),
];

fn starts_lower(rest: &[u8]) -> bool {
    rest.first().is_some_and(u8::is_ascii_lowercase)
}

/// The element that starts at `l[0]`, and its length.
fn element_at(l: &[u8]) -> Option<(usize, Element)> {
    use Element::*;
    let at = |s: &str| l.starts_with(s.as_bytes());
    let second = l.get(1).copied();
    Some(match l[0] {
        b'J' if at("January") => (7, LongMonth),
        b'J' if at("Jan") && !starts_lower(&l[3..]) => (3, Month),
        b'M' if at("Monday") => (6, LongWeekDay),
        b'M' if at("Mon") && !starts_lower(&l[3..]) => (3, WeekDay),
        b'0' if matches!(second, Some(b'1'..=b'6')) => {
            let zeroed = [ZeroMonth, ZeroDay, ZeroHour12, ZeroMinute, ZeroSecond, Year];
            (2, zeroed[usize::from(second? - b'1')])
        }
        b'0' if at("002") => (3, ZeroYearDay),
        b'1' if second == Some(b'5') => (2, Hour),
        b'1' => (1, NumMonth),
        b'2' if at("2006") => (4, LongYear),
        b'2' => (1, Day),
        b'_' if at("__2") => (3, UnderYearDay),
        b'_' if second == Some(b'2') => (2, UnderDay),
        b'3' => (1, Hour12),
        b'4' => (1, Minute),
        b'5' => (1, Second),
        b'P' if second == Some(b'M') => (2, Pm { upper: true }),
        b'p' if second == Some(b'm') => (2, Pm { upper: false }),
        b'-' | b'Z' | b'M' => {
            let &(layout, shown) = ZONES.iter().find(|(layout, _)| at(layout))?;
            (layout.len(), Zone(shown))
        }
        separator @ (b'.' | b',') if matches!(second, Some(b'0' | b'9')) => {
            let digit = second?;
            let run = l[1..].iter().take_while(|&&b| b == digit).count();
            // Only a run not followed by another digit is a fraction.
            if l.get(1 + run).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            let trim = digit == b'9';
            (
                1 + run,
                Fraction {
                    separator,
                    digits: run,
                    trim,
                },
            )
        }
        _ => return None,
    })
}

/// Go's zero-padded integer of at least `width` digits.
fn padded(out: &mut String, n: i64, width: usize) {
    if n < 0 {
        out.push('-');
    }
    out.push_str(&format!("{:0width$}", n.unsigned_abs()));
}

/// `at` written in `layout`; `at` is in UTC.
pub(super) fn format(layout: &str, at: OffsetDateTime) -> String {
    let bytes = layout.as_bytes();
    let mut out = String::new();
    let mut literal = 0;
    let mut i = 0;
    while i < bytes.len() {
        // `_2006` is a literal `_` and the year, not `_2` and `006`.
        let found = if bytes[i..].starts_with(b"_2006") {
            None
        } else {
            element_at(&bytes[i..])
        };
        let Some((len, element)) = found else {
            i += 1;
            continue;
        };
        // Elements are ASCII, so these are character boundaries.
        out.push_str(&layout[literal..i]);
        write(&mut out, element, at);
        i += len;
        literal = i;
    }
    out.push_str(&layout[literal..]);
    out
}

fn write(out: &mut String, element: Element, at: OffsetDateTime) {
    use Element::*;
    let hour = i64::from(at.hour());
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };
    let year = i64::from(at.year());
    let yday = i64::from(at.ordinal());
    match element {
        LongMonth => out.push_str(&at.month().to_string()),
        Month => out.push_str(&at.month().to_string()[..3]),
        NumMonth => padded(out, i64::from(u8::from(at.month())), 1),
        ZeroMonth => padded(out, i64::from(u8::from(at.month())), 2),
        LongWeekDay => out.push_str(&at.weekday().to_string()),
        WeekDay => out.push_str(&at.weekday().to_string()[..3]),
        Day => padded(out, i64::from(at.day()), 1),
        UnderDay => out.push_str(&format!("{:>2}", at.day())),
        ZeroDay => padded(out, i64::from(at.day()), 2),
        UnderYearDay => out.push_str(&format!("{yday:>3}")),
        ZeroYearDay => padded(out, yday, 3),
        Hour => padded(out, hour, 2),
        Hour12 => padded(out, hour12, 1),
        ZeroHour12 => padded(out, hour12, 2),
        Minute => padded(out, i64::from(at.minute()), 1),
        ZeroMinute => padded(out, i64::from(at.minute()), 2),
        Second => padded(out, i64::from(at.second()), 1),
        ZeroSecond => padded(out, i64::from(at.second()), 2),
        LongYear => padded(out, year, 4),
        Year => padded(out, year.abs() % 100, 2),
        Pm { upper } => out.push_str(match (hour >= 12, upper) {
            (true, true) => "PM",
            (false, true) => "AM",
            (true, false) => "pm",
            (false, false) => "am",
        }),
        Zone(shown) => out.push_str(shown),
        Fraction {
            separator,
            digits,
            trim,
        } => {
            let nanos = format!("{:09}", at.nanosecond());
            let mut shown = &nanos[..digits.min(9)];
            if trim {
                shown = shown.trim_end_matches('0');
                if shown.is_empty() {
                    return;
                }
            }
            out.push(char::from(separator));
            out.push_str(shown);
        }
    }
}
