//! What a transition reads besides the state: the procedure, the body and the
//! calendars, all pure data.

use chrono::{DateTime, Utc};

use super::error::TransitionError;
use super::state::Consultation;
use crate::domain::body::Body;
use crate::domain::calendar::{Calendars, Deadline};
use crate::domain::procedure::Procedure;
use crate::domain::CountryCode;

/// Everything [`transition`] needs to know besides the state: all pure data.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub procedure: &'a Procedure,
    pub body: &'a Body,
    pub calendars: &'a Calendars,
}

impl Context<'_> {
    /// The countries whose calendars decide what a working day is.
    pub fn calendar_countries(&self, c: &Consultation) -> Vec<CountryCode> {
        self.procedure
            .calendar_policy
            .countries(c.presidency, &c.participants)
    }

    pub fn deadline_from(
        &self,
        c: &Consultation,
        from: DateTime<Utc>,
        working_days: u32,
    ) -> Result<Deadline, TransitionError> {
        let tz = self.body.member(c.presidency)?.time_zone;
        Ok(self.calendars.deadline(
            &self.calendar_countries(c),
            tz,
            from,
            working_days,
            self.procedure.end_of_day,
        )?)
    }
}
