//! Time as people read and type it: UTC dates and times from Unix milliseconds, "3m ago", and
//! durations such as `90s`, `2m` or `1h`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// (year, month, day) in UTC of a Unix time in milliseconds.
pub fn civil_date(ms: u64) -> (i64, u32, u32) {
    // Howard Hinnant's days-to-civil algorithm.
    let z = (ms / 86_400_000) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The Unix time in milliseconds at which UTC day `YYYY-MM-DD` starts (the inverse of
/// [`civil_date`]); `None` for anything else.
pub fn parse_date(s: &str) -> Option<u64> {
    let mut parts = s.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || s.len() != 10 {
        return None;
    }
    // Howard Hinnant's days-from-civil algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days).ok().map(|d| d * 86_400_000)
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn format_utc(ms: u64) -> String {
    let (y, mo, d) = civil_date(ms);
    let s = (ms / 1000) % 86_400;
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// How long ago `ms` was, coarsely: `5s ago`, `3m ago`, `2h ago`, `4d ago`.
pub fn ago(ms: u64, now: u64) -> String {
    if ms == 0 {
        return "-".into();
    }
    let s = now.saturating_sub(ms) / 1000;
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// Parses `120`, `120s`, `2m`, `1h`, `1.5s` or `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration; write e.g. 90s, 2m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit '{unit}' in '{s}'; use ms, s, m or h")),
    };
    // Whole milliseconds: what is shown (`config show`) is then exactly what was given.
    let ms = (secs * 1000.0).round();
    if !(1.0..=7.0 * 86_400_000.0).contains(&ms) {
        return Err(format!("'{s}' is out of range: from 1ms to 7 days"));
    }
    Ok(Duration::from_millis(ms as u64))
}

/// The longest age [`parse_age`] takes, in days: a century.
const MAX_AGE_DAYS: u64 = 36_500;

/// An age: a number of days (`30d`, at most [`MAX_AGE_DAYS`]), or a duration as
/// [`parse_duration`] takes it.
pub fn parse_age(s: &str) -> Result<Duration, String> {
    if let Some(days) = s.strip_suffix('d') {
        let d: u64 = days
            .parse()
            .map_err(|_| format!("'{s}' is not a number of days"))?;
        if d > MAX_AGE_DAYS {
            return Err(format!(
                "'{s}' is out of range: at most {MAX_AGE_DAYS}d (a century)"
            ));
        }
        return Ok(Duration::from_secs(d * 86_400));
    }
    parse_duration(s)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_back() {
        for ms in [0u64, 951_782_400_000, 1_796_164_700_000, 4_102_444_800_000] {
            let (y, m, d) = civil_date(ms);
            let start = parse_date(&format!("{y:04}-{m:02}-{d:02}")).unwrap();
            assert_eq!(start, ms - ms % 86_400_000);
        }
        for bad in ["2026-13-01", "2026-1-1", "x", "2026-12-01x", ""] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(format_utc(1_795_176_000_000), "2026-11-20 12:00:00");
        assert_eq!(civil_date(951_782_400_000), (2000, 2, 29));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("120").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("0.4ms").is_err());
        assert_eq!(parse_duration("1.5ms").unwrap(), Duration::from_millis(2));
    }

    #[test]
    fn gc_older_than_a_huge_number_of_days_is_refused_not_overflowed() {
        assert_eq!(parse_age("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(
            parse_age("36500d").unwrap(),
            Duration::from_secs(36_500 * 86_400)
        );
        for huge in ["36501d", "213503982334602d", "18446744073709551615d"] {
            let e = parse_age(huge).unwrap_err();
            assert!(e.contains("out of range"), "{huge}: {e}");
        }
        assert!(parse_age("99999999999999999999d").is_err());
    }

    #[test]
    fn ago_is_coarse() {
        assert_eq!(ago(1_000, 6_000), "5s ago");
        assert_eq!(ago(0, 6_000), "-");
        assert_eq!(ago(1, 7_200_001), "2h ago");
    }
}
