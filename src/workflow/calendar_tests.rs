//! Holiday rules and working-day arithmetic (`domain::calendar`) checked against
//! the shipped calendar data files, loaded by this module's parser. They live here,
//! not in `domain`, because the domain imports nothing from `workflow`.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::domain::calendar::*;
use crate::domain::country::CountryCode;
use crate::workflow::{calendars::load_calendar_file, SourceFile};

/// The shipped data files, compiled in so that these tests do no IO.
const DATA: [(&str, &str); 11] = [
    ("bz", include_str!("../../workflows/calendars/bz.toml")),
    ("ca", include_str!("../../workflows/calendars/ca.toml")),
    ("cr", include_str!("../../workflows/calendars/cr.toml")),
    ("do", include_str!("../../workflows/calendars/do.toml")),
    ("sv", include_str!("../../workflows/calendars/sv.toml")),
    ("gt", include_str!("../../workflows/calendars/gt.toml")),
    ("hn", include_str!("../../workflows/calendars/hn.toml")),
    ("mx", include_str!("../../workflows/calendars/mx.toml")),
    ("ni", include_str!("../../workflows/calendars/ni.toml")),
    ("pa", include_str!("../../workflows/calendars/pa.toml")),
    ("us", include_str!("../../workflows/calendars/us.toml")),
];

