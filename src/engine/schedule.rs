//! Cron schedules: a standard 5-field expression evaluated in an IANA time zone.
//!
//! The fields are `minute hour day-of-month month day-of-week`, with the usual
//! meanings: day-of-week 1 is Monday, 0 and 7 are Sunday, and when both day
//! fields are restricted a day matching either one fires (Vixie cron).
//!
//! Evaluation is on the local wall clock of the zone, by `croner`: a run that
//! falls in a spring-forward gap fires at the first valid instant after it (a
//! 02:30 job runs at 03:00 on the day the clock jumps from 02:00 to 03:00)
//! instead of being skipped, and a run in a repeated autumn hour fires once.
//! The `cron` crate was not used: its 0.17 rejects 5-field expressions, counts
//! Sunday as 1 and silently skips a run in a DST gap (BRIEF section 9).
//!
//! Pure: no IO and no clock; the time to count from is always an argument.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("cron expression `{expression}` has {fields} field(s); expected 5: minute hour day-of-month month day-of-week (e.g. `0 8 * * 1-5`)")]
    FieldCount { expression: String, fields: usize },
    #[error("cron expression `{expression}` is not valid: {reason}")]
    Invalid { expression: String, reason: String },
    #[error("cron expression `{expression}` never fires")]
    NeverFires { expression: String },
    #[error("`{0}` is not an IANA time zone such as America/Costa_Rica")]
    TimeZone(String),
}

/// When something recurs: a parsed 5-field cron expression and the zone whose
/// wall clock it reads. Built only by [`Schedule::parse`].
#[derive(Clone)]
pub struct Schedule {
    expression: String,
    time_zone: Tz,
    cron: Cron,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({self})")
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expression, self.time_zone.name())
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.time_zone == other.time_zone
    }
}

impl Eq for Schedule {}

impl Schedule {
    /// Parses a standard 5-field expression for the zone named `time_zone`.
    pub fn parse_in(expression: &str, time_zone: &str) -> Result<Self, ScheduleError> {
        let tz: Tz = time_zone
            .trim()
            .parse()
            .map_err(|_| ScheduleError::TimeZone(time_zone.to_string()))?;
        Self::parse(expression, tz)
    }

