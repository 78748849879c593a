//! Reading the times people type: `2026-03-01`, `2026-03-01 14:00`, RFC 3339, `3d`, `2 weeks
//! ago`, `today`, `yesterday`. Dates without a zone are local time.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

#[derive(Debug, thiserror::Error)]
#[error("could not read the time {0:?}: use a date like 2026-03-01, 2026-03-01T14:00, an age like 3d or \"2 weeks ago\", today or yesterday")]
pub struct TimeError(String);

/// Unix seconds as RFC 3339 in UTC, the form every JSON output uses.
pub fn rfc3339(t: i64) -> String {
    DateTime::from_timestamp(t, 0).map(|d| d.to_rfc3339()).unwrap_or_default()
}

/// Unix seconds for `text`, relative ages counted back from `now`.
pub fn parse_time(text: &str, now: DateTime<Local>) -> Result<i64, TimeError> {
    let t = text.trim().to_lowercase();
    let err = || TimeError(text.to_string());
    match t.as_str() {
        "now" => return Ok(now.timestamp()),
        "today" => return local_midnight(now.date_naive()).ok_or_else(err),
        "yesterday" => return local_midnight(now.date_naive().pred_opt().ok_or_else(err)?).ok_or_else(err),
        _ => {}
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(dt.timestamp());
    }
    if let Ok(d) = NaiveDate::parse_from_str(&t, "%Y-%m-%d") {
        return local_midnight(d).ok_or_else(err);
    }
    for fmt in ["%Y-%m-%d %H:%M", "%Y-%m-%dt%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dt%H:%M:%S"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(&t, fmt) {
            return Local.from_local_datetime(&dt).earliest().map(|d| d.timestamp()).ok_or_else(err);
        }
    }
    relative(&t).map(|secs| now.timestamp() - secs).ok_or_else(err)
}

fn local_midnight(d: NaiveDate) -> Option<i64> {
    Local.from_local_datetime(&d.and_time(NaiveTime::MIN)).earliest().map(|d| d.timestamp())
}

/// `3d`, `3 days`, `3 days ago`, `90min` → seconds.
fn relative(t: &str) -> Option<i64> {
    let t = t.strip_suffix("ago").unwrap_or(t).trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().ok()?;
    let unit = unit.trim();
    let secs = match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "wk" | "week" | "weeks" => 7 * 86_400,
        "mo" | "month" | "months" => 30 * 86_400,
        "y" | "yr" | "year" | "years" => 365 * 86_400,
        _ => return None,
    };
    n.checked_mul(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Local> {
        Local.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
    }

    #[test]
    fn ages() {
        let n = now().timestamp();
        assert_eq!(parse_time("3d", now()).unwrap(), n - 3 * 86_400);
        assert_eq!(parse_time("2 weeks ago", now()).unwrap(), n - 14 * 86_400);
        assert_eq!(parse_time("90min", now()).unwrap(), n - 90 * 60);
    }

    #[test]
    fn dates_are_local_midnight() {
        let want = Local.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap().timestamp();
        assert_eq!(parse_time("2026-03-01", now()).unwrap(), want);
        assert_eq!(parse_time("yesterday", now()).unwrap(), Local.with_ymd_and_hms(2026, 3, 9, 0, 0, 0).unwrap().timestamp());
    }

    #[test]
    fn rfc3339_and_datetime() {
        assert_eq!(parse_time("2026-03-01T00:00:00Z", now()).unwrap(), 1772323200);
        let want = Local.with_ymd_and_hms(2026, 3, 1, 14, 30, 0).unwrap().timestamp();
        assert_eq!(parse_time("2026-03-01 14:30", now()).unwrap(), want);
        assert_eq!(parse_time("2026-03-01T14:30", now()).unwrap(), want);
    }

    #[test]
    fn nonsense_is_a_clear_error() {
        let e = parse_time("last blue moon", now()).unwrap_err();
        assert!(e.to_string().contains("2026-03-01"));
    }
}
