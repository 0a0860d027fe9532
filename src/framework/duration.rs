//! Durations as Vault accepts them: an integer number of seconds, or Go's
//! duration syntax (`90s`, `1h30m`, `1.5h`) plus a `d` (day) unit.

use std::time::Duration;

/// Longest duration any field accepts: beyond this a value is a typo.
pub const MAX: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Duration::ZERO);
    }
    if let Ok(seconds) = text.parse::<i64>() {
        return from_seconds(seconds);
    }
    if text.starts_with('-') {
        return Err("must not be negative".into());
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    let mut total_nanos: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err("is not a duration".into());
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            "" => return Err("has a number without a unit (use s, m, h or d)".into()),
            _ => return Err(format!("has an unknown unit {unit:?} (use s, m, h or d)")),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| "is too large".to_string())?
        };
        let mut nanos = whole.checked_mul(unit_nanos).ok_or("is too large")?;
        let mut scale = unit_nanos;
        for digit in fraction.chars().take(18) {
            scale /= 10;
            nanos += u128::from(digit.to_digit(10).unwrap_or(0)) * scale;
        }
        total_nanos = total_nanos.checked_add(nanos).ok_or("is too large")?;
        if total_nanos > MAX.as_nanos() {
            return Err(too_large());
        }
        rest = after;
    }
    Ok(Duration::from_nanos(
        u64::try_from(total_nanos).map_err(|_| too_large())?,
    ))
}

pub fn from_seconds(seconds: i64) -> Result<Duration, String> {
    if seconds < 0 {
        return Err("must not be negative".into());
    }
    let duration = Duration::from_secs(seconds.unsigned_abs());
    if duration > MAX {
        return Err(too_large());
    }
    Ok(duration)
}

fn too_large() -> String {
    "is too large (the limit is 100 years)".into()
}

/// Formats like Go's `time.Duration.String()` for whole seconds: `1h30m0s`.
pub fn format(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seconds_and_go_syntax() {
        assert_eq!(parse("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse(""), Ok(Duration::ZERO));
        assert_eq!(parse(" 90s "), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn rejects_bad_negative_and_absurd_values() {
        assert!(parse("abc").is_err());
        assert!(parse("10").is_ok());
        assert!(parse("10x").unwrap_err().contains("unknown unit"));
        assert!(parse("1.2.3s").is_err());
        assert!(parse("h").is_err());
        assert!(parse("5m3").unwrap_err().contains("without a unit"));
        assert!(parse("-1").unwrap_err().contains("negative"));
        assert!(parse("-1h").unwrap_err().contains("negative"));
        assert!(
            parse("999999999999999999999h")
                .unwrap_err()
                .contains("too large")
        );
        assert!(parse("36501d").unwrap_err().contains("too large"));
        assert!(parse(&"9".repeat(5000)).is_err());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(Duration::from_secs(5_400)), "1h30m0s");
        assert_eq!(format(Duration::from_secs(61)), "1m1s");
        assert_eq!(format(Duration::from_secs(5)), "5s");
    }
}
