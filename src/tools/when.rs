//! Time windows as agents write them: ISO 8601 (`2026-11-21T09:00:00+08:00`, `2026-11-21`),
//! relative (`30m`, `24h`, `7d`, `2w`, `90s` before now), `now`, `today` and `yesterday`
//! (midnight in the server's time zone).

use chrono::{DateTime, Duration, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// How far back a relative span may reach: ten years is beyond any chat history.
const MAX_SPAN_SECS: i64 = 3650 * 86_400;

pub fn parse(input: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = input.trim();
    let lower = s.to_ascii_lowercase();
    let midnight = |days_back: u64| -> Result<DateTime<Utc>, String> {
        let today = now
            .with_timezone(&Local)
            .date_naive()
            .checked_sub_days(chrono::Days::new(days_back))
            .ok_or_else(|| "the date is out of range".to_string())?;
        Local
            .from_local_datetime(&today.and_time(NaiveTime::MIN))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| "cannot resolve midnight in the local time zone".to_string())
    };
    match lower.as_str() {
        "now" => return Ok(now),
        "today" => return midnight(0),
        "yesterday" => return midnight(1),
        _ => {}
    }
    if let Some(unit) = lower.chars().last().filter(|c| "smhdw".contains(*c))
        && let Ok(n) = lower[..lower.len() - 1].trim().parse::<i64>()
    {
        let unit_secs: i64 = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => 604_800,
        };
        // The product is checked before chrono sees it: `100000000d` must be an error, not
        // an overflow panic inside `DateTime - TimeDelta`.
        let secs = n
            .checked_mul(unit_secs)
            .filter(|s| (0..=MAX_SPAN_SECS).contains(s))
            .ok_or_else(|| format!("`{s}` is out of range: spans go back at most 3650 days"))?;
        return now
            .checked_sub_signed(Duration::seconds(secs))
            .ok_or_else(|| format!("`{s}` is out of range"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_time(NaiveTime::MIN).and_utc());
    }
    Err(format!(
        "`{s}` is not a time: use ISO 8601 (2026-11-21T09:00:00+08:00, 2026-11-21), a span back from now (30m, 24h, 7d, 2w), now, today or yesterday"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_absolute_and_named_times() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse("30m", now).unwrap(), now - Duration::minutes(30));
        assert_eq!(parse("24h", now).unwrap(), now - Duration::hours(24));
        assert_eq!(parse("7d", now).unwrap(), now - Duration::days(7));
        assert_eq!(
            parse("2026-11-21T09:00:00+08:00", now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-21T01:00:00+00:00"
        );
        assert_eq!(
            parse("2026-11-21", now).unwrap().to_rfc3339(),
            "2026-11-21T00:00:00+00:00"
        );
        assert!(parse("today", now).unwrap() <= now);
        assert!(parse("yesterday", now).unwrap() < parse("today", now).unwrap());
        assert!(parse("last tuesday", now).unwrap_err().contains("ISO 8601"));
        assert!(parse("-5d", now).is_err());
        for huge in [
            "100000000d",
            "9223372036854775807s",
            "99999999999w",
            "3651d",
        ] {
            assert!(
                parse(huge, now).unwrap_err().contains("out of range"),
                "{huge}"
            );
        }
        assert_eq!(parse("3650d", now).unwrap(), now - Duration::days(3650));
    }
}
