//! What the answer page says about a consultation for one token's stage: whether
//! that stage still takes answers, what the country has on record in it, and where
//! the consultation stands now. Pure: the consultation and the time are inputs.

use chrono::{DateTime, Utc};

use crate::domain::consultation::{AnswerSource, Consultation, Position, Stage};
use crate::domain::CountryCode;
use crate::mail::token::StageRef;

/// Whether the token's stage takes answers on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Open: answers count. `deadline`: a round's (a Troika review has none).
    Open { deadline: Option<DateTime<Utc>> },
    /// Closed at `at` (when known): the page shows the outcome instead of the form.
    Closed { at: Option<DateTime<Utc>> },
}

/// The stage a token names, in this consultation: its window and its text version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageView {
    /// The stage with a Troika review's number filled in (a version-1 Troika token
    /// names none: it means the latest review).
    pub stage: StageRef,
    pub window: Window,
    /// The text version the stage is about.
    pub version: u32,
}

/// The stage `stage` of `c` at `now`, or `None` when `c` has no such stage (a
/// token for a round or review that never opened is not one puebla signed).
///
/// A round is open while it is the open round of a consultation in a round stage
/// and its deadline has not passed: after the deadline the page takes no answer
/// even if the deadline's timer has not run yet, as an email arriving then would be
/// late. A Troika review is open while the consultation is in Troika review and it
/// is the latest review.
pub fn stage_view(c: &Consultation, stage: StageRef, now: DateTime<Utc>) -> Option<StageView> {
    match stage {
        StageRef::Round { round } => {
            let record = c.rounds.iter().find(|r| r.number == round)?;
            let latest = c.rounds.last().is_some_and(|l| l.number == round);
            let open = matches!(c.stage, Stage::Round { .. })
                && latest
                && record.is_open()
                && now < record.deadline;
            let window = if open {
                Window::Open {
                    deadline: Some(record.deadline),
                }
            } else {
                Window::Closed {
                    at: record
                        .closed_at
                        .or_else(|| (now >= record.deadline).then_some(record.deadline))
                        .or_else(|| c.withdrawal.as_ref().map(|w| w.at)),
                }
            };
            Some(StageView {
                stage,
                window,
                version: record.version,
            })
        }
        StageRef::Troika { review } => {
            let count = u32::try_from(c.troika_reviews.len()).ok()?;
            let number = review.unwrap_or(count);
            let index = usize::try_from(number.checked_sub(1)?).ok()?;
            let r = c.troika_reviews.get(index)?;
            let open = c.stage == Stage::TroikaReview && number == count && r.closed_at.is_none();
            let window = if open {
                Window::Open { deadline: None }
            } else {
                Window::Closed {
                    at: r.closed_at.or_else(|| c.withdrawal.as_ref().map(|w| w.at)),
                }
            };
            Some(StageView {
                stage: StageRef::Troika {
                    review: Some(number),
                },
                window,
                version: r.version,
            })
        }
    }
}

/// What an answer said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said {
    Position(Position),
    /// Troika feedback: APROBAR (`true`) or CAMBIOS.
    Troika(bool),
}

/// A country's answer on record in one stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnRecord {
    pub said: Said,
    pub text: String,
    pub received_at: DateTime<Utc>,
    /// Recorded after the stage closed: it changes nothing.
    pub late: bool,
    /// How it came (`None` for Troika feedback entered by staff before sources
    /// were kept).
    pub source: Option<AnswerSource>,
}

/// The answer of `country` that counts in `stage`, or else its latest late one.
pub fn on_record(c: &Consultation, stage: StageRef, country: CountryCode) -> Option<OnRecord> {
    match stage {
        StageRef::Round { round } => {
            let r = c.rounds.iter().find(|r| r.number == round)?;
            if let Some(a) = r.answers.get(&country) {
                return Some(OnRecord {
                    said: Said::Position(a.position),
                    text: a.text.clone(),
                    received_at: a.received_at,
                    late: false,
                    source: Some(a.source.clone()),
                });
            }
            r.late
                .iter()
                .filter(|a| a.country == country)
                .max_by_key(|a| a.received_at)
                .map(|a| OnRecord {
                    said: Said::Position(a.position),
                    text: a.text.clone(),
                    received_at: a.received_at,
                    late: true,
                    source: Some(a.source.clone()),
                })
        }
        StageRef::Troika { review } => {
            let number = review.unwrap_or(u32::try_from(c.troika_reviews.len()).ok()?);
            let r = c
                .troika_reviews
                .get(usize::try_from(number.checked_sub(1)?).ok()?)?;
            if let Some(a) = r.answers.get(&country) {
                return Some(OnRecord {
                    said: Said::Troika(a.approve),
                    text: a.comments.clone().unwrap_or_default(),
                    received_at: a.at,
                    late: false,
                    source: a.source.clone(),
                });
            }
            r.late
                .iter()
                .filter(|a| a.country == country)
                .max_by_key(|a| a.received_at)
                .map(|a| OnRecord {
                    said: Said::Troika(a.approve),
                    text: a.comments.clone().unwrap_or_default(),
                    received_at: a.received_at,
                    late: true,
                    source: Some(a.source.clone()),
                })
        }
    }
}

/// Where the consultation stands now, for a page whose stage has closed: a phrase
/// key of `templates/answer/strings.toml` and the values it needs (dates as UTC
/// times, formatted by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Now {
    RoundOpen {
        round: u32,
        deadline: DateTime<Utc>,
    },
    Revision,
    /// The last round closed with answers in doubt: the PPT reviews them before the
    /// decision is taken.
    AwaitingDecision,
    Draft,
    Troika,
    Adopted {
        at: Option<DateTime<Utc>>,
    },
    NotAdopted {
        at: Option<DateTime<Utc>>,
    },
    Concluded {
        at: Option<DateTime<Utc>>,
    },
    Withdrawn {
        at: DateTime<Utc>,
        reason: String,
    },
}

/// Where `c` stands now (see [`Now`]); `None` while a round is open whose deadline
/// has passed (the page then says only that it closed).
pub fn now_of(c: &Consultation, now: DateTime<Utc>) -> Option<Now> {
    Some(match c.stage {
        Stage::Round { .. } => {
            let r = c
                .rounds
                .last()
                .filter(|r| r.is_open() && now < r.deadline)?;
            Now::RoundOpen {
                round: r.number,
                deadline: r.deadline,
            }
        }
        Stage::Revision { .. } => Now::Revision,
        Stage::AwaitingDecision => Now::AwaitingDecision,
        Stage::Draft => Now::Draft,
        Stage::TroikaReview => Now::Troika,
        Stage::Adopted => Now::Adopted {
            at: c.outcome.as_ref().map(|o| o.at),
        },
        Stage::NotAdopted => Now::NotAdopted {
            at: c.outcome.as_ref().map(|o| o.at),
        },
        Stage::Concluded => Now::Concluded {
            at: c.report.as_ref().map(|r| r.at),
        },
        Stage::Withdrawn => {
            let w = c.withdrawal.as_ref()?;
            Now::Withdrawn {
                at: w.at,
                reason: w.reason.clone(),
            }
        }
    })
}
