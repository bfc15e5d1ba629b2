//! A consultation's start, and its submission from the draft stage.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::context::Context;
use super::effect::{Effect, NoticeKind, Recipients};
use super::error::TransitionError;
use super::revision::add_version;
use super::round::open_round;
use super::state::{Consultation, Stage, TextVersion, TroikaReview};
use super::step::{latest_version, Step};
use super::troika::close_troika_review;
use crate::domain::ConsultationRef;

impl Consultation {
    /// A new consultation in the `draft` stage with version 1 of the text.
    pub fn new(
        ctx: &Context<'_>,
        reference: ConsultationRef,
        title: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, TransitionError> {
        let title = title.trim();
        if title.is_empty() {
            return Err(TransitionError::Invalid("the title is empty".into()));
        }
        if text.trim().is_empty() {
            return Err(TransitionError::Invalid("the text is empty".into()));
        }
        let year = reference.year();
        let troika = ctx.body.troika(year)?;
        Ok(Consultation {
            format: 1,
            reference,
            procedure: ctx.procedure.id.clone(),
            title: title.to_string(),
            presidency: troika.current,
            troika,
            participants: ctx.body.member_codes(),
            stage: Stage::Draft,
            versions: vec![TextVersion {
                number: 1,
                text: text.to_string(),
                created_at: now,
                note: None,
            }],
            troika_reviews: vec![],
            rounds: vec![],
            objection_revisions: 0,
            outcome: None,
            withdrawal: None,
            report: None,
            created_at: now,
        })
    }
}

/// The PPT sends the current text (or a new one) to the Troika, or straight to the
/// first round when the procedure has no Troika review.
pub(super) fn submit(s: &mut Step<'_>, text: Option<String>) -> Result<(), TransitionError> {
    let (c, next, ctx, now, effects) = s.parts();
    let p = ctx.procedure;
    if let Some(text) = text {
        add_version(next, text, None, now)?;
    }
    match &p.troika_review {
        Some(spec) => {
            next.stage = Stage::TroikaReview;
            let version = latest_version(next)?.number;
            next.troika_reviews.push(TroikaReview {
                version,
                opened_at: now,
                answers: BTreeMap::new(),
                closed_at: None,
                late: vec![],
            });
            let reviewers = c.troika.reviewers();
            if reviewers.is_empty() {
                // A Troika with no other member (no former or upcoming PPT recorded)
                // has nobody to ask: the PPT's own agreement is the consensus.
                close_troika_review(next, now);
                open_round(next, &ctx, 0, now, effects)?;
            } else {
                effects.push(Effect::Notify {
                    kind: NoticeKind::TroikaRequest,
                    template: spec.template.clone(),
                    to: Recipients::Countries {
                        countries: reviewers,
                    },
                    round: None,
                });
            }
        }
        None => open_round(next, &ctx, 0, now, effects)?,
    }
    Ok(())
}
