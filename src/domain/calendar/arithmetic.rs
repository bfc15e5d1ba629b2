//! Counting working days across calendars: is a day a working day under a policy's
//! calendars, and when does a period of N working days end.

use std::collections::{BTreeMap, BTreeSet};

use chrono::offset::LocalResult;
use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;

use super::rules::HolidayCalendar;
use crate::domain::country::CountryCode;

/// How far [`Calendars`] looks for a working day before giving up.
pub const MAX_NON_WORKING_RUN: u32 = 366;

/// The longest period [`Calendars::deadline`] and [`Calendars::working_days_before`] count
/// (about 40 years); more is a typing mistake, not a procedure.
pub const MAX_WORKING_DAYS: u32 = 10_000;

/// A day passed over while counting working days, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedDay {
    pub date: NaiveDate,
    /// `Saturday`, `Sunday`, or the holiday name; under a multi-country policy the countries
    /// follow each name, e.g. `Good Friday (GT, HN, MX)`.
    pub reason: String,
}

/// The end of a period of working days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    pub at: DateTime<Tz>,
    /// The counted days, in order; the last one is the deadline's day.
    pub working_days: Vec<NaiveDate>,
    /// Every non-working day passed over, weekends included, in date order.
    pub skipped: Vec<SkippedDay>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("there is no holiday calendar for {0}")]
    NoCalendar(CountryCode),
    #[error("no country was given to take working days from")]
    NoCountries,
    #[error("no working day for {countries} within {days} days after {after}")]
    NoWorkingDay {
        countries: String,
        after: NaiveDate,
        days: u32,
    },
    #[error("{0} working days is more than the {max} this calendar counts", max = MAX_WORKING_DAYS)]
    TooManyWorkingDays(u32),
    #[error("the date arithmetic left the supported range of dates")]
    OutOfRange,
    #[error("{date} {time} does not exist in {tz} and no earlier time on that day does either")]
    NoLocalTime {
        date: NaiveDate,
        time: NaiveTime,
        tz: Tz,
    },
}

/// One holiday calendar per country.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendars {
    by_country: BTreeMap<CountryCode, HolidayCalendar>,
}

impl Calendars {
    /// Later calendars replace earlier ones for the same country (the loader rejects duplicates).
    pub fn new(cals: Vec<HolidayCalendar>) -> Self {
        Self {
            by_country: cals.into_iter().map(|c| (c.country(), c)).collect(),
        }
    }

    /// Calendars with no holidays at all: only weekends are non-working (for tests).
    pub fn weekends_only(countries: &[CountryCode]) -> Self {
        Self::new(
            countries
                .iter()
                .map(|c| HolidayCalendar::new(*c, Vec::new()))
                .collect(),
        )
    }

    pub fn get(&self, c: CountryCode) -> Option<&HolidayCalendar> {
        self.by_country.get(&c)
    }

    /// The countries that have a calendar, sorted.
    pub fn countries(&self) -> Vec<CountryCode> {
        self.by_country.keys().copied().collect()
    }

    /// The calendars of `countries`, sorted by country and without duplicates.
    fn select(&self, countries: &[CountryCode]) -> Result<Vec<&HolidayCalendar>, CalendarError> {
        if countries.is_empty() {
            return Err(CalendarError::NoCountries);
        }
        let set: BTreeSet<CountryCode> = countries.iter().copied().collect();
        set.into_iter()
            .map(|c| self.get(c).ok_or(CalendarError::NoCalendar(c)))
            .collect()
    }

    /// A day counts only if it is a working day in EVERY listed country (one country for the
    /// `presidency` policy, all members for `all_members`).
    pub fn is_working_day(
        &self,
        countries: &[CountryCode],
        date: NaiveDate,
    ) -> Result<bool, CalendarError> {
        Ok(self.non_working_reason(countries, date)?.is_none())
    }

    /// Why `date` is not a working day for these countries, or None.
    pub fn non_working_reason(
        &self,
        countries: &[CountryCode],
        date: NaiveDate,
    ) -> Result<Option<String>, CalendarError> {
        let cals = self.select(countries)?;
        Ok(reason(&cals, date))
    }

    /// BRIEF section 4: the day of `from` (taken in `tz`) does not count; count the following
    /// `working_days` working days; the deadline is `end_of_day` on the last one, in `tz`.
    /// `working_days == 0` means the end of `from`'s own day.
    pub fn deadline(
        &self,
        countries: &[CountryCode],
        tz: Tz,
        from: DateTime<Utc>,
        working_days: u32,
        end_of_day: NaiveTime,
    ) -> Result<Deadline, CalendarError> {
        let cals = self.select(countries)?;
        if working_days > MAX_WORKING_DAYS {
            return Err(CalendarError::TooManyWorkingDays(working_days));
        }
        let start = from.with_timezone(&tz).date_naive();
        let mut day = start;
        let mut counted = Vec::new();
        let mut skipped = Vec::new();
        let mut run = 0u32;
        while counted.len() < working_days as usize {
            day = day.succ_opt().ok_or(CalendarError::OutOfRange)?;
            match reason(&cals, day) {
                None => {
                    counted.push(day);
                    run = 0;
                }
                Some(why) => {
                    skipped.push(SkippedDay {
                        date: day,
                        reason: why,
                    });
                    run += 1;
                    if run > MAX_NON_WORKING_RUN {
                        return Err(no_working_day(&cals, day, run));
                    }
                }
            }
        }
        let last = counted.last().copied().unwrap_or(start);
        let at = local_instant(tz, last, end_of_day)?;
        Ok(Deadline {
            at,
            working_days: counted,
            skipped,
        })
    }

