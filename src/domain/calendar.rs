//! Public-holiday calendars and working-day deadline arithmetic.
//!
//! A [`HolidayCalendar`] holds one Member Country's holiday rules (fixed dates,
//! Easter-relative days, nth/last weekday rules, observed-day shifts and dated
//! decrees). [`Calendars`] holds one calendar per country and answers the
//! questions the procedure asks: is this a working day under a calendar policy,
//! and when does a period of N working days end.
//!
//! Saturdays and Sundays are never working days. Everything here is pure: the
//! current time is always a parameter.

use std::collections::{BTreeMap, BTreeSet};

use chrono::offset::LocalResult;
use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;

use super::country::CountryCode;

/// How far [`Calendars`] looks for a working day before giving up.
pub const MAX_NON_WORKING_RUN: u32 = 366;

/// The longest period [`Calendars::deadline`] and [`Calendars::working_days_before`] count
/// (about 40 years); more is a typing mistake, not a procedure.
pub const MAX_WORKING_DAYS: u32 = 10_000;

/// One holiday on one date. When several rules fall on the same date their names are joined with `; `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    pub date: NaiveDate,
    pub name: String,
    /// The Spanish name(s), when the data file gives them.
    pub name_es: Option<String>,
}

/// Which day of a year a rule falls on, before any observed or moved shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleDate {
    /// The same month and day every year (never February 29: use [`RuleDate::Date`]).
    Fixed { month: u32, day: u32 },
    /// Easter Sunday plus `offset` days (-3 Maundy Thursday, -2 Good Friday, +1 Easter Monday).
    Easter { offset: i32 },
    /// The `nth` (1..=5) `weekday` of `month`, plus `offset` days; no holiday in a year without a 5th one.
    NthWeekday {
        month: u32,
        weekday: Weekday,
        nth: u8,
        offset: i32,
    },
    /// The last `weekday` of `month`, plus `offset` days.
    LastWeekday {
        month: u32,
        weekday: Weekday,
        offset: i32,
    },
    /// The `weekday` on or before `month`/`day` (Canada's Victoria Day: the Monday on or before May 24).
    WeekdayOnOrBefore {
        month: u32,
        day: u32,
        weekday: Weekday,
    },
    /// The `weekday` on or after `month`/`day`.
    WeekdayOnOrAfter {
        month: u32,
        day: u32,
        weekday: Weekday,
    },
    /// One dated entry, e.g. a holiday a government decrees for one year.
    Date(NaiveDate),
}

crate::named_enum! {
    /// A weekday-dependent shift of a holiday, as the laws of the members define it;
    /// named in data files by its wire name.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Shift {
        /// Saturday to the Friday before, Sunday to the Monday after.
        Us => "us",
        SundayToMonday => "sunday_to_monday",
        /// Saturday or Sunday to the Monday after.
        WeekendToMonday => "weekend_to_monday",
        /// Belize, Cap. 289.
        TueWedThuToPrevMonFriSunToNextMon => "tue_wed_thu_to_prev_mon_fri_sun_to_next_mon",
        /// Dominican Republic, Law 139-97.
        TueWedToPrevMonThuFriToNextMon => "tue_wed_to_prev_mon_thu_fri_to_next_mon",
        /// Dominican Republic's Labour Day.
        TueWedToPrevMonThuFriSunToNextMon => "tue_wed_to_prev_mon_thu_fri_sun_to_next_mon",
        /// Guatemala, Decree 19-2018.
        TueWedToPrevMonThuToSunToNextMon => "tue_wed_to_prev_mon_thu_to_sun_to_next_mon",
    }
}

impl Shift {
    /// The shift with this name in a data file.
    pub fn parse(s: &str) -> Option<Shift> {
        Shift::from_name(s).ok()
    }

