//! Fuzzing by property: `cargo fuzz` needs a nightly toolchain that this project's
//! machines cannot fetch, so the loaders and the calendar arithmetic are fuzzed with
//! proptest instead, for a bounded number of cases on every `cargo test` (the inbound
//! pipeline's targets are in `mail_corpus.rs`). `PROPTEST_CASES=100000 cargo test fuzz`
//! runs a longer pass. A crash found here becomes a named regression test at the end
//! of this file.
//!
//! The properties: the procedure and calendar loaders never panic and every error they
//! return names the file it is about; a deadline is never before the dispatch, counts
//! exactly the working days asked for, and skips only non-working days; a reply token
//! made of anything but a minted one never verifies.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc};
use proptest::prelude::*;
use puebla::domain::calendar::Calendars;
use puebla::domain::{ConsultationRef, CountryCode};
use puebla::mail::token::{
    token_in_address, AnswerToken, BounceToken, ConfirmationToken, ReplyTokenV1, StageRef, Token,
    TokenKey,
};
use puebla::workflow::calendars::{load_calendar_file, load_calendars};
use puebla::workflow::procedure::load_procedure;
use puebla::workflow::{DataErrors, SourceFile};

/// 256 cases per target on every `cargo test`; `PROPTEST_CASES` asks for more.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn workflows() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows"))
}

/// Every shipped file of one kind: (path, text).
fn shipped(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("read the workflows folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read a data file");
            (p, text)
        })
        .collect();
    out.sort();
    out
}

fn procedure_files() -> &'static [(PathBuf, String)] {
    static FILES: OnceLock<Vec<(PathBuf, String)>> = OnceLock::new();
    FILES.get_or_init(|| {
        shipped(workflows())
            .into_iter()
            .filter(|(_, text)| text.contains("kind = \"procedure\""))
            .collect()
    })
}

fn calendar_files() -> &'static [(PathBuf, String)] {
    static FILES: OnceLock<Vec<(PathBuf, String)>> = OnceLock::new();
    FILES.get_or_init(|| shipped(&workflows().join("calendars")))
}

fn shipped_calendars() -> &'static Calendars {
    static CALS: OnceLock<Calendars> = OnceLock::new();
    CALS.get_or_init(|| {
        load_calendars(&workflows().join("calendars")).expect("the shipped calendars load")
    })
}

/// Every error names the file it is about, and prints without panicking.
fn errors_name_the_file(errors: &DataErrors, path: &Path) -> Result<(), TestCaseError> {
    prop_assert!(!errors.0.is_empty(), "an Err with no error in it");
    for e in &errors.0 {
        prop_assert_eq!(&e.file, path);
        let shown = e.to_string();
        prop_assert!(
            shown.starts_with(&path.display().to_string()),
            "error does not start with the file: {}",
            shown
        );
    }
    Ok(())
}

/// One edit of a TOML text. Characters come from what TOML gives meaning to, so that
/// mutants reach the loaders' checks instead of stopping at the first syntax error.
#[derive(Debug, Clone)]
enum Edit {
    Replace(prop::sample::Index, char),
    Insert(prop::sample::Index, char),
    Delete(prop::sample::Index),
    DeleteLine(prop::sample::Index),
    DuplicateLine(prop::sample::Index),
    /// The number at this point (if any) becomes this one.
    Number(prop::sample::Index, i64),
    Truncate(prop::sample::Index),
}

fn toml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(vec![
            '=', '"', '\'', '[', ']', '{', '}', ',', '.', '\n', '#', ' ', '-', '+', ':', 'T', 'Z',
            '0', '1', '9', 'e', '_', '\\', 'é', '\u{0}', '\u{feff}', '😀'
        ]),
        any::<char>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    let i = any::<prop::sample::Index>;
    prop_oneof![
        (i(), toml_char()).prop_map(|(a, c)| Edit::Replace(a, c)),
        (i(), toml_char()).prop_map(|(a, c)| Edit::Insert(a, c)),
        i().prop_map(Edit::Delete),
        i().prop_map(Edit::DeleteLine),
        i().prop_map(Edit::DuplicateLine),
        (
            i(),
            prop_oneof![
                -3i64..40,
                Just(i64::MAX),
                Just(i64::MIN),
                Just(u32::MAX as i64 + 1),
                any::<i64>()
            ]
        )
            .prop_map(|(a, n)| Edit::Number(a, n)),
        i().prop_map(Edit::Truncate),
    ]
}