    /// The working day `n` working days before `date` (n = 0: `date` itself if it is a working
    /// day, else the previous working day).
    pub fn working_days_before(
        &self,
        countries: &[CountryCode],
        date: NaiveDate,
        n: u32,
    ) -> Result<NaiveDate, CalendarError> {
        let cals = self.select(countries)?;
        if n > MAX_WORKING_DAYS {
            return Err(CalendarError::TooManyWorkingDays(n));
        }
        let mut day = date;
        let mut run = 0u32;
        if n == 0 {
            while reason(&cals, day).is_some() {
                day = day.pred_opt().ok_or(CalendarError::OutOfRange)?;
                run += 1;
                if run > MAX_NON_WORKING_RUN {
                    return Err(no_working_day(&cals, day, run));
                }
            }
            return Ok(day);
        }
        let mut count = 0;
        while count < n {
            day = day.pred_opt().ok_or(CalendarError::OutOfRange)?;
            if reason(&cals, day).is_none() {
                count += 1;
                run = 0;
            } else {
                run += 1;
                if run > MAX_NON_WORKING_RUN {
                    return Err(no_working_day(&cals, day, run));
                }
            }
        }
        Ok(day)
    }

    /// Number of working days in (from, to] (0 if to <= from).
    pub fn working_days_between(
        &self,
        countries: &[CountryCode],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<u32, CalendarError> {
        let cals = self.select(countries)?;
        let mut count = 0;
        let mut day = from;
        while day < to {
            day = day.succ_opt().ok_or(CalendarError::OutOfRange)?;
            if reason(&cals, day).is_none() {
                count += 1;
            }
        }
        Ok(count)
    }
}

fn no_working_day(cals: &[&HolidayCalendar], after: NaiveDate, days: u32) -> CalendarError {
    CalendarError::NoWorkingDay {
        countries: cals
            .iter()
            .map(|c| c.country().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        after,
        days,
    }
}

/// Why `date` is not a working day in all of `cals` (sorted by country), or None.
fn reason(cals: &[&HolidayCalendar], date: NaiveDate) -> Option<String> {
    match date.weekday() {
        Weekday::Sat => return Some("Saturday".to_string()),
        Weekday::Sun => return Some("Sunday".to_string()),
        _ => {}
    }
    // Holiday name -> the countries that keep it, in first-seen order.
    let mut names: Vec<(String, Vec<CountryCode>)> = Vec::new();
    for cal in cals {
        for name in cal.holiday_names_on(date) {
            match names.iter_mut().find(|(n, _)| *n == name) {
                Some((_, cs)) => cs.push(cal.country()),
                None => names.push((name, vec![cal.country()])),
            }
        }
    }
    if names.is_empty() {
        return None;
    }
    let parts: Vec<String> = if cals.len() == 1 {
        names.into_iter().map(|(n, _)| n).collect()
    } else {
        names
            .into_iter()
            .map(|(n, cs)| {
                let cs: Vec<String> = cs.iter().map(ToString::to_string).collect();
                format!("{n} ({})", cs.join(", "))
            })
            .collect()
    };
    Some(parts.join("; "))
}

/// `time` on `date` in `tz`. In a repeated hour the later instant is taken; in a skipped hour,
/// the latest valid instant before the wall-clock time (so a deadline never moves later).
pub fn local_instant(
    tz: Tz,
    date: NaiveDate,
    time: NaiveTime,
) -> Result<DateTime<Tz>, CalendarError> {
    let wall = date.and_time(time);
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => Ok(t),
        LocalResult::Ambiguous(a, b) => Ok(a.max(b)),
        LocalResult::None => {
            latest_before_gap(tz, wall).ok_or(CalendarError::NoLocalTime { date, time, tz })
        }
    }
}

/// The latest valid instant whose wall-clock time is before `wall`, searching back up to a day.
fn latest_before_gap(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Tz>> {
    let valid = |w: NaiveDateTime| match tz.from_local_datetime(&w) {
        LocalResult::Single(t) => Some(t),
        LocalResult::Ambiguous(a, b) => Some(a.max(b)),
        LocalResult::None => None,
    };
    // Find a valid minute first, then walk forward second by second to the edge of the gap.
    for minutes in 1..=24 * 60 {
        let w = wall.checked_sub_signed(Duration::minutes(minutes))?;
        if let Some(mut best) = valid(w) {
            let mut probe = w;
            for _ in 0..60 {
                probe = probe.checked_add_signed(Duration::seconds(1))?;
                if probe >= wall {
                    break;
                }
                match valid(probe) {
                    Some(t) => best = t,
                    None => break,
                }
            }
            return Some(best);
        }
    }
    None
}
