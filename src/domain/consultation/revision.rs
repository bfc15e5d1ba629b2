//! The revision stage: the PPT publishes the revised text (or none) and the next
//! round opens.

use chrono::{DateTime, Utc};

use super::error::TransitionError;
use super::round::open_round;
use super::state::{Consultation, TextVersion};
use super::step::{corrupt, latest_version, Step};

pub(super) fn revise(
    s: &mut Step<'_>,
    next_step: usize,
    text: Option<String>,
    note: Option<String>,
) -> Result<(), TransitionError> {
    let (_, next, ctx, now, effects) = s.parts();
    match text {
        Some(text) => add_version(next, text, note, now)?,
        None => {
            let v = next
                .versions
                .last_mut()
                .ok_or_else(|| corrupt(&next.reference, "the consultation has no text version"))?;
            v.note = Some(note.unwrap_or_else(|| "no changes".into()));
        }
    }
    open_round(next, &ctx, next_step, now, effects)
}

pub(super) fn add_version(
    c: &mut Consultation,
    text: String,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), TransitionError> {
    if text.trim().is_empty() {
        return Err(TransitionError::Invalid("the text is empty".into()));
    }
    let number = latest_version(c)?.number + 1;
    c.versions.push(TextVersion {
        number,
        text,
        created_at: now,
        note,
    });
    Ok(())
}
