//! What kind of answer a question asks for (an amount, a time of day, a year, a length, a date,
//! a name), and where in a sentence such an answer may start.

use super::ground;
use crate::index::analyze;
use crate::llm::span;
use crate::query::{parse, time};

/// What kind of words a question's answer starts with, where the question makes it plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AnswerKind {
    Figure,
    /// An amount of money: a figure with a currency sign or name.
    Money,
    /// A time of day.
    Clock,
    /// A year: four digits ("1795", "2019年").
    Year,
    /// A date or day: a figure, month or weekday that is not an amount of money.
    Date,
    /// A length of time or of road: a figure and its unit ("42 minutes", "three weeks", "25分钟").
    Length,
    Name,
    Any,
}

impl AnswerKind {
    /// Whether an answer could start at the beginning of `rest`.
    pub(super) fn admits(self, rest: &str) -> bool {
        let word: String = rest.chars().take_while(|c| c.is_alphanumeric()).collect::<String>().to_lowercase();
        let first = rest.chars().next();
        match self {
            AnswerKind::Any => true,
            AnswerKind::Figure => {
                first.is_some_and(|c| c.is_ascii_digit() || "£$€¥".contains(c) || CJK_FIGURE.contains(c))
                    || NUMBER_WORDS.contains(&word.as_str())
                    || ground::MONTHS.contains(&word.as_str())
                    || time::WEEKDAYS.contains(&word.as_str())
            }
            AnswerKind::Money => first.is_some_and(|c| "£$€¥".contains(c)) || figure_then(rest, &CURRENCIES),
            AnswerKind::Clock => {
                let digits = rest.chars().take_while(char::is_ascii_digit).count();
                let hour = rest[..digits].parse::<u32>().is_ok_and(|h| h <= 24);
                let after = &rest[digits..];
                let minutes = after.get(1..3).filter(|m| after.starts_with([':', '.']) && m.chars().all(|c| c.is_ascii_digit()));
                hour && (minutes.is_some_and(|m| m < "60" && !after[3..].starts_with(|c: char| c.is_ascii_digit()))
                    || figure_then(rest, &["am", "pm", "a.m.", "p.m.", "点", "點", "时"]))
            }
            AnswerKind::Year => {
                let digits = rest.chars().take_while(char::is_ascii_digit).count();
                let after = &rest[digits..];
                let figure_goes_on = after.starts_with(['.', ',', ':'])
                    && after[1..].starts_with(|c: char| c.is_ascii_digit());
                digits == 4 && !figure_goes_on
            }
            AnswerKind::Length => figure_then(rest, &LENGTH_UNITS),
            AnswerKind::Date => AnswerKind::Figure.admits(rest) && !AnswerKind::Money.admits(rest),
            AnswerKind::Name => first.is_some_and(|c| c.is_uppercase() || crate::text::is_cjk(c)),
        }
    }

    /// Whether the kind asks for a figure of some sort (an amount, a time, a date …).
    pub(super) fn is_figure(self) -> bool {
        !matches!(self, AnswerKind::Name | AnswerKind::Any)
    }

    /// Whether a bare figure may answer a question of this kind: a receipt's "Total 24.98" is
    /// an amount and "within 6" a length, but a year is four digits and a time of day has its
    /// own shape.
    pub(super) fn takes_a_bare_figure(self) -> bool {
        matches!(self, AnswerKind::Figure | AnswerKind::Money | AnswerKind::Date | AnswerKind::Length)
    }

    /// Whether `sentence` spells out a figure ("two different teams", "the third most
    /// populated"): a number word ("a" aside) or an ordinal.
    pub(super) fn spelled_in(sentence: &str) -> bool {
        const ORDINALS: [&str; 10] = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"];
        sentence.split(|c: char| !c.is_alphanumeric()).map(str::to_lowercase).any(|w| {
            w != "a" && (NUMBER_WORDS.contains(&w.as_str()) || ORDINALS.contains(&w.as_str()))
        })
    }

