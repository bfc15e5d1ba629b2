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
//!
//! `rules` holds one country's holiday rules and the holidays they give in a year,
//! `policy` whose calendars count for a procedure, and `arithmetic` the counting of
//! working days across calendars. This file only declares them and re-exports.

mod arithmetic;
mod policy;
mod rules;

pub use arithmetic::{
    local_instant, CalendarError, Calendars, Deadline, SkippedDay, MAX_NON_WORKING_RUN,
    MAX_WORKING_DAYS,
};
pub use policy::CalendarPolicy;
pub use rules::{
    easter_sunday, is_weekend, Adjustment, Holiday, HolidayCalendar, HolidayRule, RuleDate, Shift,
    YearCycle,
};
