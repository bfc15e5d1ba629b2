//! TEMPORARY stand-in with the agreed API (weekends only); replaced by the calendar branch.
#![allow(dead_code, unused_variables)]
use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::CountryCode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    pub date: NaiveDate,
    pub name: String,
}
#[derive(Debug, Clone)]
pub struct HolidayCalendar {
    country: CountryCode,
}
impl HolidayCalendar {
    pub fn country(&self) -> CountryCode {
        self.country
    }
    pub fn holidays(&self, year: i32) -> Vec<Holiday> {
        vec![]
    }
    pub fn holiday_on(&self, date: NaiveDate) -> Option<Holiday> {
        None
    }
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarPolicy {
    Presidency,
    AllMembers,
}
#[derive(Debug, Clone, Default)]
pub struct Calendars {
    by: BTreeMap<CountryCode, HolidayCalendar>,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedDay {
    pub date: NaiveDate,
    pub reason: String,
}
#[derive(Debug, Clone)]
pub struct Deadline {
    pub at: DateTime<Tz>,
    pub working_days: Vec<NaiveDate>,
    pub skipped: Vec<SkippedDay>,
}
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("no calendar for {0}")]
    NoCalendar(CountryCode),
}
impl Calendars {
    pub fn new(cals: Vec<HolidayCalendar>) -> Self {
        Self {
            by: cals.into_iter().map(|c| (c.country, c)).collect(),
        }
    }
    pub fn weekends_only(countries: &[CountryCode]) -> Self {
        Self::new(
            countries
                .iter()
                .map(|c| HolidayCalendar { country: *c })
                .collect(),
        )
    }
    pub fn get(&self, c: CountryCode) -> Option<&HolidayCalendar> {
        self.by.get(&c)
    }
    pub fn countries(&self) -> Vec<CountryCode> {
        self.by.keys().copied().collect()
    }
    pub fn is_working_day(
        &self,
        countries: &[CountryCode],
        date: NaiveDate,
    ) -> Result<bool, CalendarError> {
        Ok(!matches!(date.weekday(), Weekday::Sat | Weekday::Sun))
    }
    pub fn non_working_reason(
        &self,
        countries: &[CountryCode],
        date: NaiveDate,
    ) -> Result<Option<String>, CalendarError> {
        Ok(match date.weekday() {
            Weekday::Sat => Some("Saturday".into()),
            Weekday::Sun => Some("Sunday".into()),
            _ => None,
        })
    }
    pub fn deadline(
        &self,
        countries: &[CountryCode],
        tz: Tz,
        from: DateTime<Utc>,
        working_days: u32,
        end_of_day: NaiveTime,
    ) -> Result<Deadline, CalendarError> {
        let mut d = from.with_timezone(&tz).date_naive();
        let mut days = vec![];
        let mut skipped = vec![];
        while (days.len() as u32) < working_days {
            d += Duration::days(1);
            match self.non_working_reason(countries, d)? {
                None => days.push(d),
                Some(r) => skipped.push(SkippedDay { date: d, reason: r }),
            }
        }
        let at = tz
            .from_local_datetime(&d.and_time(end_of_day))
            .earliest()
            .unwrap();
        Ok(Deadline {
            at,
            working_days: days,
            skipped,
        })
    }
    pub fn working_days_before(
        &self,
        countries: &[CountryCode],
        date: NaiveDate,
        n: u32,
    ) -> Result<NaiveDate, CalendarError> {
        let mut d = date;
        while !self.is_working_day(countries, d)? {
            d -= Duration::days(1);
        }
        let mut k = 0;
        while k < n {
            d -= Duration::days(1);
            if self.is_working_day(countries, d)? {
                k += 1;
            }
        }
        Ok(d)
    }
    pub fn working_days_between(
        &self,
        countries: &[CountryCode],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<u32, CalendarError> {
        let mut d = from;
        let mut n = 0;
        while d < to {
            d += Duration::days(1);
            if self.is_working_day(countries, d)? {
                n += 1;
            }
        }
        Ok(n)
    }
}
