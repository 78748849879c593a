//! Reading the times people type: `2026-03-01`, `2026-03-01 14:00`, RFC 3339, `3d`, `2 weeks
//! ago`, `today`, `yesterday`; and the stretch of time a question names ("yesterday", "last
//! week", "3 days ago", "上周"). Dates without a zone are local time.

use chrono::{DateTime, Datelike, Duration, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

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

/// A stretch of time a question names, as when the user saw or wrote something: the phrase's
/// byte range in the question and the window it means, `since <= t < until` in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spoken {
    pub start: usize,
    pub end: usize,
    pub since: i64,
    pub until: i64,
}

impl Spoken {
    /// The question with the phrase taken out, for retrieval: no note says "yesterday".
    pub fn strip(&self, question: &str) -> String {
        format!("{} {}", question[..self.start].trim_end(), question[self.end..].trim_start()).trim().to_string()
    }
}

/// The first past stretch of time `question` names, relative to `now`. Only phrases that point
/// back from today are read, not dates or months, which as often say what a note is about ("What
/// renews in October?") as when it was seen.
pub fn spoken_window(question: &str, now: DateTime<Local>) -> Option<Spoken> {
    let lower = question.to_ascii_lowercase();
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in lower.char_indices().chain([(lower.len(), ' ')]) {
        match (c.is_ascii_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    let word: Vec<&str> = words.iter().map(|&(a, b)| &lower[a..b]).collect();
    // "even today", "known as today", "than it is today" mean nowadays.
    const NOWADAYS: [&str; 9] = ["even", "still", "until", "till", "to", "as", "is", "are", "of"];
    for i in 0..word.len() {
        if word[i] == "today" && i > 0 && NOWADAYS.contains(&word[i - 1]) {
            continue;
        }
        if let Some((n, (since, until))) = english_at(&word[i..], now) {
            return Some(Spoken { start: words[i].0, end: words[i + n - 1].1, since, until });
        }
    }
    chinese(question, now)
}

/// Local midnight `days` days from today.
fn midnight(now: DateTime<Local>, days: i64) -> i64 {
    Duration::try_days(days)
        .and_then(|d| now.date_naive().checked_add_signed(d))
        .and_then(local_midnight)
        .unwrap_or_else(|| now.timestamp().saturating_add(days.saturating_mul(86_400)))
}

/// Days `from` to `to` (exclusive) counted from today, midnight to midnight: calendar days, so
/// a stretch across a clock change still starts and ends at midnight.
fn days(now: DateTime<Local>, from: i64, to: i64) -> (i64, i64) {
    (midnight(now, from), midnight(now, to))
}

/// Day `day` from today, from `from` to `to` o'clock (`to` may pass midnight).
fn hours(now: DateTime<Local>, day: i64, from: i64, to: i64) -> (i64, i64) {
    let m = midnight(now, day);
    (m + from * 3600, m + to * 3600)
}

/// Days from today back to this week's Monday (0 on a Monday).
fn since_monday(now: DateTime<Local>) -> i64 {
    now.weekday().num_days_from_monday() as i64
}

fn month_start(now: DateTime<Local>, back: u32) -> i64 {
    let (mut y, mut m) = (now.year(), now.month());
    for _ in 0..back {
        (y, m) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    }
    NaiveDate::from_ymd_opt(y, m, 1).and_then(local_midnight).unwrap_or(now.timestamp())
}

/// English weekday names, Monday first.
pub const WEEKDAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// Days back to the most recent `weekday` (0 = Monday) on or before today, or before today if
/// `strictly`.
fn back_to(now: DateTime<Local>, weekday: i64, strictly: bool) -> i64 {
    match (since_monday(now) - weekday).rem_euclid(7) {
        0 if strictly => 7,
        back => back,
    }
}

/// The most of a unit a spoken time may count back ("500 weeks ago"); larger counts are not
/// read as a time, so no date arithmetic can overflow.
const MOST_COUNTED: i64 = 100_000;

fn count(word: &str) -> Option<i64> {
    const WORDS: [&str; 13] =
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"];
    let n = match word {
        "a" | "an" => Some(1),
        _ => word.parse().ok().or_else(|| WORDS.iter().position(|w| *w == word).map(|n| n as i64)),
    };
    n.filter(|n| (0..=MOST_COUNTED).contains(n))
}

fn unit_seconds(word: &str) -> Option<i64> {
    match word.strip_suffix('s').unwrap_or(word) {
        "hour" => Some(3600),
        "day" => Some(86_400),
        "week" => Some(7 * 86_400),
        "month" => Some(30 * 86_400),
        _ => None,
    }
}

/// A phrase at the start of `w`: how many words it takes and its window.
fn english_at(w: &[&str], now: DateTime<Local>) -> Option<(usize, (i64, i64))> {
    let at = |k: usize| w.get(k).copied().unwrap_or("");
    let part = |word: &str| match word {
        "morning" => Some((0, 12)),
        "afternoon" => Some((12, 18)),
        "evening" => Some((17, 24)),
        "night" => Some((18, 30)),
        _ => None,
    };
    let t = now.timestamp();
    let monday = -since_monday(now);
    let window = match (at(0), at(1)) {
        ("the", "day") if at(2) == "before" && at(3) == "yesterday" => (4, days(now, -2, -1)),
        ("yesterday", p) => match part(p) {
            Some((from, to)) => (2, hours(now, -1, from, to)),
            None => (1, days(now, -1, 0)),
        },
        ("last", "night") => (2, hours(now, -1, 18, 30)),
        ("today", _) => (1, days(now, 0, 1)),
        ("tonight", _) => (1, hours(now, 0, 17, 24)),
        ("this", p) if part(p).is_some() => {
            let (from, to) = part(p)?;
            (2, hours(now, 0, from, to))
        }
        ("this", "week") => (2, days(now, monday, 1)),
        ("last", "week") => (2, days(now, monday - 7, monday)),
        ("this", "month") => (2, (month_start(now, 0), midnight(now, 1))),
        ("last", "month") => (2, (month_start(now, 1), month_start(now, 0))),
        ("last", "weekend") => {
            let saturday = -back_to(now, 5, true);
            (2, days(now, saturday, saturday + 2))
        }
        ("on" | "last", day) if WEEKDAYS.contains(&day) => {
            let k = WEEKDAYS.iter().position(|d| *d == day)? as i64;
            let back = back_to(now, k, at(0) == "last");
            (2, days(now, -back, 1 - back))
        }
        // "in the last 3 days", "over the past week"
        ("the", "last" | "past") => {
            let (n, unit) = match count(at(2)) {
                Some(n) => (n, unit_seconds(at(3))?),
                None => (1, unit_seconds(at(2))?),
            };
            (if count(at(2)).is_some() { 4 } else { 3 }, (t - n * unit, t + 1))
        }
        ("past" | "last", _) if count(at(1)).is_some() && unit_seconds(at(2)).is_some() => {
            (3, (t - count(at(1))? * unit_seconds(at(2))?, t + 1))
        }
        // "3 days ago", "a week ago": that day, or that week or month give or take half of it.
        (n, u) if at(2) == "ago" && count(n).is_some() && unit_seconds(u).is_some() => {
            let (n, unit) = (count(n)?, unit_seconds(u)?);
            match unit {
                86_400 => (3, days(now, -n, 1 - n)),
                3600 => (3, (t - (n + 1) * unit, t - (n - 1).max(0) * unit + 1)),
                _ => (3, (t - n * unit - unit / 2, t - n * unit + unit / 2)),
            }
        }
        ("a", "few") if unit_seconds(at(2)).is_some() && at(3) == "ago" => {
            let unit = unit_seconds(at(2))?;
            (4, (t - 5 * unit, t - unit))
        }
        _ => return None,
    };
    Some(window).filter(|(_, (since, until))| since < until)
}

/// The same for a Chinese question: 昨天, 前天, 今早, 上周, 上周三, 这个月, 三天前, 最近三天 ….
fn chinese(question: &str, now: DateTime<Local>) -> Option<Spoken> {
    const NUMERALS: &str = "零一二两三四五六七八九十";
    let numeral = |s: &str| -> Option<(usize, i64)> {
        let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
        if !digits.is_empty() {
            return digits.parse().ok().filter(|n| (0..=MOST_COUNTED).contains(n)).map(|n| (digits.len(), n));
        }
        let run: Vec<char> = s.chars().take_while(|c| NUMERALS.contains(*c)).collect();
        let value = |c: char| "零一二三四五六七八九".chars().position(|d| d == c).map(|n| n as i64).or((c == '两').then_some(2));
        let n = match run.as_slice() {
            [] => return None,
            ['十'] => 10,
            ['十', b] => 10 + value(*b)?,
            [a, '十'] => value(*a)? * 10,
            [a, '十', b] => value(*a)? * 10 + value(*b)?,
            [a] => value(*a)?,
            _ => return None,
        };
        Some((run.iter().map(|c| c.len_utf8()).sum(), n))
    };
    const WEEKDAY: &str = "一二三四五六日天";
    let t = now.timestamp();
    let monday = -since_monday(now);
    let this_week = days(now, monday, 1);
    let this_month = (month_start(now, 0), midnight(now, 1));
    // Longer phrases before those they start with (昨天上午 before 昨天).
    let fixed: [(&str, (i64, i64)); 18] = [
        ("前天", days(now, -2, -1)),
        ("昨天上午", hours(now, -1, 0, 12)),
        ("昨天下午", hours(now, -1, 12, 18)),
        ("昨天晚上", hours(now, -1, 17, 30)),
        ("昨晚", hours(now, -1, 17, 30)),
        ("昨天", days(now, -1, 0)),
        ("今天上午", hours(now, 0, 0, 12)),
        ("今天下午", hours(now, 0, 12, 18)),
        ("今天晚上", hours(now, 0, 17, 24)),
        ("今早", hours(now, 0, 0, 12)),
        ("今晚", hours(now, 0, 17, 24)),
        ("今天", days(now, 0, 1)),
        ("这周", this_week),
        ("本周", this_week),
        ("这个星期", this_week),
        ("上个月", (month_start(now, 1), month_start(now, 0))),
        ("这个月", this_month),
        ("本月", this_month),
    ];
    let spoken = |start: usize, len: usize, (since, until): (i64, i64)| Some(Spoken { start, end: start + len, since, until });
    for (i, _) in question.char_indices() {
        let rest = &question[i..];
        // 即使在今天, 直到今天: nowadays.
        let nowadays = rest.starts_with("今天") && question[..i].ends_with(['在', '到', '至']);
        if let Some((p, window)) = fixed.iter().find(|(p, _)| rest.starts_with(p)).filter(|_| !nowadays) {
            return spoken(i, p.len(), *window);
        }
        for last_week in ["上个星期", "上个礼拜", "上星期", "上周"] {
            if let Some(after) = rest.strip_prefix(last_week) {
                return match after.chars().next().and_then(|c| Some((c, WEEKDAY.chars().position(|w| w == c)?))) {
                    Some((c, d)) => {
                        let day = monday - 7 + d.min(6) as i64;
                        spoken(i, last_week.len() + c.len_utf8(), days(now, day, day + 1))
                    }
                    None => spoken(i, last_week.len(), days(now, monday - 7, monday)),
                };
            }
        }
        for recent in ["最近", "过去"] {
            if let Some((len, n)) = rest.strip_prefix(recent).and_then(numeral) {
                if rest[recent.len() + len..].starts_with('天') {
                    return spoken(i, recent.len() + len + '天'.len_utf8(), (t - n * 86_400, t + 1));
                }
            }
        }
        if question[..i].chars().next_back().is_none_or(|c| !NUMERALS.contains(c) && !c.is_ascii_digit()) {
            if let Some((len, n)) = numeral(rest) {
                if rest[len..].starts_with("天前") {
                    return spoken(i, len + "天前".len(), days(now, -n, 1 - n));
                }
            }
        }
    }
    None
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
    fn huge_counts_are_no_time_and_never_panic() {
        for q in ["what did I see 999999999 days ago?", "notes from 9223372036854775807 weeks ago", "the last 99999999999 months", "999999999天前的笔记"] {
            assert_eq!(spoken_window(q, now()), None, "{q}");
        }
        for t in ["999999999 days ago", "9223372036854775807s", "99999999999999y"] {
            let _ = parse_time(t, now());
        }
        assert!(midnight(now(), i64::MAX) > 0 && midnight(now(), i64::MIN) < 0);
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

    #[test]
    fn a_question_names_a_stretch_of_time() {
        // Tuesday 10 March 2026, noon.
        let at = |y, m, d, h| Local.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap().timestamp();
        let day = |d| (at(2026, 3, d, 0), at(2026, 3, d + 1, 0));
        let read = |q: &str| spoken_window(q, now()).map(|s| (s.since, s.until));
        let phrase = |q: &str| spoken_window(q, now()).map(|s| q[s.start..s.end].to_string());
        assert_eq!(read("Where did I have lunch yesterday?"), Some(day(9)));
        assert_eq!(phrase("Where did I have lunch yesterday?").unwrap(), "yesterday");
        assert_eq!(read("What did I read yesterday afternoon?"), Some((at(2026, 3, 9, 12), at(2026, 3, 9, 18))));
        assert_eq!(read("What was I doing last night?"), Some((at(2026, 3, 9, 18), at(2026, 3, 10, 6))));
        assert_eq!(read("what did I see the day before yesterday"), Some(day(8)));
        assert_eq!(read("Which page did I open this morning?"), Some((at(2026, 3, 10, 0), at(2026, 3, 10, 12))));
        assert_eq!(read("What did I write last week?"), Some((at(2026, 3, 2, 0), at(2026, 3, 9, 0))));
        assert_eq!(read("What did I buy this month?"), Some((at(2026, 3, 1, 0), at(2026, 3, 11, 0))));
        assert_eq!(read("What did I buy last month?"), Some((at(2026, 2, 1, 0), at(2026, 3, 1, 0))));
        assert_eq!(read("Who mailed me 3 days ago?"), Some(day(7)));
        assert_eq!(read("Who mailed me two days ago?"), Some(day(8)));
        assert_eq!(read("What did I see on Monday?"), Some(day(9)));
        assert_eq!(read("What did I see on Tuesday?"), Some(day(10)));
        assert_eq!(read("What did I see last Tuesday?"), Some(day(3)));
        assert_eq!(read("What did I do last weekend?"), Some((at(2026, 3, 7, 0), at(2026, 3, 9, 0))));
        let n = now().timestamp();
        assert_eq!(read("Which bugs did I fix in the last 3 days?"), Some((n - 3 * 86_400, n + 1)));
        assert_eq!(read("What did I read over the past week?"), Some((n - 7 * 86_400, n + 1)));
        assert_eq!(phrase("What did I read over the past week?").unwrap(), "the past week");
        // Chinese.
        assert_eq!(read("我昨天看的那篇文章讲什么？"), Some(day(9)));
        assert_eq!(phrase("我昨天看的那篇文章讲什么？").unwrap(), "昨天");
        assert_eq!(read("前天开会说了什么"), Some(day(8)));
        assert_eq!(read("上周三的会议纪要"), Some(day(4)));
        assert_eq!(read("上周写了什么"), Some((at(2026, 3, 2, 0), at(2026, 3, 9, 0))));
        assert_eq!(read("三天前收到的邮件"), Some(day(7)));
        assert_eq!(read("最近3天的报销"), Some((n - 3 * 86_400, n + 1)));
        assert_eq!(read("这个月的电费是多少"), Some((at(2026, 3, 1, 0), at(2026, 3, 11, 0))));
        // What a note is about, not when it was seen: left alone.
        for q in [
            "Whose wall has fragments visible around Newcastle even today?",
            "How much lower was the sea than it is today?",
            "即使在今天，什么城墙的碎片仍然可见？",
            "What renews in October?", "When does the tenancy expire in 2027?", "What is due next week?", "Who was the last king?", "桂花糕要蒸多久？", "What did the Monday meeting decide?"] {
            assert_eq!(read(q), None, "{q}");
        }
        let s = spoken_window("Where did I have lunch yesterday?", now()).unwrap();
        assert_eq!(s.strip("Where did I have lunch yesterday?"), "Where did I have lunch ?");
    }
}
