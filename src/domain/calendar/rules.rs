//! One Member Country's holiday rules (fixed dates, Easter-relative days, nth/last
//! weekday rules, observed-day shifts and dated decrees) and the holidays they give.

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate, Weekday};

use crate::domain::country::CountryCode;

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