/// Applies `edits` to `text`, always on character boundaries.
fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        match e {
            Edit::Replace(at, c) if !chars.is_empty() => {
                let at = at.index(chars.len());
                chars[at] = *c;
            }
            Edit::Insert(at, c) => {
                let at = at.index(chars.len() + 1);
                chars.insert(at, *c);
            }
            Edit::Delete(at) if !chars.is_empty() => {
                chars.remove(at.index(chars.len()));
            }
            Edit::DeleteLine(at) | Edit::DuplicateLine(at) => {
                let s: String = chars.iter().collect();
                let mut lines: Vec<&str> = s.split('\n').collect();
                let at = at.index(lines.len());
                if matches!(e, Edit::DeleteLine(_)) {
                    lines.remove(at);
                } else {
                    lines.insert(at, lines[at]);
                }
                chars = lines.join("\n").chars().collect();
            }
            Edit::Number(at, n) if !chars.is_empty() => {
                let start = at.index(chars.len());
                if let Some(first) = (start..chars.len()).find(|&k| chars[k].is_ascii_digit()) {
                    let end = (first..chars.len())
                        .find(|&k| !chars[k].is_ascii_digit())
                        .unwrap_or(chars.len());
                    let begin = if first > 0 && chars[first - 1] == '-' {
                        first - 1
                    } else {
                        first
                    };
                    chars.splice(begin..end, n.to_string().chars());
                }
            }
            Edit::Truncate(at) if !chars.is_empty() => {
                chars.truncate(at.index(chars.len()));
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

fn country() -> impl Strategy<Value = CountryCode> {
    prop::sample::select(shipped_calendars().countries())
}

fn time_zone() -> impl Strategy<Value = chrono_tz::Tz> {
    prop::sample::select(vec![
        chrono_tz::America::Tegucigalpa,
        chrono_tz::America::Mexico_City,
        chrono_tz::America::Toronto,
        chrono_tz::America::New_York,
        chrono_tz::America::Santo_Domingo,
        chrono_tz::America::Costa_Rica,
        chrono_tz::America::St_Johns,
        chrono_tz::Pacific::Kiritimati,
        chrono_tz::Pacific::Pago_Pago,
        chrono_tz::UTC,
    ])
}

/// Any instant from 1900 to 2200.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let from = Utc
        .with_ymd_and_hms(1900, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    let to = Utc
        .with_ymd_and_hms(2200, 12, 31, 23, 59, 59)
        .unwrap()
        .timestamp();
    (from..=to, 0u32..1_000_000_000)
        .prop_map(|(s, ns)| DateTime::from_timestamp(s, ns).expect("in range"))
}

fn time_of_day() -> impl Strategy<Value = NaiveTime> {
    (0u32..24, 0u32..60, 0u32..60)
        .prop_map(|(h, m, s)| NaiveTime::from_hms_opt(h, m, s).expect("valid"))
}

/// Checks a deadline against what the calendars say, day by day.
fn check_deadline(
    cals: &Calendars,
    countries: &[CountryCode],
    tz: chrono_tz::Tz,
    from: DateTime<Utc>,
    n: u32,
    end_of_day: NaiveTime,
) -> Result<(), TestCaseError> {
    let Ok(d) = cals.deadline(countries, tz, from, n, end_of_day) else {
        // An error (e.g. no working day within the run a calendar allows) is an answer;
        // a panic is not.
        return Ok(());
    };
    prop_assert_eq!(d.working_days.len(), n as usize);
    if n > 0 {
        prop_assert!(
            d.at >= from,
            "deadline {} before the dispatch {}",
            d.at,
            from
        );
    }
    let start = from.with_timezone(&tz).date_naive();
    let mut previous = start;
    for day in &d.working_days {
        prop_assert!(*day > previous, "working days out of order");
        prop_assert!(
            cals.is_working_day(countries, *day).unwrap_or(false),
            "{} counted but not a working day",
            day
        );
        previous = *day;
    }
    for s in &d.skipped {
        prop_assert!(s.date > start && s.date <= previous);
        prop_assert!(!cals.is_working_day(countries, s.date).unwrap_or(true));
    }
    // Counted and skipped days together are every day after the dispatch day.
    let covered = d.working_days.len() + d.skipped.len();
    prop_assert_eq!(covered as i64, (previous - start).num_days());
    if let Some(last) = d.working_days.last() {
        prop_assert_eq!(d.at.date_naive(), *last);
    }
    Ok(())
}

/// A calendar file built from its grammar, with any values: what the loader must refuse
/// politely, or accept and then compute without overflow.
fn calendar_rule() -> impl Strategy<Value = String> {
    let int = || {
        prop_oneof![
            -5i64..40,
            Just(0i64),
            Just(i64::MAX),
            Just(i64::MIN),
            1500i64..10_100,
            any::<i64>()
        ]
    };
    let weekday = prop::sample::select(vec!["monday", "sun", "fri", "Tuesday", "holiday", "", "7"]);
    let rule = prop::sample::select(vec![
        "fixed",
        "easter",
        "nth_weekday",
        "last_weekday",
        "weekday_on_or_before",
        "weekday_on_or_after",
        "date",
        "lunar",
    ]);
    let shift = prop::sample::select(vec![
        "",
        "observed = \"us\"\n",
        "moved = \"us\"\n",
        "observed = \"weekend_to_monday\"\n",
        "moved = \"tue_wed_thu_to_prev_mon_fri_sun_to_next_mon\"\n",
        "moved = \"tue_wed_to_prev_mon_thu_to_sun_to_next_mon\"\n",
        "observed = \"sunday_to_monday\"\nmoved = \"us\"\n",
        "observed = \"sideways\"\n",
    ]);
    let date = prop::sample::select(vec![
        "2027-03-02",
        "1583-01-01",
        "9999-12-31",
        "2028-02-29",
        "2027-02-29",
        "\"2027-03-02\"",
        "2027-03-02T10:00:00",
    ]);
    (
        rule,
        prop::collection::vec((0usize..8, int()), 0..6),
        weekday,
        shift,
        date,
        prop::option::of((int(), int())),
    )
        .prop_map(|(rule, fields, weekday, shift, date, every)| {
            let names = [
                "month",
                "day",
                "offset",
                "nth",
                "from_year",
                "until_year",
                "year",
                "day",
            ];
            let mut s = format!("[[holiday]]\nname = \"Fuzz day\"\nrule = \"{rule}\"\n");
            let mut seen = std::collections::BTreeSet::new();
            for (k, v) in fields {
                if seen.insert(names[k]) {
                    s.push_str(&format!("{} = {v}\n", names[k]));
                }
            }
            if matches!(
                rule,
                "nth_weekday" | "last_weekday" | "weekday_on_or_before" | "weekday_on_or_after"
            ) {
                s.push_str(&format!("weekday = \"{weekday}\"\n"));
            }
            if rule == "date" {
                s.push_str(&format!("date = {date}\n"));
            }
            if let Some((years, anchor)) = every {
                s.push_str(&format!(
                    "only_every = {{ years = {years}, anchor = {anchor} }}\n"
                ));
            }
            s.push_str(shift);
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn procedure_loader_survives_arbitrary_text(text in ".{0,600}") {
        let path = Path::new("workflows/fuzz.toml");
        if let Err(e) = load_procedure(&SourceFile::new(path, text)) {
            errors_name_the_file(&e, path)?;
        }
    }

    #[test]
    fn procedure_loader_survives_mutated_procedures(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..12),
    ) {
        let (path, text) = pick.get(procedure_files());
        let src = SourceFile::new(path.clone(), mutate(text, &edits));
        if let Err(e) = load_procedure(&src) {
            errors_name_the_file(&e, path)?;
        }
    }

    #[test]
    fn calendar_loader_survives_mutated_calendars(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..12),
        years in prop::collection::vec(1583i32..=9999, 1..4),
        from in instant(),
        n in 1u32..30,
    ) {
        let (path, text) = pick.get(calendar_files());
        let src = SourceFile::new(path.clone(), mutate(text, &edits));
        match load_calendar_file(&src) {
            Err(e) => errors_name_the_file(&e, path)?,
            Ok(cal) => {
                for y in years {
                    let _ = cal.holidays(y);
                }
                let country = cal.country();
                let cals = Calendars::new(vec![cal]);
                check_deadline(&cals, &[country], chrono_tz::UTC, from, n, NaiveTime::MIN)?;
            }
        }
    }

    #[test]
    fn calendar_loader_survives_rules_with_any_values(
        rules in prop::collection::vec(calendar_rule(), 1..5),
        cancelled in prop::option::of(prop::sample::select(vec!["2027-03-02", "9999-12-31", "1583-01-01", "x"])),
        years in prop::collection::vec(prop_oneof![1583i32..=9999, 2020i32..2040], 1..4),
        from in instant(),
        n in 1u32..40,
    ) {
        let mut text = String::from("format = 1\ncountry = \"HN\"\n\n");
        for r in &rules {
            text.push_str(r);
            text.push('\n');
        }
        if let Some(date) = cancelled {
            text.push_str(&format!("[[cancelled]]\ndate = {date}\nreason = \"fuzz\"\n"));
        }
        let path = Path::new("workflows/calendars/hn.toml");
        match load_calendar_file(&SourceFile::new(path, text)) {
            Err(e) => errors_name_the_file(&e, path)?,
            Ok(cal) => {
                for y in years {
                    for h in cal.holidays(y) {
                        // A holiday listed for a year is in that year, or next to it when
                        // an observed day crossed the year end.
                        prop_assert!((h.date.year() - y).abs() <= 1);
                    }
                }
                let cals = Calendars::new(vec![cal]);
                let hn = CountryCode::parse("HN").unwrap();
                check_deadline(&cals, &[hn], chrono_tz::America::Tegucigalpa, from, n, NaiveTime::MIN)?;
            }
        }
    }

    #[test]
    fn deadlines_count_exactly_the_working_days_asked_for(
        countries in prop::collection::vec(country(), 1..5),
        tz in time_zone(),
        from in instant(),
        n in prop_oneof![1u32..=10, 0u32..=400],
        end_of_day in time_of_day(),
    ) {
        check_deadline(shipped_calendars(), &countries, tz, from, n, end_of_day)?;
    }

    #[test]
    fn working_days_before_is_a_working_day_not_after_the_date(
        countries in prop::collection::vec(country(), 1..4),
        date in (1900i32..2200, 1u32..=366).prop_filter_map("a real day", |(y, d)| NaiveDate::from_yo_opt(y, d)),
        n in 0u32..60,
    ) {
        let cals = shipped_calendars();
        if let Ok(day) = cals.working_days_before(&countries, date, n) {
            prop_assert!(day <= date);
            prop_assert!(cals.is_working_day(&countries, day).unwrap());
        }
    }

    #[test]
    fn arbitrary_tokens_never_verify(token in ".{0,80}") {
        let key = TokenKey::new(b"fuzzing secret, long enough");
        prop_assert!(key.verify("RCM", &token).is_err());
        let _ = token_in_address(&token);
    }

    #[test]
    fn base32_shaped_tokens_never_verify(token in "[a-z2-7A-Z]{0,60}") {
        let key = TokenKey::new(b"fuzzing secret, long enough");
        prop_assert!(key.verify("RCM", &token).is_err());
    }

    #[test]
    fn a_minted_token_altered_anywhere_never_verifies(
        year in 2000i32..2255,
        seq in 1u32..65_535,
        number in 0u32..255,
        fp in 0i64..(u32::MAX as i64),
        id in 0i64..(1i64 << 48),
        purpose in 0u8..5,
        country in country(),
        at in any::<prop::sample::Index>(),
        replacement in prop::sample::select(b"abcdefghijklmnopqrstuvwxyz234567".to_vec()),
        other_key in any::<bool>(),
    ) {
        let key = TokenKey::new(b"fuzzing secret, long enough");
        let Ok(reference) = ConsultationRef::new("RCM", year, seq) else {
            return Ok(());
        };
        // Every purpose of version 2, and version 1 (what notices sent before carry).
        let answer = |stage| Token::Answer(AnswerToken { reference: reference.clone(), stage, focal_point_id: fp, country });
        let (token, expected) = match purpose {
            0 | 1 => {
                prop_assume!(number > 0);
                let t = if purpose == 0 {
                    answer(StageRef::Troika { review: Some(number) })
                } else {
                    answer(StageRef::Round { round: number })
                };
                (key.mint(&t).expect("in range"), t)
            }
            2 => {
                let t = Token::Confirmation(ConfirmationToken { inbound_id: id, focal_point_id: fp, country });
                (key.mint(&t).expect("in range"), t)
            }
            3 => {
                let t = Token::Bounce(BounceToken { notice_id: id });
                (key.mint(&t).expect("in range"), t)
            }
            _ => {
                let v1 = ReplyTokenV1 { reference: reference.clone(), round: number, focal_point_id: fp, country };
                let stage = if number == 0 { StageRef::Troika { review: None } } else { StageRef::Round { round: number } };
                (key.mint_v1(&v1).expect("in range"), answer(stage))
            }
        };
        prop_assert_eq!(key.verify("RCM", &token).unwrap(), expected);
        if other_key {
            let other = TokenKey::new(b"another secret entirely");
            prop_assert!(other.verify("RCM", &token).is_err());
        } else {
            let mut bytes = token.into_bytes();
            let at = at.index(bytes.len());
            prop_assume!(bytes[at] != replacement);
            bytes[at] = replacement;
            let altered = String::from_utf8(bytes).unwrap();
            prop_assert!(key.verify("RCM", &altered).is_err(), "{} verified", altered);
        }
    }
}