    /// Parses a standard 5-field expression, evaluated on `time_zone`'s wall clock.
    pub fn parse(expression: &str, time_zone: Tz) -> Result<Self, ScheduleError> {
        // Normalised so that the stored form of a schedule does not change with spacing.
        let expression = expression.split_whitespace().collect::<Vec<_>>().join(" ");
        let fields = expression.split(' ').filter(|f| !f.is_empty()).count();
        if fields != 5 {
            return Err(ScheduleError::FieldCount { expression, fields });
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(&expression)
            .map_err(|e| ScheduleError::Invalid {
                expression: expression.clone(),
                reason: e.to_string(),
            })?;
        let schedule = Self {
            expression,
            time_zone,
            cron,
        };
        // `0 0 30 2 *` parses but never fires; say so now rather than sleep forever.
        // Counting from a fixed instant keeps this pure; every real expression fires
        // within a few years of it (29 February included).
        let origin = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
        if origin.and_then(|o| schedule.next_after(o)).is_none() {
            return Err(ScheduleError::NeverFires {
                expression: schedule.expression,
            });
        }
        Ok(schedule)
    }

    /// The expression as configured (whitespace normalised).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// What identifies the schedule's meaning: the expression and the zone. A
    /// stored schedule whose spec differs from the configured one is recomputed.
    pub fn spec(&self) -> String {
        format!("{} {}", self.expression, self.time_zone.name())
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.time_zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The last run at or before `at`, if any.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&self.time_zone);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// What a schedule does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// The daily digest to the PPT's focal points and the Technical Secretariat.
    Digest,
}

/// A named schedule and its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledJob {
    /// The row's name in the `schedules` table; unique.
    pub name: String,
    pub schedule: Schedule,
    pub job: Job,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Duration, Timelike, Weekday};
    use chrono_tz::America::{Costa_Rica, Toronto};

    fn local(tz: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, m, d, h, min, 0)
            .earliest()
            .expect("a valid local time")
            .with_timezone(&Utc)
    }

    /// The runs of `s` in (from, to], in order.
    fn runs(s: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut at = from;
        while let Some(next) = s.next_after(at) {
            if next > to {
                break;
            }
            out.push(next);
            at = next;
        }
        out
    }

    #[test]
    fn weekdays_at_nine_in_toronto() {
        let s = Schedule::parse("0 9 * * 1-5", Toronto).unwrap();
        // Friday 5 March 2027, 10:00 in Toronto: the next run is Monday 8 March at 09:00.
        let from = local(Toronto, 2027, 3, 5, 10, 0);
        let week = runs(&s, from, from + Duration::days(7));
        let seen: Vec<_> = week
            .iter()
            .map(|t| {
                let l = t.with_timezone(&Toronto);
                (l.weekday(), l.day(), l.hour(), l.minute())
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (Weekday::Mon, 8, 9, 0),
                (Weekday::Tue, 9, 9, 0),
                (Weekday::Wed, 10, 9, 0),
                (Weekday::Thu, 11, 9, 0),
                (Weekday::Fri, 12, 9, 0),
            ]
        );
        // Before DST (EST, UTC-5) and after it (EDT, UTC-4) 09:00 stays 09:00 local.
        assert_eq!(week[0], Utc.with_ymd_and_hms(2027, 3, 8, 14, 0, 0).unwrap());
        let after_dst = s.next_after(local(Toronto, 2027, 3, 15, 8, 0)).unwrap();
        assert_eq!(
            after_dst,
            Utc.with_ymd_and_hms(2027, 3, 15, 13, 0, 0).unwrap()
        );
    }

    #[test]
    fn day_of_week_numbers_start_on_monday_with_sunday_as_0_and_7() {
        // Monday 1 February 2027 00:00 in Costa Rica, minus a minute.
        let from = local(Costa_Rica, 2027, 2, 1, 0, 0) - Duration::minutes(1);
        for (field, expected) in [
            ("1", Weekday::Mon),
            ("2", Weekday::Tue),
            ("3", Weekday::Wed),
            ("4", Weekday::Thu),
            ("5", Weekday::Fri),
            ("6", Weekday::Sat),
            ("0", Weekday::Sun),
            ("7", Weekday::Sun),
            ("MON", Weekday::Mon),
            ("sun", Weekday::Sun),
        ] {
            let s = Schedule::parse(&format!("0 12 * * {field}"), Costa_Rica).unwrap();
            let next = s.next_after(from).unwrap().with_timezone(&Costa_Rica);
            assert_eq!(next.weekday(), expected, "day-of-week field `{field}`");
            assert_eq!(next.hour(), 12);
        }
        // 1-5 is Monday to Friday: no run on the weekend of 6-7 February.
        let s = Schedule::parse("0 8 * * 1-5", Costa_Rica).unwrap();
        let week = runs(&s, from, from + Duration::days(7));
        assert_eq!(week.len(), 5);
        assert!(week.iter().all(|t| {
            let wd = t.with_timezone(&Costa_Rica).weekday();
            wd != Weekday::Sat && wd != Weekday::Sun
        }));
    }

    #[test]
    fn a_run_in_the_spring_gap_fires_after_it_instead_of_being_skipped() {
        // Toronto jumps from 02:00 to 03:00 on Sunday 14 March 2027.
        let s = Schedule::parse("30 2 * * *", Toronto).unwrap();
        let from = local(Toronto, 2027, 3, 12, 12, 0);
        let days = runs(&s, from, local(Toronto, 2027, 3, 17, 12, 0));
        let locals: Vec<_> = days
            .iter()
            .map(|t| t.with_timezone(&Toronto).format("%d %H:%M").to_string())
            .collect();
        // One run every day; on the 14th at the first valid time after the gap.
        assert_eq!(
            locals,
            vec!["13 02:30", "14 03:00", "15 02:30", "16 02:30", "17 02:30"]
        );
        let on_the_day = days[1];
        assert!(
            on_the_day == local(Toronto, 2027, 3, 14, 3, 0)
                || on_the_day == local(Toronto, 2027, 3, 14, 3, 30),
            "{on_the_day}"
        );
    }

    #[test]
    fn a_run_in_the_autumn_overlap_fires_once() {
        // Toronto goes back from 02:00 EDT to 01:00 EST on Sunday 7 November 2027:
        // 01:30 happens twice, 02:30 once.
        for (expression, hour) in [("30 1 * * *", 1), ("30 2 * * *", 2)] {
            let s = Schedule::parse(expression, Toronto).unwrap();
            let from = local(Toronto, 2027, 11, 5, 12, 0);
            let days = runs(&s, from, local(Toronto, 2027, 11, 9, 12, 0));
            let dates: Vec<_> = days
                .iter()
                .map(|t| {
                    let l = t.with_timezone(&Toronto);
                    assert_eq!((l.hour(), l.minute()), (hour, 30), "{expression}");
                    l.day()
                })
                .collect();
            assert_eq!(dates, vec![6, 7, 8, 9], "{expression}: one run per day");
        }
    }

    #[test]
    fn the_latest_run_before_an_instant() {
        let s = Schedule::parse("0 8 * * 1-5", Costa_Rica).unwrap();
        // Sunday 7 February 2027: the latest run was Friday the 5th at 08:00.
        let sunday = local(Costa_Rica, 2027, 2, 7, 15, 0);
        assert_eq!(
            s.latest_at_or_before(sunday),
            Some(local(Costa_Rica, 2027, 2, 5, 8, 0))
        );
        let exactly = local(Costa_Rica, 2027, 2, 5, 8, 0);
        assert_eq!(s.latest_at_or_before(exactly), Some(exactly));
    }

    #[test]
    fn bad_expressions_are_refused_with_the_expression_named() {
        for (expression, expected) in [
            ("0 0 8 * * 1-5", "has 6 field(s); expected 5"),
            ("0 0 8 * * 1-5 2027", "has 7 field(s); expected 5"),
            ("0 8 * *", "has 4 field(s)"),
            ("@daily", "has 1 field(s)"),
            ("", "has 0 field(s)"),
            ("0 25 * * *", "is not valid"),
            ("61 8 * * *", "is not valid"),
            ("0 8 * * 1-9", "is not valid"),
            ("every day at 8 am", "is not valid"),
            ("0 8 ? x *", "is not valid"),
            ("0 0 30 2 *", "never fires"),
        ] {
            let err = Schedule::parse(expression, Costa_Rica)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("`{expression}`")) && err.contains(expected),
                "{expression:?}: {err}"
            );
        }
        let err = Schedule::parse_in("0 8 * * *", "Mars/Olympus")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`Mars/Olympus`"), "{err}");
    }

    #[test]
    fn leap_days_fire_and_the_spec_names_expression_and_zone() {
        let s = Schedule::parse_in("  0   8 29  2 * ", "America/Costa_Rica").unwrap();
        assert_eq!(s.expression(), "0 8 29 2 *");
        assert_eq!(s.spec(), "0 8 29 2 * America/Costa_Rica");
        let next = s.next_after(local(Costa_Rica, 2027, 1, 1, 0, 0)).unwrap();
        assert_eq!(next, local(Costa_Rica, 2028, 2, 29, 8, 0));
    }
}
