//! The rounds: opening and closing one, answers in it and after it, its deadline,
//! extensions and reminders.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};

use super::context::Context;
use super::decision::{decide, revision_due};
use super::effect::{Effect, NoticeKind, Recipients, TimerSpec};
use super::error::TransitionError;
use super::event::Event;
use super::state::{Answer, CloseReason, Conflict, Consultation, Extension, RoundRecord, Stage};
use super::step::{
    answer_email_of, corrupt, last_round, last_round_mut, latest_version, not_allowed, round_spec,
    Step,
};
use crate::domain::CountryCode;

/// A member's answer while its round is open: counted (the latest per country
/// stands), or recorded as late when it answers an earlier round or came after the
/// deadline whose timer has not fired yet.
pub(super) fn answer(s: &mut Step<'_>, step: usize, answer: Answer) -> Result<(), TransitionError> {
    let (c, next, ctx, now, effects) = s.parts();
    let p = ctx.procedure;
    let answer = unreviewed(answer);
    if !c.participants.contains(&answer.country) {
        return Err(TransitionError::NotAParticipant(answer.country));
    }
    let to = Recipients::Answerer {
        country: answer.country,
        email: answer_email_of(&answer.source),
    };
    let open = last_round(next, "the round stage has no round")?;
    let (open_number, open_deadline) = (open.number, open.deadline);
    if let Some(number) = answer.round.filter(|&n| n != open_number) {
        // A reply to an earlier round's notice: recorded there as late, never
        // counted in the open round.
        let round = next
            .rounds
            .iter_mut()
            .find(|r| r.number == number && !r.is_open())
            .ok_or(TransitionError::NoSuchRound(number))?;
        round.late.push(answer);
        effects.push(Effect::Notify {
            kind: NoticeKind::LateReply,
            template: p.templates.late_reply.clone(),
            to,
            round: Some(number),
        });
        return Ok(());
    }
    if answer.received_at > open_deadline {
        // The deadline passed before this reply arrived, though its timer has
        // not fired yet: the round closed at its deadline, so the reply is late
        // and must not change the outcome.
        let index = next.rounds.len().saturating_sub(1);
        close_round(next, &ctx, CloseReason::Deadline, now, effects)?;
        let round = next
            .rounds
            .get_mut(index)
            .ok_or_else(|| corrupt(&c.reference, "the round that closed is gone"))?;
        round.late.push(answer);
        effects.push(Effect::Notify {
            kind: NoticeKind::LateReply,
            template: p.templates.late_reply.clone(),
            to,
            round: Some(round.number),
        });
        return Ok(());
    }
    let round = last_round_mut(next, "the round stage has no round")?;
    let number = round.number;
    let mut answer = answer;
    answer.conflict = conflict_with(round, &answer);
    let answerer = answer.answerer();
    let country = answer.country;
    let previous = round.answers.insert(country, answer);
    // The latest answer stands. When it replaces another focal point's answer
    // (or one entered by staff), every focal point of the country is told, so
    // that nobody's answer is overwritten in silence.
    let to = match &previous {
        Some(p) if p.answerer() != answerer => Recipients::Answerer {
            country,
            email: None,
        },
        _ => to,
    };
    if let Some(previous) = previous {
        round.superseded.push(previous);
    }
    effects.push(Effect::Notify {
        kind: NoticeKind::ReplyConfirmation,
        template: p.templates.reply_confirmation.clone(),
        to,
        round: Some(number),
    });
    let all_answered = c
        .participants
        .iter()
        .all(|country| round.answers.contains_key(country));
    if round_spec(&ctx, c, step)?.close_early && all_answered {
        close_round(next, &ctx, CloseReason::AllAnswered, now, effects)?;
    }
    Ok(())
}