    /// Days to add to a holiday that falls on `wd` (0: it stays).
    pub fn offset(&self, wd: Weekday) -> i64 {
        use Weekday::*;
        match (self, wd) {
            (Shift::Us, Sat) => -1,
            (Shift::Us, Sun) => 1,
            (Shift::Us, _) => 0,
            (Shift::SundayToMonday, Sun) => 1,
            (Shift::SundayToMonday, _) => 0,
            (Shift::WeekendToMonday, Sat) => 2,
            (Shift::WeekendToMonday, Sun) => 1,
            (Shift::WeekendToMonday, _) => 0,
            (Shift::TueWedThuToPrevMonFriSunToNextMon, Tue) => -1,
            (Shift::TueWedThuToPrevMonFriSunToNextMon, Wed) => -2,
            (Shift::TueWedThuToPrevMonFriSunToNextMon, Thu) => -3,
            (Shift::TueWedThuToPrevMonFriSunToNextMon, Fri) => 3,
            (Shift::TueWedThuToPrevMonFriSunToNextMon, Sun) => 1,
            (Shift::TueWedThuToPrevMonFriSunToNextMon, Mon | Sat) => 0,
            (Shift::TueWedToPrevMonThuFriToNextMon, Tue) => -1,
            (Shift::TueWedToPrevMonThuFriToNextMon, Wed) => -2,
            (Shift::TueWedToPrevMonThuFriToNextMon, Thu) => 4,
            (Shift::TueWedToPrevMonThuFriToNextMon, Fri) => 3,
            (Shift::TueWedToPrevMonThuFriToNextMon, Mon | Sat | Sun) => 0,
            (Shift::TueWedToPrevMonThuFriSunToNextMon, Tue) => -1,
            (Shift::TueWedToPrevMonThuFriSunToNextMon, Wed) => -2,
            (Shift::TueWedToPrevMonThuFriSunToNextMon, Thu) => 4,
            (Shift::TueWedToPrevMonThuFriSunToNextMon, Fri) => 3,
            (Shift::TueWedToPrevMonThuFriSunToNextMon, Sun) => 1,
            (Shift::TueWedToPrevMonThuFriSunToNextMon, Mon | Sat) => 0,
            (Shift::TueWedToPrevMonThuToSunToNextMon, Tue) => -1,
            (Shift::TueWedToPrevMonThuToSunToNextMon, Wed) => -2,
            (Shift::TueWedToPrevMonThuToSunToNextMon, Thu) => 4,
            (Shift::TueWedToPrevMonThuToSunToNextMon, Fri) => 3,
            (Shift::TueWedToPrevMonThuToSunToNextMon, Sat) => 2,
            (Shift::TueWedToPrevMonThuToSunToNextMon, Sun) => 1,
            (Shift::TueWedToPrevMonThuToSunToNextMon, Mon) => 0,
        }
    }
}

/// What happens to a holiday that a shift applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Adjustment {
    /// The holiday is on its date, whatever the weekday.
    #[default]
    None,
    /// The holiday stays on its date and, when the shift applies, the shifted day is a holiday
    /// too (named "… (observed)"). If that day is already a holiday or a weekend day, the
    /// observed day moves on in the same direction to the next free weekday, as Canada's
    /// Christmas and Boxing Day do.
    Observed(Shift),
    /// The holiday itself moves to the shifted day; its own date is then an ordinary day.
    Moved(Shift),
}

/// Years in a fixed cycle: `anchor`, `anchor ± every`, `anchor ± 2·every`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearCycle {
    pub every: u32,
    pub anchor: i32,
}

impl YearCycle {
    pub fn contains(&self, year: i32) -> bool {
        self.every > 0
            && (i64::from(year) - i64::from(self.anchor)).rem_euclid(i64::from(self.every)) == 0
    }
}

/// One rule of a calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolidayRule {
    pub name: String,
    pub name_es: Option<String>,
    pub date: RuleDate,
    pub adjustment: Adjustment,
    /// First and last year the rule applies (inclusive); ignored by [`RuleDate::Date`].
    pub from_year: Option<i32>,
    pub until_year: Option<i32>,
    /// The rule applies only in these years (e.g. Mexico's inauguration day, every 6 years from 2024).
    pub only_in: Option<YearCycle>,
    /// The rule does not apply in these years.
    pub except_in: Option<YearCycle>,
}

impl HolidayRule {
    /// A rule with no shift and no year limits.
    pub fn new(name: impl Into<String>, date: RuleDate) -> Self {
        Self {
            name: name.into(),
            name_es: None,
            date,
            adjustment: Adjustment::None,
            from_year: None,
            until_year: None,
            only_in: None,
            except_in: None,
        }
    }

    pub fn observed(mut self, shift: Shift) -> Self {
        self.adjustment = Adjustment::Observed(shift);
        self
    }

