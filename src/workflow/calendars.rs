//! Loading the holiday calendars in `workflows/calendars/` (one file per country, e.g. `hn.toml`).
//!
//! The format (version 1) is described in `workflows/calendars/README.md`. Every problem is
//! reported with file, line, column and field; all problems of all files are reported at once.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use chrono::{NaiveDate, Weekday};
use serde::Deserialize;
use toml::Spanned;

use super::{DataError, DataErrors, SourceFile};
use crate::domain::calendar::{
    Adjustment, Calendars, HolidayCalendar, HolidayRule, RuleDate, Shift, YearCycle,
};
use crate::domain::country::CountryCode;

/// The only calendar file format this build reads.
pub const CALENDAR_FORMAT: i64 = 1;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    format: Spanned<i64>,
    country: Spanned<String>,
    /// The country's name, for people reading the file.
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<String>,
    /// Where the rules come from (laws, decrees, web pages).
    #[serde(default)]
    #[allow(dead_code)]
    sources: Vec<String>,
    #[serde(default)]
    holiday: Vec<Spanned<RawHoliday>>,
    #[serde(default)]
    cancelled: Vec<Spanned<RawCancelled>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoliday {
    name: Spanned<String>,
    name_es: Option<Spanned<String>>,
    rule: Spanned<String>,
    month: Option<Spanned<i64>>,
    day: Option<Spanned<i64>>,
    date: Option<Spanned<toml::value::Datetime>>,
    offset: Option<Spanned<i64>>,
    weekday: Option<Spanned<String>>,
    nth: Option<Spanned<i64>>,
    from_year: Option<Spanned<i64>>,
    until_year: Option<Spanned<i64>>,
    only_every: Option<Spanned<RawCycle>>,
    except_every: Option<Spanned<RawCycle>>,
    observed: Option<Spanned<String>>,
    moved: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCycle {
    years: i64,
    anchor: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCancelled {
    date: Spanned<toml::value::Datetime>,
    reason: Spanned<String>,
}

/// The rule kinds, with the fields each one needs and the fields it may have besides.
const RULES: &[(&str, &[&str], &[&str])] = &[
    ("fixed", &["month", "day"], YEARLY),
    ("easter", &["offset"], YEARLY),
    (
        "nth_weekday",
        &["month", "weekday", "nth"],
        YEARLY_WITH_OFFSET,
    ),
    ("last_weekday", &["month", "weekday"], YEARLY_WITH_OFFSET),
    ("weekday_on_or_before", &["month", "day", "weekday"], YEARLY),
    ("weekday_on_or_after", &["month", "day", "weekday"], YEARLY),
    ("date", &["date"], &["observed", "moved"]),
];
const YEARLY: &[&str] = &[
    "from_year",
    "until_year",
    "only_every",
    "except_every",
    "observed",
    "moved",
];
const YEARLY_WITH_OFFSET: &[&str] = &[
    "offset",
    "from_year",
    "until_year",
    "only_every",
    "except_every",
    "observed",
    "moved",
];
/// Years outside this range are certainly typing mistakes (and keep the arithmetic far from overflow).
const YEARS: std::ops::RangeInclusive<i64> = 1583..=9999;

/// Loads every `*.toml` file in `dir`; a country may have only one file.
pub fn load_calendars(dir: &Path) -> Result<Calendars, DataErrors> {
    let mut errors = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| DataError {
        file: dir.to_path_buf(),
        line: 0,
        column: 0,
        field: String::new(),
        message: format!("cannot read the calendar directory: {e}"),
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("toml"))
        })
        .collect();
    paths.sort();

    let mut cals = Vec::new();
    let mut seen: BTreeMap<CountryCode, std::path::PathBuf> = BTreeMap::new();
    for path in paths {
        let src = match SourceFile::read(&path) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match load_calendar_file(&src) {
            Ok(cal) => {
                if let Some(first) = seen.get(&cal.country()) {
                    let span = country_span(&src);
                    errors.push(src.error_at(
                        span,
                        "country",
                        format!(
                            "{} already has a calendar in {}; keep one file per country",
                            cal.country(),
                            first.display()
                        ),
                    ));
                } else {
                    seen.insert(cal.country(), path.clone());
                    cals.push(cal);
                }
            }
            Err(e) => errors.extend(e.0),
        }
    }
    if errors.is_empty() {
        Ok(Calendars::new(cals))
    } else {
        Err(DataErrors(errors))
    }
}

