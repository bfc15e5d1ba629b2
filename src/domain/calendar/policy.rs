//! Whose holidays count for a procedure's deadlines.

use crate::domain::country::CountryCode;

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
