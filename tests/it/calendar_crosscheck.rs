//! Compares the calendars in `workflows/calendars/` with the Python package `holidays`.
//!
//! `tests/fixtures/holidays-2025-2030.json` is written by `scripts/gen_holiday_fixture.py`.
//! For every member and every year 2025–2030 the set of holiday DATES must be equal (names may
//! differ). Every difference must be listed in [`EXCEPTIONS`] with its reason, and every
//! exception must still be needed, so a data file that loses a holiday fails this test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::NaiveDate;
use puebla::domain::CountryCode;
use puebla::workflow::calendars::load_calendars;
use serde::Deserialize;

const MEMBERS: [&str; 11] = [
    "BZ", "CA", "CR", "DO", "SV", "GT", "HN", "MX", "NI", "PA", "US",
];
const YEARS: std::ops::RangeInclusive<i32> = 2025..=2030;

/// Which side has a date the other lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Our calendar has it, `holidays` does not.
    OnlyOurs,
    /// `holidays` has it, our calendar does not.
    #[allow(dead_code)]
    OnlyTheirs,
}

/// A known, deliberate difference: (country, side, the holiday's name on that side, why).
/// The name is matched exactly against our name (OnlyOurs) or the fixture's name (OnlyTheirs).
const EXCEPTIONS: &[(&str, Side, &str, &str)] = &[
    (
        "CA",
        Side::OnlyOurs,
        "Easter Monday",
        // `holidays` models the Canada Labour Code (federally regulated workplaces), not the public service.
        "a designated paid holiday of the federal public service (Treasury Board agreements), not a Labour Code general holiday",
    ),
    (
        "CA",
        Side::OnlyOurs,
        "Civic Holiday",
        "the public service's 'one additional day' in the National Capital Region (Ontario): first Monday of August",
    ),
];

#[derive(Debug, Deserialize)]
struct Fixture {
    holidays_version: String,
    years: Vec<i32>,
    countries: BTreeMap<String, BTreeMap<String, Vec<Entry>>>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    date: NaiveDate,
    name: String,
}

fn fixture() -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/holidays-2025-2030.json");
    let text = std::fs::read_to_string(&path).expect("read the holidays fixture");
    serde_json::from_str(&text).expect("parse the holidays fixture")
}

#[test]
fn calendars_match_the_holidays_package_2025_2030() {
    let fx = fixture();
    assert!(!fx.holidays_version.is_empty());
    assert_eq!(fx.years, YEARS.collect::<Vec<_>>());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/calendars");
    let cals = load_calendars(&dir).unwrap_or_else(|e| panic!("{e}"));

    let mut used = vec![0usize; EXCEPTIONS.len()];
    let mut problems = Vec::new();
    for code in MEMBERS {
        let cc = CountryCode::parse(code).unwrap();
        let cal = cals
            .get(cc)
            .unwrap_or_else(|| panic!("no calendar file for {code}"));
        for year in YEARS {
            let ours: BTreeMap<NaiveDate, String> = cal
                .holidays(year)
                .into_iter()
                .map(|h| (h.date, h.name))
                .collect();
            let theirs: BTreeMap<NaiveDate, Vec<&str>> = fx.countries[code][&year.to_string()]
                .iter()
                .fold(BTreeMap::new(), |mut m, e| {
                    m.entry(e.date)
                        .or_insert_with(Vec::new)
                        .push(e.name.as_str());
                    m
                });
            let our_dates: BTreeSet<_> = ours.keys().copied().collect();
            let their_dates: BTreeSet<_> = theirs.keys().copied().collect();
            for d in our_dates.difference(&their_dates) {
                let name = &ours[d];
                match EXCEPTIONS.iter().position(|(c, s, n, _)| {
                    *c == code && *s == Side::OnlyOurs && name.split("; ").any(|x| x == *n)
                }) {
                    Some(i) => used[i] += 1,
                    None => problems.push(format!(
                        "{code} {d}: we have `{name}`, holidays {} does not",
                        fx.holidays_version
                    )),
                }
            }
            for d in their_dates.difference(&our_dates) {
                let names = &theirs[d];
                match EXCEPTIONS.iter().position(|(c, s, n, _)| {
                    *c == code && *s == Side::OnlyTheirs && names.contains(n)
                }) {
                    Some(i) => used[i] += 1,
                    None => problems.push(format!(
                        "{code} {d}: holidays has {names:?}, our calendar does not"
                    )),
                }
            }
        }
    }
    for (i, n) in used.iter().enumerate() {
        if *n == 0 {
            let (c, s, name, why) = EXCEPTIONS[i];
            problems.push(format!(
                "exception no longer needed: {c} {s:?} `{name}` ({why})"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_member_has_a_calendar_and_nothing_else() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/calendars");
    let cals = load_calendars(&dir).unwrap_or_else(|e| panic!("{e}"));
    let mut expected: Vec<&str> = MEMBERS.to_vec();
    expected.sort();
    let got: Vec<String> = cals.countries().iter().map(ToString::to_string).collect();
    assert_eq!(got, expected);
}