/// A member's answer when no round is open: recorded as late on the round it
/// names (the latest one when it names none), and the sender is told.
pub(super) fn late_answer(s: &mut Step<'_>, answer: Answer) -> Result<(), TransitionError> {
    let (c, next, ctx, _, effects) = s.parts();
    let p = ctx.procedure;
    let answer = unreviewed(answer);
    if !c.participants.contains(&answer.country) {
        return Err(TransitionError::NotAParticipant(answer.country));
    }
    let round = match answer.round {
        Some(number) => next
            .rounds
            .iter_mut()
            .find(|r| r.number == number)
            .ok_or(TransitionError::NoSuchRound(number))?,
        // Withdrawn before any round opened: there is nothing to answer.
        None => next
            .rounds
            .last_mut()
            .ok_or_else(|| not_allowed(c, "answer"))?,
    };
    let number = round.number;
    let to = Recipients::Answerer {
        country: answer.country,
        email: answer_email_of(&answer.source),
    };
    round.late.push(answer);
    effects.push(Effect::Notify {
        kind: NoticeKind::LateReply,
        template: p.templates.late_reply.clone(),
        to,
        round: Some(number),
    });
    Ok(())
}

/// The PPT extends the open round by some working days, for a reason.
pub(super) fn extend(
    s: &mut Step<'_>,
    step: usize,
    working_days: u32,
    reason: String,
) -> Result<(), TransitionError> {
    let (c, next, ctx, now, effects) = s.parts();
    let p = ctx.procedure;
    if working_days == 0 {
        return Err(TransitionError::Invalid(
            "an extension needs at least 1 working day".into(),
        ));
    }
    if reason.trim().is_empty() {
        return Err(TransitionError::Invalid(
            "an extension needs a reason".into(),
        ));
    }
    let round = last_round(c, "the round stage has no round")?;
    let deadline = ctx.deadline_from(c, round.deadline, working_days)?;
    let new_deadline = deadline.at.with_timezone(&Utc);
    let number = round.number;
    let timers = round_timers(next, &ctx, step, number, new_deadline, now)?;
    let round = last_round_mut(next, "the round stage has no round")?;
    round.extensions.push(Extension {
        working_days,
        reason: reason.trim().to_string(),
        previous_deadline: round.deadline,
        new_deadline,
        at: now,
    });
    round.deadline = new_deadline;
    round.working_days.extend(deadline.working_days);
    effects.push(Effect::SetTimers { timers });
    effects.push(Effect::Notify {
        kind: NoticeKind::DeadlineExtended,
        template: p.templates.deadline_extended.clone(),
        to: Recipients::Countries {
            countries: c.participants.clone(),
        },
        round: Some(number),
    });
    Ok(())
}

/// Timer: round `round`'s deadline has passed. A stale timer (the round closed
/// early or was extended) is absorbed without effect.
pub(super) fn deadline(s: &mut Step<'_>, round: u32) -> Result<(), TransitionError> {
    let (c, next, ctx, now, effects) = s.parts();
    let open = c.rounds.last().filter(|r| r.is_open());
    if open.is_some_and(|r| r.number == round && now >= r.deadline) {
        close_round(next, &ctx, CloseReason::Deadline, now, effects)?;
    }
    Ok(())
}

/// Timer: remind `country` of round `round` if it has not answered.
pub(super) fn reminder(
    s: &mut Step<'_>,
    round: u32,
    country: CountryCode,
) -> Result<(), TransitionError> {
    let (c, _, ctx, now, effects) = s.parts();
    let open = c.rounds.last().filter(|r| r.is_open() && r.number == round);
    // A reminder that comes due after the deadline (the daemon was down) is
    // pointless: the round closes next.
    if open.is_some_and(|r| !r.answers.contains_key(&country) && now < r.deadline) {
        effects.push(Effect::Notify {
            kind: NoticeKind::Reminder,
            template: ctx.procedure.templates.reminder.clone(),
            to: Recipients::Countries {
                countries: vec![country],
            },
            round: Some(round),
        });
    }
    Ok(())
}