/// Where `country = ...` is in a file that already parsed.
fn country_span(src: &SourceFile) -> Range<usize> {
    src.parse_toml::<RawFile>()
        .map_or(0..0, |f| f.country.span())
}

/// Parses and validates one calendar file.
pub fn load_calendar_file(src: &SourceFile) -> Result<HolidayCalendar, DataErrors> {
    let raw: RawFile = src.parse_toml().map_err(|e| name_unknown_field(src, e))?;
    let mut errors = Vec::new();

    if *raw.format.get_ref() != CALENDAR_FORMAT {
        errors.push(src.error_at(
            raw.format.span(),
            "format",
            format!(
                "calendar format {} is not supported: this version of puebla reads format {CALENDAR_FORMAT}",
                raw.format.get_ref()
            ),
        ));
    }
    let country = match CountryCode::parse(raw.country.get_ref()) {
        Ok(c) => {
            let stem = src
                .path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if !stem.eq_ignore_ascii_case(c.as_str()) {
                errors.push(src.error_at(
                    raw.country.span(),
                    "country",
                    format!(
                        "the file for {c} must be named {}.toml (this one is {})",
                        c.as_str().to_ascii_lowercase(),
                        src.path.display()
                    ),
                ));
            }
            Some(c)
        }
        Err(e) => {
            errors.push(src.error_at(raw.country.span(), "country", e.to_string()));
            None
        }
    };

    let mut rules = Vec::new();
    for (i, h) in raw.holiday.iter().enumerate() {
        match rule(src, i, h) {
            Ok(r) => rules.push(r),
            Err(mut e) => errors.append(&mut e),
        }
    }
    let mut cancelled = Vec::new();
    for (i, c) in raw.cancelled.iter().enumerate() {
        let field = format!("cancelled[{i}]");
        let c = c.get_ref();
        if c.reason.get_ref().trim().is_empty() {
            errors.push(src.error_at(
                c.reason.span(),
                &format!("{field}.reason"),
                "say why the day is not a holiday",
            ));
        }
        match local_date(&c.date) {
            Ok(d) => cancelled.push(d),
            Err(m) => errors.push(src.error_at(c.date.span(), &format!("{field}.date"), m)),
        }
    }

    match country {
        Some(country) if errors.is_empty() => {
            Ok(HolidayCalendar::new(country, rules).with_cancelled(cancelled))
        }
        _ => Err(DataErrors(errors)),
    }
}

/// toml's own errors (unknown or missing field, wrong type) do not say which field of which
/// table; name it as `holiday[i].field` from the message or the `key = ...` on the error's line,
/// and the `[[table]]` headers above it.
fn name_unknown_field(src: &SourceFile, mut e: DataError) -> DataErrors {
    let quoted = |prefix: &str| {
        e.message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_string)
    };
    let line_text = src
        .text
        .lines()
        .nth(e.line.saturating_sub(1))
        .unwrap_or_default();
    let key = quoted("unknown field `")
        .or_else(|| quoted("missing field `"))
        .or_else(|| {
            let (k, _) = line_text.split_once('=')?;
            let k = k.trim();
            (!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .then(|| k.to_string())
        });
    let Some(key) = key else {
        return e.into();
    };
    // A missing field is reported at its table's header line, which itself counts.
    let upto = if line_text.trim_start().starts_with("[[") {
        e.line
    } else {
        e.line.saturating_sub(1)
    };
    let mut table = String::new();
    let mut index = 0usize;
    for line in src.text.lines().take(upto) {
        let t = line.trim();
        if let Some(h) = t.strip_prefix("[[").and_then(|t| t.split("]]").next()) {
            index = if table == h.trim() { index + 1 } else { 0 };
            table = h.trim().to_string();
        }
    }
    e.field = if table.is_empty() {
        key
    } else {
        format!("{table}[{index}].{key}")
    };
    e.into()
}