    /// Whether a quotation of `sentence` could start on an answer of this kind (for Figure:
    /// whether it has any digit or Chinese numeral).
    pub(super) fn found_in(self, sentence: &str) -> bool {
        match self {
            AnswerKind::Figure => sentence.chars().any(|c| c.is_ascii_digit() || CJK_NUMERALS.contains(c)),
            AnswerKind::Money | AnswerKind::Clock | AnswerKind::Year | AnswerKind::Length | AnswerKind::Date => {
                sentence.char_indices().any(|(i, _)| span::may_start_at(sentence, i) && self.admits(&sentence[i..]))
            }
            AnswerKind::Name | AnswerKind::Any => false,
        }
    }
}

const CURRENCIES: [&str; 17] = [
    "gbp", "usd", "eur", "cny", "rmb", "jpy", "chf", "dollars", "dollar", "pounds", "euros", "euro", "元", "块", "美元", "英镑", "欧元",
];

/// Words that ask what something cost. Whole words: "fee" is not in "feel", nor "pay" in
/// "taxpayer". Not "spent" or "rent", which as often ask where or what ("where did I spend the
/// weekend").
pub(super) const MONEY_WORDS: [&str; 17] = [
    "cost", "costs", "price", "priced", "prices", "charge", "charged", "charges", "pay", "paid", "pays", "fee", "bill", "bills",
    "owe", "owed", "owes",
];

/// Units of time and of distance, for "how long".
const LENGTH_UNITS: [&str; 42] = [
    "seconds", "second", "secs", "minutes", "minute", "mins", "min", "hours", "hour", "hrs", "hr", "days", "day", "nights",
    "night", "weeks", "week", "fortnight", "months", "month", "years", "year", "decades", "centuries", "century", "km",
    "kilometres", "kilometers", "miles", "mile", "metres", "meters", "m", "feet", "ft", "秒", "分钟", "小时", "个小时", "天",
    "个月", "年",
];

/// Whether `rest` starts with a figure ("312.40", "1,450", "three", "二十五") followed by one
/// of `units`.
fn figure_then(rest: &str, units: &[&str]) -> bool {
    let mut end = 0;
    for (i, c) in rest.char_indices() {
        if c.is_ascii_digit() {
            end = i + 1;
        } else if !(matches!(c, '.' | ',') && end > 0 && rest[i + 1..].starts_with(|d: char| d.is_ascii_digit())) {
            break;
        }
    }
    if end == 0 {
        let word: String = rest.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>().to_lowercase();
        end = if NUMBER_WORDS.contains(&word.as_str()) && word != "a" {
            word.len()
        } else {
            rest.char_indices().find(|&(_, c)| !CJK_NUMERALS.contains(c)).map_or(rest.len(), |(i, _)| i)
        };
    }
    if end == 0 {
        return false;
    }
    let after = rest[end..].trim_start().to_lowercase();
    units.iter().any(|u| {
        after.starts_with(u) && !after[u.len()..].starts_with(|c: char| c.is_ascii_alphabetic())
    })
}

/// Chinese numerals.
const CJK_NUMERALS: &str = "零〇一二两三四五六七八九十百千万亿半几";

/// Characters a Chinese figure or date starts with: numerals, then 周三, 星期, 今天, 去年 ….
const CJK_FIGURE: &str = "零〇一二两三四五六七八九十百千万亿半几数周星今明昨去前";

const NUMBER_WORDS: [&str; 24] = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "twenty",
    "thirty", "forty", "fifty", "hundred", "thousand", "million", "billion", "half", "a", "several", "dozen",
];