    pub fn moved(mut self, shift: Shift) -> Self {
        self.adjustment = Adjustment::Moved(shift);
        self
    }

    pub fn years(mut self, from: Option<i32>, until: Option<i32>) -> Self {
        self.from_year = from;
        self.until_year = until;
        self
    }

    fn applies_in(&self, year: i32) -> bool {
        self.from_year.is_none_or(|f| year >= f)
            && self.until_year.is_none_or(|u| year <= u)
            && self.only_in.is_none_or(|c| c.contains(year))
            && !self.except_in.is_some_and(|c| c.contains(year))
    }

    /// The rule's date in `year` before any shift.
    pub fn base_date(&self, year: i32) -> Option<NaiveDate> {
        match self.date {
            RuleDate::Fixed { month, day } => NaiveDate::from_ymd_opt(year, month, day),
            RuleDate::Easter { offset } => {
                easter_sunday(year)?.checked_add_signed(Duration::days(offset.into()))
            }
            RuleDate::NthWeekday {
                month,
                weekday,
                nth,
                offset,
            } => {
                let d = NaiveDate::from_weekday_of_month_opt(year, month, weekday, nth)?;
                d.checked_add_signed(Duration::days(offset.into()))
            }
            RuleDate::LastWeekday {
                month,
                weekday,
                offset,
            } => {
                let first_next = if month == 12 {
                    NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?
                } else {
                    NaiveDate::from_ymd_opt(year, month.checked_add(1)?, 1)?
                };
                let last = first_next.pred_opt()?;
                let back = days_from(weekday, last.weekday());
                last.checked_sub_signed(Duration::days(back))?
                    .checked_add_signed(Duration::days(offset.into()))
            }
            RuleDate::WeekdayOnOrBefore {
                month,
                day,
                weekday,
            } => {
                let d = NaiveDate::from_ymd_opt(year, month, day)?;
                d.checked_sub_signed(Duration::days(days_from(weekday, d.weekday())))
            }
            RuleDate::WeekdayOnOrAfter {
                month,
                day,
                weekday,
            } => {
                let d = NaiveDate::from_ymd_opt(year, month, day)?;
                d.checked_add_signed(Duration::days(days_from(d.weekday(), weekday)))
            }
            RuleDate::Date(d) => (d.year() == year).then_some(d),
        }
    }
}

/// Days from weekday `a` forward to weekday `b` (0..=6).
fn days_from(a: Weekday, b: Weekday) -> i64 {
    (i64::from(b.num_days_from_monday()) - i64::from(a.num_days_from_monday())).rem_euclid(7)
}

/// Easter Sunday in the Gregorian calendar (the anonymous Gregorian algorithm, a.k.a. Meeus/Jones/Butcher).
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let y = year;
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    NaiveDate::from_ymd_opt(y, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

pub fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// One Member Country's public holidays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolidayCalendar {
    country: CountryCode,
    rules: Vec<HolidayRule>,
    /// Dates a decree made ordinary working days although a rule puts a holiday on them.
    cancelled: BTreeSet<NaiveDate>,
}

/// One holiday entry before same-date entries are merged.
#[derive(Debug, Clone)]
struct Entry {
    date: NaiveDate,
    name: String,
    name_es: Option<String>,
}

impl HolidayCalendar {
    pub fn new(country: CountryCode, rules: Vec<HolidayRule>) -> Self {
        Self {
            country,
            rules,
            cancelled: BTreeSet::new(),
        }
    }

    /// Marks `dates` as ordinary days whatever the rules say (a decree that moved a holiday away).
    pub fn with_cancelled(mut self, dates: impl IntoIterator<Item = NaiveDate>) -> Self {
        self.cancelled.extend(dates);
        self
    }

    pub fn country(&self) -> CountryCode {
        self.country
    }

    pub fn rules(&self) -> &[HolidayRule] {
        &self.rules
    }

    pub fn cancelled(&self) -> &BTreeSet<NaiveDate> {
        &self.cancelled
    }