/// Timers of a round: its deadline, and a reminder per member per reminder rule,
/// at the rule's time in the member's own time zone. Times already past are left out.
pub(super) fn round_timers(
    c: &Consultation,
    ctx: &Context<'_>,
    step: usize,
    number: u32,
    deadline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<TimerSpec>, TransitionError> {
    let spec = round_spec(ctx, c, step)?;
    let mut timers = vec![TimerSpec {
        due: deadline,
        event: Event::DeadlineReached { round: number },
    }];
    let presidency_tz = ctx.body.member(c.presidency)?.time_zone;
    let deadline_day = deadline.with_timezone(&presidency_tz).date_naive();
    let countries = ctx.calendar_countries(c);
    for reminder in &spec.reminders {
        let day = ctx.calendars.working_days_before(
            &countries,
            deadline_day,
            reminder.working_days_before,
        )?;
        for &country in &c.participants {
            let tz = ctx.body.member(country)?.time_zone;
            let Some(local) = tz
                .from_local_datetime(&day.and_time(reminder.at))
                .earliest()
            else {
                continue;
            };
            let due = local.with_timezone(&Utc);
            if due > now && due < deadline {
                timers.push(TimerSpec {
                    due,
                    event: Event::ReminderDue {
                        round: number,
                        country,
                        days_before: reminder.working_days_before,
                    },
                });
            }
        }
    }
    timers.sort_by_key(|t| t.due);
    Ok(timers)
}

pub(super) fn open_round(
    c: &mut Consultation,
    ctx: &Context<'_>,
    step: usize,
    now: DateTime<Utc>,
    effects: &mut Vec<Effect>,
) -> Result<(), TransitionError> {
    let spec = round_spec(ctx, c, step)?;
    let deadline = ctx.deadline_from(c, now, spec.working_days)?;
    let number = c.rounds.len() as u32 + 1;
    let at = deadline.at.with_timezone(&Utc);
    let timers = round_timers(c, ctx, step, number, at, now)?;
    let version = latest_version(c)?.number;
    c.rounds.push(RoundRecord {
        number,
        step,
        stage: spec.stage.clone(),
        version,
        opened_at: now,
        deadline: at,
        working_days: deadline.working_days,
        extensions: vec![],
        closed_at: None,
        closed_by: None,
        answers: BTreeMap::new(),
        superseded: vec![],
        late: vec![],
    });
    c.stage = Stage::Round { step };
    effects.push(Effect::SetTimers { timers });
    effects.push(Effect::Notify {
        kind: NoticeKind::RoundInvitation,
        template: spec.template.clone(),
        to: Recipients::Countries {
            countries: c.participants.clone(),
        },
        round: Some(number),
    });
    Ok(())
}

pub(super) fn close_round(
    c: &mut Consultation,
    ctx: &Context<'_>,
    reason: CloseReason,
    now: DateTime<Utc>,
    effects: &mut Vec<Effect>,
) -> Result<(), TransitionError> {
    let p = ctx.procedure;
    let round = last_round_mut(c, "a round closes, but there is none")?;
    round.closed_at = Some(now);
    round.closed_by = Some(reason);
    let step = round.step;
    let number = round.number;
    effects.push(Effect::SetTimers { timers: vec![] });

    if step < p.last_round() {
        // An earlier round gathers input; objections there are input for the revision.
        if round_spec(ctx, c, step + 1)?.revision_before {
            c.stage = Stage::Revision {
                next_step: step + 1,
            };
            effects.push(revision_due(p, number));
            return Ok(());
        }
        return open_round(c, ctx, step + 1, now, effects);
    }
    decide(c, ctx, now, effects)
}

/// An answer as it arrives: its conflict and review are the transition's to decide,
/// whatever the event carried.
fn unreviewed(mut answer: Answer) -> Answer {
    answer.review = None;
    answer.conflict = None;
    answer
}

/// The latest earlier answer of the same country in `round` that `answer`
/// contradicts and that someone else gave (another focal point, or staff).
fn conflict_with(round: &RoundRecord, answer: &Answer) -> Option<Conflict> {
    let answerer = answer.answerer();
    let earlier = round
        .answers
        .get(&answer.country)
        .into_iter()
        .chain(round.superseded.iter().rev())
        .filter(|a| a.country == answer.country);
    earlier
        .into_iter()
        .find(|a| a.answerer() != answerer && a.position != answer.position)
        .map(|a| Conflict {
            from: a.answerer(),
            position: a.position,
            received_at: a.received_at,
        })
}