pub(super) fn answer_kind(question: &str) -> AnswerKind {
    let q = question.trim_start().to_lowercase();
    const MONEY_CJK: [&str; 5] = ["多少钱", "费用", "价格", "花了", "价钱"];
    const CLOCK: [&str; 5] = ["what time", "at which time", "几点", "幾點", "什么时间"];
    const YEAR: [&str; 5] = ["what year", "which year", "哪年", "哪一年", "何年"];
    // "When did I pay the deposit?" asks for a date, not the amount.
    const WHEN: [&str; 7] = ["what date", "what day", "which day", "什么时候", "何时", "哪天", "哪一天"];
    const LENGTH: [&str; 4] = ["how long", "多久", "多长时间", "多長時間"];
    let words: Vec<&str> = q.split(|c: char| !c.is_alphanumeric()).collect();
    if CLOCK.iter().any(|w| q.contains(w)) {
        AnswerKind::Clock
    } else if q.starts_with("when") || WHEN.iter().any(|w| q.contains(w)) {
        AnswerKind::Date
    } else if words.iter().any(|w| MONEY_WORDS.contains(w)) || q.contains("how much money") || MONEY_CJK.iter().any(|w| q.contains(w)) {
        AnswerKind::Money
    } else if YEAR.iter().any(|w| q.contains(w)) {
        AnswerKind::Year
    } else if LENGTH.iter().any(|w| q.contains(w)) {
        AnswerKind::Length
    } else if asks_for_figure(question) {
        AnswerKind::Figure
    } else if ["who ", "whom ", "whose ", "where ", "in which country", "in what country", "in which city", "in what city", "what city", "what country", "which city", "which country"]
        .iter()
        .any(|w| q.starts_with(w))
        || q.contains(" who ")
    {
        AnswerKind::Name
    } else {
        AnswerKind::Any
    }
}

/// Whether the question speaks of a date or a stretch of time ("In what era …?").
pub(super) fn asks_for_date(question: &str) -> bool {
    const WORDS: [&str; 12] = ["year", "years", "date", "dates", "time", "times", "century", "decade", "period", "era", "age", "day"];
    let q = question.to_lowercase();
    q.split(|c: char| !c.is_alphanumeric()).any(|w| WORDS.contains(&w)) || asks_for_figure(question)
}

/// Whether `text` says only when: a year or a month, with day numbers and function words
/// ("1975", "In November", "on 3 May 2016").
pub(super) fn only_a_date(text: &str) -> bool {
    let words: Vec<String> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    let year = |w: &str| w.len() == 4 && w.chars().all(|c| c.is_ascii_digit());
    let month = |w: &str| ground::MONTHS.contains(&w);
    let day = |w: &str| w.len() <= 2 && w.chars().all(|c| c.is_ascii_digit());
    words.iter().any(|w| year(w) || month(w))
        && words.iter().all(|w| year(w) || month(w) || day(w) || parse::is_stop_word(&analyze::normalise_word(w)))
}

/// The two answers of a question that asks yes or no ("Is breakfast included?", "是不是要带护照？"),
/// the affirming one first; `None` for any other question, one that offers a choice ("Is it
/// Tuesday or Wednesday?") included. A Chinese question is answered yes or no only in its
/// A-not-A forms, whose answer is plain (是/不是, 有/没有); one that ends in 吗 is answered
/// by repeating its verb, which is left to the quotation.
pub(super) fn yes_or_no(question: &str) -> Option<[&'static str; 2]> {
    const OPENERS: [&str; 18] = [
        "is", "are", "was", "were", "do", "does", "did", "can", "could", "will", "would", "has", "have", "had", "should",
        "shall", "must", "isn't",
    ];
    let q = question.trim().to_lowercase();
    let words: Vec<&str> = q.split(|c: char| !(c.is_alphanumeric() || c == '\'')).filter(|w| !w.is_empty()).collect();
    if words.first().is_some_and(|w| OPENERS.contains(w)) && !words.contains(&"or") {
        return Some(["Yes", "No"]);
    }
    if q.contains("有没有") {
        Some(["有", "没有"])
    } else if q.contains("是不是") || q.contains("是否") {
        Some(["是", "不是"])
    } else {
        None
    }
}