fn all() -> Calendars {
    Calendars::new(
        DATA.iter()
            .map(|(code, text)| {
                let src = SourceFile::new(format!("workflows/calendars/{code}.toml"), *text);
                load_calendar_file(&src).unwrap_or_else(|e| panic!("{e}"))
            })
            .collect(),
    )
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn eod() -> NaiveTime {
    NaiveTime::from_hms_opt(23, 59, 59).unwrap()
}

/// `local` (e.g. "2027-03-22T10:00:00") in `tz`, as UTC.
fn at(tz: Tz, local: &str) -> DateTime<Utc> {
    let naive: NaiveDateTime = local.parse().unwrap();
    tz.from_local_datetime(&naive)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn easter_sunday_follows_the_gregorian_computus() {
    for (year, easter) in [
        (2024, "2024-03-31"),
        (2025, "2025-04-20"),
        (2026, "2026-04-05"),
        (2027, "2027-03-28"),
        (2028, "2028-04-16"),
        (2029, "2029-04-01"),
        (2030, "2030-04-21"),
        (2038, "2038-04-25"),
        (2285, "2285-03-22"),
    ] {
        assert_eq!(easter_sunday(year), Some(d(easter)), "{year}");
    }
}

/// (country, date, the holiday name expected on that date, or None for an ordinary day).
#[test]
fn data_files_put_holidays_where_the_law_does() {
    let cals = all();
    let rows: &[(&str, &str, Option<&str>)] = &[
        // Holy Week 2027 (Easter is March 28).
        ("HN", "2027-03-25", Some("Maundy Thursday")),
        ("HN", "2027-03-26", Some("Good Friday")),
        ("HN", "2027-03-27", Some("Holy Saturday")),
        ("HN", "2027-03-29", None),
        ("GT", "2027-03-25", Some("Maundy Thursday")),
        ("GT", "2027-03-26", Some("Good Friday")),
        ("GT", "2027-03-27", Some("Holy Saturday")),
        ("GT", "2027-03-24", None),
        // Two rules on one day are one holiday.
        ("HN", "2028-04-14", Some("Good Friday; Pan American Day")),
        // Honduras' Morazán week: first Wednesday of October and the two days after.
        ("HN", "2025-10-01", Some("Morazán Week")),
        ("HN", "2025-10-03", Some("Morazán Week")),
        ("HN", "2026-10-06", None),
        ("HN", "2026-10-07", Some("Morazán Week")),
        ("HN", "2026-10-08", Some("Morazán Week")),
        ("HN", "2026-10-09", Some("Morazán Week")),
        ("HN", "2026-10-12", None),
        ("HN", "2026-10-21", None),
        // United States: Saturday to Friday, Sunday to Monday, across a year end too.
        ("US", "2026-07-04", Some("Independence Day")),
        ("US", "2026-07-03", Some("Independence Day (observed)")),
        ("US", "2027-07-05", Some("Independence Day (observed)")),
        ("US", "2027-12-24", Some("Christmas Day (observed)")),
        ("US", "2027-12-31", Some("New Year's Day (observed)")),
        ("US", "2028-11-10", Some("Veterans Day (observed)")),
        ("US", "2026-11-26", Some("Thanksgiving Day")),
        ("US", "2027-05-31", Some("Memorial Day")),
        // Canada, federal public service.
        ("CA", "2027-03-29", Some("Easter Monday")),
        ("CA", "2027-05-24", Some("Victoria Day")),
        ("CA", "2026-05-18", Some("Victoria Day")),
        ("CA", "2026-08-03", Some("Civic Holiday")),
        (
            "CA",
            "2025-09-30",
            Some("National Day for Truth and Reconciliation"),
        ),
        (
            "CA",
            "2029-10-01",
            Some("National Day for Truth and Reconciliation (observed)"),
        ),
        ("CA", "2027-11-11", Some("Remembrance Day")),
        ("CA", "2028-11-13", Some("Remembrance Day (observed)")),
        ("CA", "2026-12-28", Some("Boxing Day (observed)")),
        ("CA", "2027-12-27", Some("Christmas Day (observed)")),
        ("CA", "2027-12-28", Some("Boxing Day (observed)")),
        // Mexico's Monday holidays and the change of government every six years.
        ("MX", "2027-02-01", Some("Constitution Day")),
        ("MX", "2027-03-15", Some("Benito Juárez's Birthday")),
        ("MX", "2027-11-15", Some("Revolution Day")),
        ("MX", "2030-10-01", Some("Change of Federal Government")),
        ("MX", "2027-10-01", None),
        ("MX", "2036-10-01", Some("Change of Federal Government")),
        // Guatemala's Army Day moves to a Monday.
        ("GT", "2026-06-29", Some("Army Day")),
        ("GT", "2026-06-30", None),
        ("GT", "2028-07-03", Some("Army Day")),
        // Dominican Republic: moved holidays, except Restoration Day in inauguration years.
        ("DO", "2026-01-05", Some("Epiphany")),
        ("DO", "2026-01-06", None),
        ("DO", "2029-04-30", Some("Labour Day")),
        ("DO", "2028-08-16", Some("Restoration Day")),
        ("DO", "2029-08-20", Some("Restoration Day")),
        ("DO", "2029-08-16", None),
        // Belize moves to the nearest Monday.
        (
            "BZ",
            "2028-03-06",
            Some("National Heroes and Benefactors Day"),
        ),
        ("BZ", "2028-03-09", None),
        ("BZ", "2025-09-22", Some("Independence Day")),
        // Panama keeps a Sunday holiday on the Monday too; Costa Rica's are on their dates.
        ("PA", "2026-12-21", Some("National Mourning Day (observed)")),
        ("PA", "2027-02-09", Some("Carnival Tuesday")),
        (
            "CR",
            "2028-07-25",
            Some("Annexation of the Party of Nicoya"),
        ),
    ];
    for (country, date, expected) in rows {
        let cal = cals.get(cc(country)).unwrap();
        let got = cal.holiday_on(d(date)).map(|h| h.name);
        assert_eq!(got.as_deref(), *expected, "{country} {date}");
        if expected.is_some() {
            assert!(!cal.is_working_day(d(date)), "{country} {date}");
        }
    }
}

#[test]
fn holidays_are_sorted_one_per_date_and_within_the_year() {
    let cals = all();
    for c in cals.countries() {
        for year in 2025..=2030 {
            let hs = cals.get(c).unwrap().holidays(year);
            assert!(hs.windows(2).all(|w| w[0].date < w[1].date), "{c} {year}");
            assert!(hs.iter().all(|h| h.date.year() == year), "{c} {year}");
        }
    }
    let us = cals.get(cc("US")).unwrap();
    assert!(us.holidays(2028).iter().all(|h| h.date != d("2027-12-31")));
    assert_eq!(us.holidays(2028)[0].date, d("2028-01-01"));
    let hn = cals.get(cc("HN")).unwrap();
    assert_eq!(
        hn.holiday_on(d("2027-03-26")).unwrap().name_es.as_deref(),
        Some("Viernes Santo")
    );
}

#[test]
fn acceptance_honduras_holy_week_2027() {
    let cals = all();
    let tz: Tz = "America/Tegucigalpa".parse().unwrap();
    let from = at(tz, "2027-03-22T10:00:00");
    let dl = cals.deadline(&[cc("HN")], tz, from, 5, eod()).unwrap();
    assert_eq!(dl.at.to_rfc3339(), "2027-03-31T23:59:59-06:00");
    assert_eq!(
        dl.working_days,
        [
            "2027-03-23",
            "2027-03-24",
            "2027-03-29",
            "2027-03-30",
            "2027-03-31"
        ]
        .map(d)
    );
    let skipped: Vec<(NaiveDate, &str)> = dl
        .skipped
        .iter()
        .map(|s| (s.date, s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            (d("2027-03-25"), "Maundy Thursday"),
            (d("2027-03-26"), "Good Friday"),
            (d("2027-03-27"), "Saturday"),
            (d("2027-03-28"), "Sunday"),
        ]
    );
    // The inverse questions agree with the deadline.
    let hn = [cc("HN")];
    assert_eq!(
        cals.working_days_before(&hn, d("2027-03-31"), 5).unwrap(),
        d("2027-03-22")
    );
    assert_eq!(
        cals.working_days_between(&hn, d("2027-03-22"), d("2027-03-31"))
            .unwrap(),
        5
    );
    assert_eq!(
        cals.working_days_between(&hn, d("2027-03-31"), d("2027-03-22"))
            .unwrap(),
        0
    );
    assert_eq!(
        cals.working_days_before(&hn, d("2027-03-28"), 0).unwrap(),
        d("2027-03-24")
    );
    assert_eq!(
        cals.working_days_before(&hn, d("2027-03-29"), 0).unwrap(),
        d("2027-03-29")
    );
    assert_eq!(
        cals.working_days_before(&hn, d("2027-03-29"), 1).unwrap(),
        d("2027-03-24")
    );
}

#[test]
fn a_deadline_can_cross_the_year_end() {
    let cals = all();
    let tz: Tz = "America/Tegucigalpa".parse().unwrap();
    let from = at(tz, "2026-12-23T10:00:00");
    let five = cals.deadline(&[cc("HN")], tz, from, 5, eod()).unwrap();
    assert_eq!(five.at.to_rfc3339(), "2026-12-31T23:59:59-06:00");
    let six = cals.deadline(&[cc("HN")], tz, from, 6, eod()).unwrap();
    assert_eq!(six.at.to_rfc3339(), "2027-01-04T23:59:59-06:00");
    assert_eq!(
        six.working_days,
        [
            "2026-12-24",
            "2026-12-28",
            "2026-12-29",
            "2026-12-30",
            "2026-12-31",
            "2027-01-04"
        ]
        .map(d)
    );
    let skipped: Vec<(NaiveDate, &str)> = six
        .skipped
        .iter()
        .map(|s| (s.date, s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            (d("2026-12-25"), "Christmas Day"),
            (d("2026-12-26"), "Saturday"),
            (d("2026-12-27"), "Sunday"),
            (d("2027-01-01"), "New Year's Day"),
            (d("2027-01-02"), "Saturday"),
            (d("2027-01-03"), "Sunday"),
        ]
    );
}

#[test]
fn all_members_is_later_than_presidency_when_another_member_rests() {
    let cals = all();
    let tz: Tz = "America/Tegucigalpa".parse().unwrap();
    let from = at(tz, "2027-03-22T10:00:00");
    let presidency = CalendarPolicy::Presidency.countries(cc("HN"), &cals.countries());
    let members = CalendarPolicy::AllMembers.countries(cc("HN"), &cals.countries());
    assert_eq!(presidency, [cc("HN")]);
    assert_eq!(members.len(), 11);
    let p = cals.deadline(&presidency, tz, from, 5, eod()).unwrap();
    let a = cals.deadline(&members, tz, from, 5, eod()).unwrap();
    assert!(a.at > p.at);
    assert_eq!(a.at.to_rfc3339(), "2027-04-01T23:59:59-06:00");
    let reasons: Vec<(NaiveDate, &str)> = a
        .skipped
        .iter()
        .map(|s| (s.date, s.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (d("2027-03-25"), "Maundy Thursday (CR, GT, HN, NI, SV)"),
            (
                d("2027-03-26"),
                "Good Friday (BZ, CA, CR, DO, GT, HN, NI, PA, SV)"
            ),
            (d("2027-03-27"), "Saturday"),
            (d("2027-03-28"), "Sunday"),
            (d("2027-03-29"), "Easter Monday (BZ, CA)"),
        ]
    );
    assert!(!cals.is_working_day(&members, d("2027-03-29")).unwrap());
    assert!(cals.is_working_day(&presidency, d("2027-03-29")).unwrap());
}

#[test]
fn zero_working_days_is_the_end_of_the_dispatch_day() {
    let cals = all();
    let tz: Tz = "America/Tegucigalpa".parse().unwrap();
    // 2027-03-26 03:00 UTC is still March 25 (Maundy Thursday) in Tegucigalpa.
    let from: DateTime<Utc> = "2027-03-26T03:00:00Z".parse().unwrap();
    let dl = cals.deadline(&[cc("HN")], tz, from, 0, eod()).unwrap();
    assert_eq!(dl.at.to_rfc3339(), "2027-03-25T23:59:59-06:00");
    assert!(dl.working_days.is_empty() && dl.skipped.is_empty());
}

#[test]
fn unknown_or_missing_countries_are_errors() {
    let cals = all();
    assert!(matches!(
        cals.is_working_day(&[cc("FR")], d("2027-03-22")),
        Err(CalendarError::NoCalendar(c)) if c == cc("FR")
    ));
    assert!(matches!(
        cals.non_working_reason(&[], d("2027-03-22")),
        Err(CalendarError::NoCountries)
    ));
    let tz: Tz = "America/Tegucigalpa".parse().unwrap();
    let from: DateTime<Utc> = "2027-03-22T16:00:00Z".parse().unwrap();
    assert!(matches!(
        cals.deadline(&[cc("HN")], tz, from, u32::MAX, eod()),
        Err(CalendarError::TooManyWorkingDays(_))
    ));
}

#[test]
fn a_calendar_without_working_days_is_an_error_not_a_hang() {
    let mut rules = Vec::new();
    for month in 1..=12 {
        for day in 1..=31 {
            if NaiveDate::from_ymd_opt(2001, month, day).is_some() {
                rules.push(HolidayRule::new(
                    "Every day",
                    RuleDate::Fixed { month, day },
                ));
            }
        }
    }
    let cals = Calendars::new(vec![HolidayCalendar::new(cc("XX"), rules)]);
    let tz: Tz = "UTC".parse().unwrap();
    let from: DateTime<Utc> = "2025-03-01T12:00:00Z".parse().unwrap();
    let err = cals.deadline(&[cc("XX")], tz, from, 1, eod()).unwrap_err();
    assert!(matches!(err, CalendarError::NoWorkingDay { .. }), "{err}");
    let err = cals
        .working_days_before(&[cc("XX")], d("2026-02-27"), 0)
        .unwrap_err();
    assert!(matches!(err, CalendarError::NoWorkingDay { .. }), "{err}");
}

#[test]
fn cancelled_dates_and_dated_decrees() {
    let cal = HolidayCalendar::new(
        cc("GT"),
        vec![
            HolidayRule::new("Army Day", RuleDate::Fixed { month: 6, day: 30 }),
            HolidayRule::new("Army Day (decree)", RuleDate::Date(d("2031-07-04"))),
        ],
    )
    .with_cancelled([d("2031-06-30")]);
    assert!(cal.is_working_day(d("2031-06-30")));
    assert!(!cal.is_working_day(d("2031-07-04")));
    assert_eq!(
        cal.holiday_on(d("2030-06-30")).map(|h| h.name).as_deref(),
        Some("Army Day")
    );
    assert_eq!(cal.holidays(2031).len(), 1);
    assert_eq!(cal.holidays(2032).len(), 1);
}

#[test]
fn local_times_in_gaps_and_overlaps_never_panic() {
    let ny: Tz = "America/New_York".parse().unwrap();
    // 02:30 does not exist on 2026-03-08: the latest instant before the gap is 01:59:59 EST.
    let t = local_instant(
        ny,
        d("2026-03-08"),
        NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
    )
    .unwrap();
    assert_eq!(t.to_rfc3339(), "2026-03-08T01:59:59-05:00");
    // 01:30 happens twice on 2026-11-01: the later one (EST) is taken.
    let t = local_instant(
        ny,
        d("2026-11-01"),
        NaiveTime::from_hms_opt(1, 30, 0).unwrap(),
    )
    .unwrap();
    assert_eq!(t.to_rfc3339(), "2026-11-01T01:30:00-05:00");
    // Mexico City still had daylight saving time in 2022.
    let mx: Tz = "America/Mexico_City".parse().unwrap();
    let t = local_instant(
        mx,
        d("2022-04-03"),
        NaiveTime::from_hms_opt(2, 15, 0).unwrap(),
    )
    .unwrap();
    assert_eq!(t.to_rfc3339(), "2022-04-03T01:59:59-06:00");
    // Through the deadline API as well.
    let cals = all();
    let from: DateTime<Utc> = "2026-03-08T12:00:00Z".parse().unwrap();
    let dl = cals
        .deadline(
            &[cc("US")],
            ny,
            from,
            0,
            NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
        )
        .unwrap();
    assert_eq!(dl.at.to_rfc3339(), "2026-03-08T01:59:59-05:00");
}

#[test]
fn policies_serialise_in_snake_case() {
    assert_eq!(
        serde_json::to_string(&CalendarPolicy::AllMembers).unwrap(),
        "\"all_members\""
    );
    assert_eq!(
        serde_json::from_str::<CalendarPolicy>("\"presidency\"").unwrap(),
        CalendarPolicy::Presidency
    );
}

#[test]
fn shifts_round_trip_their_names() {
    for s in Shift::ALL {
        assert_eq!(Shift::parse(s.as_str()), Some(s));
    }
    assert_eq!(Shift::parse("none"), None);
}