fn rule(
    src: &SourceFile,
    i: usize,
    h: &Spanned<RawHoliday>,
) -> Result<HolidayRule, Vec<DataError>> {
    let at = |field: &str| format!("holiday[{i}].{field}");
    let whole = h.span();
    let h = h.get_ref();
    let mut errors = Vec::new();

    if h.name.get_ref().trim().is_empty() {
        errors.push(src.error_at(h.name.span(), &at("name"), "a holiday needs a name"));
    }
    let present: Vec<(&str, Range<usize>)> = [
        ("month", h.month.as_ref().map(Spanned::span)),
        ("day", h.day.as_ref().map(Spanned::span)),
        ("date", h.date.as_ref().map(Spanned::span)),
        ("offset", h.offset.as_ref().map(Spanned::span)),
        ("weekday", h.weekday.as_ref().map(Spanned::span)),
        ("nth", h.nth.as_ref().map(Spanned::span)),
        ("from_year", h.from_year.as_ref().map(Spanned::span)),
        ("until_year", h.until_year.as_ref().map(Spanned::span)),
        ("only_every", h.only_every.as_ref().map(Spanned::span)),
        ("except_every", h.except_every.as_ref().map(Spanned::span)),
        ("observed", h.observed.as_ref().map(Spanned::span)),
        ("moved", h.moved.as_ref().map(Spanned::span)),
    ]
    .into_iter()
    .filter_map(|(n, s)| s.map(|s| (n, s)))
    .collect();

    let kind = h.rule.get_ref().as_str();
    let Some((_, required, optional)) = RULES.iter().find(|(k, _, _)| *k == kind) else {
        let kinds: Vec<&str> = RULES.iter().map(|(k, _, _)| *k).collect();
        errors.push(src.error_at(
            h.rule.span(),
            &at("rule"),
            format!(
                "unknown rule `{kind}`: expected one of {}",
                kinds.join(", ")
            ),
        ));
        return Err(errors);
    };
    for need in *required {
        if !present.iter().any(|(n, _)| n == need) {
            errors.push(src.error_at(
                whole.clone(),
                &at(need),
                format!("rule `{kind}` needs `{need}`"),
            ));
        }
    }
    for (n, span) in &present {
        if !required.contains(n) && !optional.contains(n) {
            errors.push(src.error_at(
                span.clone(),
                &at(n),
                format!("`{n}` has no meaning for rule `{kind}`"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let month = h.month.as_ref().and_then(|m| {
        let v = *m.get_ref();
        if (1..=12).contains(&v) {
            u32::try_from(v).ok()
        } else {
            errors.push(src.error_at(
                m.span(),
                &at("month"),
                format!("month {v} is not between 1 and 12"),
            ));
            None
        }
    });
    let day = match (&h.day, month) {
        (Some(d), Some(m)) => {
            let v = *d.get_ref();
            // 2001 is not a leap year, so February 29 is refused: it is not a yearly date.
            let valid = u32::try_from(v)
                .ok()
                .filter(|&v| NaiveDate::from_ymd_opt(2001, m, v).is_some());
            if valid.is_none() {
                let msg = if m == 2 && v == 29 {
                    "February 29 is not a yearly date; give a leap-day holiday as rule = \"date\""
                        .to_string()
                } else {
                    format!("day {v} does not exist in month {m}")
                };
                errors.push(src.error_at(d.span(), &at("day"), msg));
            }
            valid
        }
        _ => None,
    };
    let weekday = h.weekday.as_ref().and_then(|w| {
        let parsed = parse_weekday(w.get_ref());
        if parsed.is_none() {
            errors.push(src.error_at(
                w.span(),
                &at("weekday"),
                format!(
                    "`{}` is not a weekday: expected monday, tuesday, ... sunday",
                    w.get_ref()
                ),
            ));
        }
        parsed
    });
    let nth = h.nth.as_ref().and_then(|n| {
        let v = *n.get_ref();
        let ok = u8::try_from(v).ok().filter(|v| (1..=5).contains(v));
        if ok.is_none() {
            errors.push(src.error_at(
                n.span(),
                &at("nth"),
                format!(
                    "nth {v} is not between 1 and 5 (use rule = \"last_weekday\" for the last one)"
                ),
            ));
        }
        ok
    });
    let offset = match &h.offset {
        Some(o) => {
            let v = *o.get_ref();
            match i32::try_from(v).ok().filter(|v| (-366..=366).contains(v)) {
                Some(v) => v,
                None => {
                    errors.push(src.error_at(
                        o.span(),
                        &at("offset"),
                        format!("offset {v} is not between -366 and 366 days"),
                    ));
                    0
                }
            }
        }
        None => 0,
    };
    let date = h.date.as_ref().and_then(|d| match local_date(d) {
        Ok(d) => Some(d),
        Err(m) => {
            errors.push(src.error_at(d.span(), &at("date"), m));
            None
        }
    });
    let mut year = |field: &str, y: &Option<Spanned<i64>>| {
        y.as_ref().and_then(|y| {
            let v = *y.get_ref();
            if YEARS.contains(&v) {
                i32::try_from(v).ok()
            } else {
                errors.push(src.error_at(
                    y.span(),
                    &at(field),
                    format!(
                        "year {v} is not between {} and {}",
                        YEARS.start(),
                        YEARS.end()
                    ),
                ));
                None
            }
        })
    };
    let from_year = year("from_year", &h.from_year);
    let until_year = year("until_year", &h.until_year);
    if let (Some(f), Some(u), Some(span)) = (
        from_year,
        until_year,
        h.until_year.as_ref().map(Spanned::span),
    ) {
        if u < f {
            errors.push(src.error_at(
                span,
                &at("until_year"),
                format!("until_year {u} is before from_year {f}"),
            ));
        }
    }
    let mut cycle = |field: &str, c: &Option<Spanned<RawCycle>>| {
        c.as_ref().and_then(|c| {
            let RawCycle { years, anchor } = *c.get_ref();
            let every = u32::try_from(years).ok().filter(|y| (2..=100).contains(y));
            let anchor_ok = YEARS.contains(&anchor).then(|| i32::try_from(anchor).ok()).flatten();
            match (every, anchor_ok) {
                (Some(every), Some(anchor)) => Some(YearCycle { every, anchor }),
                _ => {
                    errors.push(src.error_at(
                        c.span(),
                        &at(field),
                        format!(
                            "expected {{ years = 2..=100, anchor = a year }}, e.g. {{ years = 6, anchor = 2024 }}; got years = {years}, anchor = {anchor}"
                        ),
                    ));
                    None
                }
            }
        })
    };
    let only_in = cycle("only_every", &h.only_every);
    let except_in = cycle("except_every", &h.except_every);
    let mut shift = |field: &str, s: &Option<Spanned<String>>| -> Option<Shift> {
        let s = s.as_ref()?;
        let v = s.get_ref().as_str();
        if v == "none" {
            return None;
        }
        let parsed = Shift::parse(v);
        if parsed.is_none() {
            let kinds: Vec<&str> = std::iter::once("none")
                .chain(Shift::ALL.iter().map(Shift::as_str))
                .collect();
            errors.push(src.error_at(
                s.span(),
                &at(field),
                format!(
                    "unknown {field} kind `{v}`: expected one of {}",
                    kinds.join(", ")
                ),
            ));
        }
        parsed
    };
    let observed = shift("observed", &h.observed);
    let moved = shift("moved", &h.moved);
    let adjustment = match (observed, moved) {
        (None, None) => Adjustment::None,
        (Some(s), None) => Adjustment::Observed(s),
        (None, Some(s)) => Adjustment::Moved(s),
        (Some(_), Some(_)) => {
            let span = h.moved.as_ref().map_or(whole.clone(), Spanned::span);
            errors.push(src.error_at(
                span,
                &at("moved"),
                "a holiday is either observed on another day as well (`observed`) or moved (`moved`), not both",
            ));
            Adjustment::None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }

    // The presence checks above guarantee the fields each kind needs; a missing one here
    // means a field failed validation, which has already returned.
    let missing = || {
        vec![src.error_at(
            whole.clone(),
            &at("rule"),
            "internal: a required field is missing",
        )]
    };
    let rule_date = match kind {
        "fixed" => RuleDate::Fixed {
            month: month.ok_or_else(missing)?,
            day: day.ok_or_else(missing)?,
        },
        "easter" => RuleDate::Easter { offset },
        "nth_weekday" => RuleDate::NthWeekday {
            month: month.ok_or_else(missing)?,
            weekday: weekday.ok_or_else(missing)?,
            nth: nth.ok_or_else(missing)?,
            offset,
        },
        "last_weekday" => RuleDate::LastWeekday {
            month: month.ok_or_else(missing)?,
            weekday: weekday.ok_or_else(missing)?,
            offset,
        },
        "weekday_on_or_before" => RuleDate::WeekdayOnOrBefore {
            month: month.ok_or_else(missing)?,
            day: day.ok_or_else(missing)?,
            weekday: weekday.ok_or_else(missing)?,
        },
        "weekday_on_or_after" => RuleDate::WeekdayOnOrAfter {
            month: month.ok_or_else(missing)?,
            day: day.ok_or_else(missing)?,
            weekday: weekday.ok_or_else(missing)?,
        },
        _ => RuleDate::Date(date.ok_or_else(missing)?),
    };
    Ok(HolidayRule {
        name: h.name.get_ref().trim().to_string(),
        name_es: h.name_es.as_ref().map(|n| n.get_ref().trim().to_string()),
        date: rule_date,
        adjustment,
        from_year,
        until_year,
        only_in,
        except_in,
    })
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    match s.trim().to_ascii_lowercase().as_str() {
        "monday" | "mon" => Some(Weekday::Mon),
        "tuesday" | "tue" => Some(Weekday::Tue),
        "wednesday" | "wed" => Some(Weekday::Wed),
        "thursday" | "thu" => Some(Weekday::Thu),
        "friday" | "fri" => Some(Weekday::Fri),
        "saturday" | "sat" => Some(Weekday::Sat),
        "sunday" | "sun" => Some(Weekday::Sun),
        _ => None,
    }
}

/// A TOML local date such as `2026-03-02` (no time, no offset).
fn local_date(d: &Spanned<toml::value::Datetime>) -> Result<NaiveDate, String> {
    let v = d.get_ref();
    match (v.date, v.time, v.offset) {
        (Some(date), None, None) => NaiveDate::from_ymd_opt(
            i32::from(date.year),
            u32::from(date.month),
            u32::from(date.day),
        )
        .ok_or_else(|| format!("{v} is not a date")),
        _ => Err(format!(
            "expected a date such as 2026-03-02, without a time: got {v}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(path: &str, text: &str) -> Result<HolidayCalendar, DataErrors> {
        load_calendar_file(&SourceFile::new(path, text))
    }

    fn one_error(path: &str, text: &str) -> DataError {
        let errs = load(path, text).unwrap_err();
        assert_eq!(errs.0.len(), 1, "{errs}");
        errs.0.into_iter().next().unwrap()
    }

    const HEAD: &str = "format = 1\ncountry = \"HN\"\n";

    #[test]
    fn a_small_file_loads() {
        let text = format!(
            "{HEAD}\n[[holiday]]\nname = \"Good Friday\"\nname_es = \"Viernes Santo\"\nrule = \"easter\"\noffset = -2\n\n\
             [[holiday]]\nname = \"Decree\"\nrule = \"date\"\ndate = 2028-02-29\n\n\
             [[cancelled]]\ndate = 2027-01-01\nreason = \"moved by decree\"\n"
        );
        let cal = load("w/hn.toml", &text).unwrap();
        assert_eq!(cal.country().as_str(), "HN");
        assert_eq!(cal.rules().len(), 2);
        assert_eq!(cal.cancelled().len(), 1);
    }

    #[test]
    fn broken_files_name_file_line_and_field() {
        let cases: &[(&str, &str, usize, &str, &str)] = &[
            (
                "bad month",
                "[[holiday]]\nname = \"X\"\nrule = \"fixed\"\nmonth = 13\nday = 1\n",
                7,
                "holiday[0].month",
                "month 13",
            ),
            (
                "unknown field",
                "[[holiday]]\nname = \"X\"\nrule = \"fixed\"\nmonth = 1\nday = 1\n\n[[holiday]]\nname = \"Y\"\nrule = \"fixed\"\nmonth = 2\nday = 1\ncolour = \"red\"\n",
                15,
                "holiday[1].colour",
                "unknown field",
            ),
            (
                "unknown observed kind",
                "[[holiday]]\nname = \"X\"\nrule = \"fixed\"\nmonth = 7\nday = 4\nobserved = \"saturday_to_tuesday\"\n",
                9,
                "holiday[0].observed",
                "unknown observed kind",
            ),
            (
                "leap day as a yearly date",
                "[[holiday]]\nname = \"X\"\nrule = \"fixed\"\nmonth = 2\nday = 29\n",
                8,
                "holiday[0].day",
                "February 29",
            ),
            (
                "nth out of range",
                "[[holiday]]\nname = \"X\"\nrule = \"nth_weekday\"\nmonth = 1\nweekday = \"monday\"\nnth = 6\n",
                9,
                "holiday[0].nth",
                "between 1 and 5",
            ),
            (
                "unknown rule",
                "[[holiday]]\nname = \"X\"\nrule = \"lunar\"\n",
                6,
                "holiday[0].rule",
                "unknown rule",
            ),
            (
                "field foreign to the rule",
                "[[holiday]]\nname = \"X\"\nrule = \"easter\"\noffset = 1\nmonth = 4\n",
                8,
                "holiday[0].month",
                "no meaning",
            ),
            (
                "bad weekday",
                "[[holiday]]\nname = \"X\"\nrule = \"last_weekday\"\nmonth = 5\nweekday = \"lunes\"\n",
                8,
                "holiday[0].weekday",
                "not a weekday",
            ),
            (
                "observed and moved",
                "[[holiday]]\nname = \"X\"\nrule = \"fixed\"\nmonth = 5\nday = 1\nobserved = \"us\"\nmoved = \"sunday_to_monday\"\n",
                10,
                "holiday[0].moved",
                "not both",
            ),
            (
                "wrong type",
                "[[holiday]]\nname = \"X\"\nrule = \"fixed\"\nmonth = \"May\"\nday = 1\n",
                7,
                "holiday[0].month",
                "invalid type",
            ),
            (
                "missing field",
                "[[holiday]]\nname = \"X\"\nrule = \"fixed\"\nmonth = 5\nday = 1\n\n[[holiday]]\nrule = \"easter\"\noffset = 1\n",
                10,
                "holiday[1].name",
                "missing field",
            ),
        ];
        for (what, body, line, field, msg) in cases {
            let e = one_error("workflows/calendars/hn.toml", &format!("{HEAD}\n{body}"));
            let shown = e.to_string();
            assert_eq!(e.line, *line, "{what}: {shown}");
            assert_eq!(e.field, *field, "{what}: {shown}");
            assert!(
                shown.starts_with(&format!("workflows/calendars/hn.toml:{line}:")),
                "{what}: {shown}"
            );
            assert!(
                shown.contains(&format!("field `{field}`")),
                "{what}: {shown}"
            );
            assert!(shown.contains(msg), "{what}: {shown}");
        }
    }

    #[test]
    fn the_file_name_must_match_the_country() {
        let e = one_error("workflows/calendars/gt.toml", HEAD);
        assert_eq!(e.field, "country");
        assert_eq!(e.line, 2);
    }

    #[test]
    fn unknown_formats_are_refused() {
        let e = one_error("hn.toml", "format = 2\ncountry = \"HN\"\n");
        assert_eq!(e.field, "format");
        assert_eq!(e.line, 1);
    }

    #[test]
    fn duplicate_countries_across_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hn.toml"), HEAD).unwrap();
        std::fs::write(dir.path().join("HN.toml"), HEAD).unwrap();
        let errs = load_calendars(dir.path()).unwrap_err();
        assert_eq!(errs.0.len(), 1, "{errs}");
        assert_eq!(errs.0[0].field, "country");
        assert!(
            errs.0[0].message.contains("already has a calendar"),
            "{errs}"
        );
    }

    #[test]
    fn every_error_in_every_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hn.toml"),
            format!("{HEAD}[[holiday]]\nname = \"X\"\nrule = \"fixed\"\nmonth = 0\nday = 1\n[[holiday]]\nname = \"Y\"\nrule = \"nth_weekday\"\nmonth = 1\nweekday = \"mon\"\nnth = 0\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("gt.toml"),
            "format = 1\ncountry = \"XX1\"\n",
        )
        .unwrap();
        let errs = load_calendars(dir.path()).unwrap_err();
        assert_eq!(errs.0.len(), 3, "{errs}");
    }
}