/// Whether the question asks for a number, an amount, a date or a time.
fn asks_for_figure(question: &str) -> bool {
    let q = question.to_lowercase();
    const ASKS: [&str; 28] = [
        "how much", "how many", "how long", "how old", "how far", "how often", "how early", "how late", "how soon",
        "how big", "how large", "how tall", "how high", "how heavy", "how fast", "how deep", "how wide",
        "what year", "what date", "which year", "what day", "多少", "几", "什么时候", "多久", "哪年", "何时", "多长",
    ];
    // Whole words that ask for a measure ("What is the minimum password length?"). Not
    // "minimum" alone ("What must a teacher have, at a minimum?"), and "when" only as the
    // question's first word: within it, it opens a clause ("What happened when …?").
    const MEASURES: [&str; 3] = ["length", "population", "percentage"];
    q.starts_with("when")
        || ASKS.iter().any(|a| q.contains(a))
        || q.split(|c: char| !c.is_alphanumeric()).any(|w| MEASURES.contains(&w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_that_asks_yes_or_no() {
        assert_eq!(yes_or_no("Is breakfast included where I'm staying?"), Some(["Yes", "No"]));
        assert_eq!(yes_or_no("did the optician say Sam needs glasses?"), Some(["Yes", "No"]));
        assert_eq!(yes_or_no("Is the talk on Tuesday or Wednesday?"), None);
        assert_eq!(yes_or_no("What is included in the rent?"), None);
        assert_eq!(yes_or_no("Island hopping: which ferry?"), None);
        assert_eq!(yes_or_no("民宿有没有停车位？"), Some(["有", "没有"]));
        assert_eq!(yes_or_no("去杭州是不是要带护照？"), Some(["是", "不是"]));
        assert_eq!(yes_or_no("Sam 需要配眼镜吗？"), None);
    }

    #[test]
    fn a_question_about_money_wants_an_amount_and_one_about_the_hour_a_time() {
        assert_eq!(answer_kind("What did the mechanic charge for the brakes?"), AnswerKind::Money);
        assert_eq!(answer_kind("How much did the new laptop cost?"), AnswerKind::Money);
        assert_eq!(answer_kind("修车花了多少钱？"), AnswerKind::Money);
        assert_eq!(answer_kind("What time is the dentist appointment?"), AnswerKind::Clock);
        assert_eq!(answer_kind("会议几点开始？"), AnswerKind::Clock);
        assert_eq!(answer_kind("How many interceptions did they get?"), AnswerKind::Figure);
        assert_eq!(answer_kind("How did I feel about the taxpayer meeting?"), AnswerKind::Any);
        assert_eq!(answer_kind("Where did I spend the weekend?"), AnswerKind::Name);
        assert_eq!(answer_kind("How much is the energy bill?"), AnswerKind::Money);
        // When a payment was made is a date, not an amount.
        assert_eq!(answer_kind("When did I pay the deposit?"), AnswerKind::Date);
        assert_eq!(answer_kind("What day is the bill collected?"), AnswerKind::Date);
        let starts = |kind: AnswerKind, s: &str| -> Vec<String> {
            s.char_indices()
                .filter(|&(i, _)| i == 0 || s[..i].ends_with(char::is_whitespace))
                .filter(|&(i, _)| kind.admits(&s[i..]))
                .map(|(i, _)| s[i..].split_whitespace().next().unwrap_or("").to_string())
                .collect()
        };
        let invoice = "Parts and labour for the brakes came to 312.40 GBP within 6 months; the oil change was £64.00.";
        assert_eq!(starts(AnswerKind::Money, invoice), ["312.40", "£64.00."]);
        assert!(AnswerKind::Money.found_in(invoice) && !AnswerKind::Money.found_in("Book the brakes in within six months."));
        let reminder = "Your appointment on Friday 13 March at 08:30, or at 4 pm if you call.";
        assert_eq!(starts(AnswerKind::Clock, reminder), ["08:30,", "4"]);
        assert!(AnswerKind::Clock.found_in("会议改到周三下午3点。") && !AnswerKind::Clock.found_in(invoice));
        assert!(AnswerKind::Figure.found_in("within 6 months"));
        // "how many teams?": "two different teams"; "someone" holds no "one", nor "a" a figure.
        assert!(AnswerKind::spelled_in("He led two different teams to the Super Bowl."));
        assert!(AnswerKind::spelled_in("It is the third most populated megalopolis."));
        assert!(!AnswerKind::spelled_in("Someone left a note.") && !AnswerKind::spelled_in("Oldest quarterback ever."));
        let due = "Amount due: 148.22 GBP, collected by direct debit on 18 March.";
        assert_eq!(starts(AnswerKind::Date, due), ["18", "March."]);
    }

    #[test]
    fn a_bare_date_answers_only_a_question_about_when() {
        assert!(only_a_date("1975") && only_a_date("In November") && only_a_date("on 3 May 2016"));
        assert!(!only_a_date("1975 in order to connect two PDP-11 minicomputers") && !only_a_date("64.00 GBP") && !only_a_date("24"));
        assert!(!asks_for_date("What did DECnet originally do?") && !asks_for_date("Why did Harvard end its early admission program?"));
        assert!(asks_for_date("In what era was the castle built?") && asks_for_date("When did it open?"));
    }

    #[test]
    fn a_question_about_how_long_wants_a_length_of_time_or_road() {
        assert_eq!(answer_kind("How long did the checkout outage last?"), AnswerKind::Length);
        assert_eq!(answer_kind("桂花糕要蒸多久？"), AnswerKind::Length);
        assert!(AnswerKind::Length.admits("42 minutes (14:03 to 14:45 UTC)."));
        assert!(AnswerKind::Length.admits("three weeks; do not book flights"));
        assert!(AnswerKind::Length.admits("二十五分钟，放凉后切块。"));
        assert!(AnswerKind::Length.admits("12 km from the coast"));
        assert!(!AnswerKind::Length.admits("1,900 failed checkouts."));
        assert!(!AnswerKind::Length.admits("5 million people"));
        assert!(!AnswerKind::Length.admits("three cloves of garlic"));
        assert!(AnswerKind::Length.found_in("Duration: 42 minutes.") && !AnswerKind::Length.found_in("Impact: about 1,900 failed checkouts."));
        // A question about when also starts on a weekday.
        assert!(AnswerKind::Figure.admits("Monday between 9 and 12"));
        assert!(asks_for_figure("What is the minimum password length?"));
        assert!(!asks_for_figure("What must a public school teacher have, at a minimum?"));
        assert!(!asks_for_figure("What happened when cyanobacteria was assimilated?"));
    }

    #[test]
    fn a_question_about_the_year_wants_a_year() {
        assert_eq!(answer_kind("In what year did Hutton publish his theory?"), AnswerKind::Year);
        assert_eq!(answer_kind("Which year was the bridge opened?"), AnswerKind::Year);
        assert_eq!(answer_kind("房子是哪一年买的？"), AnswerKind::Year);
        assert_eq!(answer_kind("When was the bridge opened?"), AnswerKind::Date);
        let book = "Hutton published a two-volume version of his theories in 1795, 12 years later.";
        assert!(AnswerKind::Year.admits("1795, 12 years later") && AnswerKind::Year.admits("2019年买的"));
        assert!(!AnswerKind::Year.admits("two-volume") && !AnswerKind::Year.admits("12 years") && !AnswerKind::Year.admits("17950"));
        assert!(!AnswerKind::Year.admits("1,450") && !AnswerKind::Year.admits("312.40"));
        assert!(AnswerKind::Year.found_in(book) && !AnswerKind::Year.found_in("He paid 312.40 GBP for 12 months."));
    }
}