    /// Every holiday entry dated in `year`, unmerged, in date order (rule order within a date).
    fn entries(&self, year: i32) -> Vec<Entry> {
        let mut entries = Vec::new();
        // Observed candidates: (actual date, shift, rule index).
        let mut observed = Vec::new();
        // A shift can carry a holiday across a year end (the US observes 2028-01-01 on 2027-12-31),
        // so the neighbouring years' rules are evaluated too.
        for base_year in [year.saturating_sub(1), year, year.saturating_add(1)] {
            for (i, rule) in self.rules.iter().enumerate() {
                if !matches!(rule.date, RuleDate::Date(_)) && !rule.applies_in(base_year) {
                    continue;
                }
                let Some(actual) = rule.base_date(base_year) else {
                    continue;
                };
                let date = match rule.adjustment {
                    Adjustment::None => actual,
                    Adjustment::Observed(shift) => {
                        observed.push((actual, shift, i));
                        actual
                    }
                    Adjustment::Moved(shift) => {
                        shifted(actual, shift.offset(actual.weekday())).unwrap_or(actual)
                    }
                };
                entries.push(Entry {
                    date,
                    name: rule.name.clone(),
                    name_es: rule.name_es.clone(),
                });
            }
        }
        let mut taken: BTreeSet<NaiveDate> = entries.iter().map(|e| e.date).collect();
        observed.sort_by_key(|(d, _, i)| (*d, *i));
        for (actual, shift, i) in observed {
            let off = shift.offset(actual.weekday());
            if off == 0 {
                continue;
            }
            let step = off.signum();
            let Some(mut day) = shifted(actual, off) else {
                continue;
            };
            // Bounded: a run of more than two weeks of holidays and weekends does not occur.
            let mut guard = 0;
            while (taken.contains(&day) || is_weekend(day)) && guard < 14 {
                match shifted(day, step) {
                    Some(d) => day = d,
                    None => break,
                }
                guard += 1;
            }
            taken.insert(day);
            let rule = &self.rules[i];
            entries.push(Entry {
                date: day,
                name: format!("{} (observed)", rule.name),
                name_es: rule.name_es.as_ref().map(|n| format!("{n} (observado)")),
            });
        }
        entries.retain(|e| e.date.year() == year && !self.cancelled.contains(&e.date));
        entries.sort_by_key(|e| e.date);
        entries
    }

    /// The holidays dated in `year`, sorted by date, one entry per date.
    pub fn holidays(&self, year: i32) -> Vec<Holiday> {
        let mut out: Vec<Holiday> = Vec::new();
        for e in self.entries(year) {
            match out.last_mut() {
                Some(h) if h.date == e.date => {
                    if !h.name.split("; ").any(|n| n == e.name) {
                        h.name.push_str("; ");
                        h.name.push_str(&e.name);
                        if let Some(es) = e.name_es {
                            h.name_es = Some(match h.name_es.take() {
                                Some(prev) => format!("{prev}; {es}"),
                                None => es,
                            });
                        }
                    }
                }
                _ => out.push(Holiday {
                    date: e.date,
                    name: e.name,
                    name_es: e.name_es,
                }),
            }
        }
        out
    }

    /// The names of the holidays on `date`, one per rule, without duplicates.
    pub fn holiday_names_on(&self, date: NaiveDate) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for e in self.entries(date.year()) {
            if e.date == date && !names.contains(&e.name) {
                names.push(e.name);
            }
        }
        names
    }

    pub fn holiday_on(&self, date: NaiveDate) -> Option<Holiday> {
        self.holidays(date.year())
            .into_iter()
            .find(|h| h.date == date)
    }

    /// Neither a Saturday, a Sunday nor a holiday.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        !is_weekend(date) && self.holiday_on(date).is_none()
    }
}

fn shifted(date: NaiveDate, days: i64) -> Option<NaiveDate> {
    date.checked_add_signed(Duration::days(days))
}

crate::named_enum! {
    /// Whose holidays count for a procedure's deadlines.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum CalendarPolicy {
        /// The calendar of the country that holds the presidency (the default).
        Presidency => "presidency",
        /// A day counts only if it is a working day in every Member Country.
        AllMembers => "all_members",
    }
}

impl CalendarPolicy {
    /// The countries whose calendars count under this policy.
    pub fn countries(&self, presidency: CountryCode, members: &[CountryCode]) -> Vec<CountryCode> {
        match self {
            CalendarPolicy::Presidency => vec![presidency],
            CalendarPolicy::AllMembers => {
                let mut all: Vec<CountryCode> = members.to_vec();
                all.push(presidency);
                all.sort();
                all.dedup();
                all
            }
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
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
}
