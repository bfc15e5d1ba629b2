//! A step's effects turned into rows: one notice per recipient (addressed,
//! localized, with its reply token), timers, and audit entries for notices that
//! cannot be addressed.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::domain::consultation::{
    Consultation, Context, Effect, NoticeKind, Recipients, StageName, TransitionError,
};
use crate::domain::{CountryCode, Language};
use crate::engine::notice::{context, Audience};
use crate::engine::ports::{
    NewAttachment, NewAudit, NewNotice, NewTimer, Step, StoredConsultation,
};
use crate::engine::{Engine, EngineError};
use crate::mail::message::ics::deadline_uid;
use crate::mail::token::{reply_address, AnswerToken, StageRef, Token};
use crate::mail::{FileRef, NoticePayload};

/// One person a notice is addressed to.
struct Recipient {
    /// None for the Technical Secretariat.
    country: Option<CountryCode>,
    country_name: String,
    email: String,
    name: String,
    language: Language,
    time_zone: chrono_tz::Tz,
    focal_point_id: Option<i64>,
    /// The focal points of the recipient's country (address in lower case, name), for
    /// the notices that name who answered; empty for the others.
    colleagues: Vec<(String, String)>,
}

/// The stage a notice's reply token names, if the notice is one a focal point may
/// answer: the Troika request names the review it opens (the latest), a round's
/// notices name their round. Notices that ask for nothing carry no token.
fn token_stage(kind: NoticeKind, c: &Consultation, round: Option<u32>) -> Option<StageRef> {
    match kind {
        NoticeKind::TroikaRequest | NoticeKind::TroikaConfirmation => Some(StageRef::Troika {
            review: Some(u32::try_from(c.troika_reviews.len()).unwrap_or(u32::MAX)),
        }),
        NoticeKind::RoundInvitation
        | NoticeKind::Reminder
        | NoticeKind::DeadlineExtended
        | NoticeKind::ReplyConfirmation => round.map(|round| StageRef::Round { round }),
        NoticeKind::ChangesRequested
        | NoticeKind::RevisionDue
        | NoticeKind::Withdrawn
        | NoticeKind::Outcome
        | NoticeKind::ResultsReport
        | NoticeKind::LateReply
        | NoticeKind::LateTroikaFeedback
        | NoticeKind::DecisionDue => None,
    }
}

/// Whether a notice asks its recipient for an answer (and so may not go out
/// without a token): the Troika request and a round's invitation, reminders and
/// extensions. A confirmation invites a correction but asks for nothing.
pub(crate) fn asks_for_answer(kind: NoticeKind) -> bool {
    matches!(
        kind,
        NoticeKind::TroikaRequest
            | NoticeKind::RoundInvitation
            | NoticeKind::Reminder
            | NoticeKind::DeadlineExtended
    )
}

impl Engine {
    /// Turns effects into rows: notices for each focal point, timers, and audit
    /// entries for notices that cannot be addressed. `attachments` are the files
    /// this step adds; the notices that carry the text carry them and the ones
    /// stored before.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn build_step(
        &self,
        ctx: &Context<'_>,
        c: &Consultation,
        expected_version: i64,
        effects: Vec<Effect>,
        mut audit: Vec<NewAudit>,
        fired_timer: Option<i64>,
        attachments: Vec<NewAttachment>,
    ) -> Result<Step, EngineError> {
        let now = self.now();
        let carries_text = |e: &Effect| {
            matches!(
                e,
                Effect::Notify {
                    kind: NoticeKind::TroikaRequest | NoticeKind::RoundInvitation,
                    ..
                }
            )
        };
        // Files of the current text and the ones before it, oldest first.
        let mut files: Vec<FileRef> = Vec::new();
        if effects.iter().any(carries_text) {
            let version = c.current_version().number;
            if expected_version > 0 {
                files.extend(
                    self.store
                        .attachments(&c.reference)
                        .await?
                        .into_iter()
                        .filter(|a| a.version <= version)
                        .map(|a| FileRef {
                            filename: a.filename,
                            content_type: a.content_type,
                            sha256: a.sha256,
                            size: a.size,
                        }),
                );
            }
            files.extend(attachments.iter().map(|a| FileRef {
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                sha256: a.sha256.clone(),
                size: i64::try_from(a.content.len()).unwrap_or(i64::MAX),
            }));
        }
        let step_no = expected_version + 1;
        let mut notices = Vec::new();
        let mut replace_timers = false;
        let mut timers = Vec::new();
        for effect in effects {
            match effect {
                Effect::SetTimers { timers: specs } => {
                    replace_timers = true;
                    timers = specs
                        .into_iter()
                        .map(|t| NewTimer {
                            reference: c.reference.clone(),
                            kind: t.kind().to_string(),
                            due_at: t.due,
                            event_json: serde_json::to_string(&t.event).expect("events serialize"),
                        })
                        .collect();
                }
                Effect::Notify {
                    kind,
                    template,
                    to,
                    round,
                } => {
                    let carried: &[FileRef] = match kind {
                        NoticeKind::TroikaRequest | NoticeKind::RoundInvitation => &files,
                        _ => &[],
                    };
                    let (rows, missing) = self
                        .address(ctx, c, kind, &template, &to, round, step_no, now, carried)
                        .await?;
                    notices.extend(rows);
                    for country in missing {
                        audit.push(self.audit(
                            c,
                            "system",
                            "notice.unaddressed",
                            json!({"kind": kind.as_str(), "country": country.as_str(),
                                   "reason": "no active focal point"}),
                        ));
                    }
                }
            }
        }
        Ok(Step {
            consultation: StoredConsultation {
                reference: c.reference.clone(),
                procedure: c.procedure.clone(),
                title: c.title.clone(),
                stage: StageName::of(c),
                open: c.is_open(),
                state_json: serde_json::to_string(c).context("serialize consultation")?,
                version: step_no,
                created_at: c.created_at,
                updated_at: now,
            },
            expected_version,
            audit,
            notices,
            replace_timers,
            timers,
            fired_timer,
            attachments,
        })
    }

    /// Expands recipients into one notice per active focal point. Returns the
    /// notices and the countries that have nobody to receive them.
    #[allow(clippy::too_many_arguments)]
    async fn address(
        &self,
        ctx: &Context<'_>,
        c: &Consultation,
        kind: NoticeKind,
        template: &str,
        to: &Recipients,
        round: Option<u32>,
        step_no: i64,
        now: DateTime<Utc>,
        files: &[FileRef],
    ) -> Result<(Vec<NewNotice>, Vec<CountryCode>), EngineError> {
        let mut targets: Vec<(CountryCode, Option<String>)> = Vec::new();
        let mut secretariat = false;
        match to {
            Recipients::Countries { countries } => {
                targets.extend(countries.iter().map(|c| (*c, None)));
            }
            Recipients::PresidencyAndSecretariat => {
                targets.push((c.presidency, None));
                secretariat = true;
            }
            Recipients::Answerer { country, email } => {
                targets.push((*country, email.clone()));
            }
        }
        let mut recipients = Vec::new();
        let mut missing = Vec::new();
        // A confirmation names who answered (and whose answer it replaced): the names
        // come from the country's focal points, inactive ones included.
        let names_answerers = matches!(kind, NoticeKind::ReplyConfirmation | NoticeKind::LateReply);
        for (country, only_email) in targets {
            let member = ctx.body.member(country).map_err(TransitionError::from)?;
            let colleagues: Vec<(String, String)> = if names_answerers {
                self.store
                    .focal_points(Some(country), false)
                    .await?
                    .into_iter()
                    .map(|fp| (fp.email.to_string(), fp.name))
                    .collect()
            } else {
                Vec::new()
            };
            let fps: Vec<_> = self
                .store
                .focal_points(Some(country), true)
                .await?
                .into_iter()
                .filter(|fp| {
                    only_email
                        .as_ref()
                        .is_none_or(|e| fp.email.as_str().eq_ignore_ascii_case(e))
                })
                .collect();
            if fps.is_empty() {
                missing.push(country);
            }
            for fp in fps {
                let language = fp.language;
                recipients.push(Recipient {
                    country: Some(country),
                    country_name: member.name(language).to_string(),
                    email: fp.email.to_string(),
                    name: fp.name,
                    language,
                    time_zone: member.time_zone,
                    focal_point_id: Some(fp.id),
                    colleagues: colleagues.clone(),
                });
            }
        }
        if secretariat {
            recipients.push(Recipient {
                country: None,
                country_name: "Secretaría Técnica".into(),
                email: self.config.secretariat_email.clone(),
                name: "Secretaría Técnica".into(),
                language: Language::Es,
                time_zone: ctx.body.secretariat_time_zone,
                focal_point_id: None,
                colleagues: Vec::new(),
            });
        }
        let notices = recipients
            .iter()
            .map(|r| self.notice_row(ctx, c, kind, template, round, r, step_no, now, files))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((notices, missing))
    }

    #[allow(clippy::too_many_arguments)]
    fn notice_row(
        &self,
        ctx: &Context<'_>,
        c: &Consultation,
        kind: NoticeKind,
        template: &str,
        round: Option<u32>,
        to: &Recipient,
        step_no: i64,
        now: DateTime<Utc>,
        files: &[FileRef],
    ) -> Result<NewNotice, EngineError> {
        let domain = &self.config.message_id_domain;
        let recipient_key = to
            .focal_point_id
            .map_or_else(|| "ts".to_string(), |id| format!("fp{id}"));
        // Deterministic: the same step for the same recipient always yields the same
        // Message-ID, so a resend after a crash is recognisable.
        let message_id = format!(
            "<{}.s{step_no}.{}.{recipient_key}@{domain}>",
            c.reference,
            kind.as_str()
        );
        let record = round.and_then(|n| c.rounds.iter().find(|r| r.number == n));
        // A notice that asks a focal point for an answer carries a token naming the
        // stage it asks about and who was asked; one that asks for none carries none
        // (a reply to it is not an answer for any stage). Without a key, a notice that
        // asks for an answer is refused rather than sent with a bare Reply-To.
        let stage = match (to.focal_point_id, to.country) {
            (Some(_), Some(_)) => token_stage(kind, c, round),
            _ => None,
        };
        let mut answer_page = None;
        let reply_to = match (stage, &self.config.token_key, to.focal_point_id, to.country) {
            (Some(stage), Some(key), Some(fp), Some(country)) => {
                let token = key
                    .mint(&Token::Answer(AnswerToken {
                        reference: c.reference.clone(),
                        stage,
                        focal_point_id: fp,
                        country,
                    }))
                    .map_err(|e| anyhow::anyhow!("cannot sign a reply token: {e}"))?;
                // The answer page is the same token in a web form.
                if asks_for_answer(kind) {
                    answer_page = self.config.public_url.as_deref().map(|base| {
                        format!("{}/answer/{token}", base.trim().trim_end_matches('/'))
                    });
                }
                Some(reply_address(&self.config.reply_address, &token))
            }
            (Some(_), None, _, _) if asks_for_answer(kind) => {
                return Err(EngineError::NoTokenSecret {
                    notice: kind.as_str(),
                });
            }
            _ => None,
        };
        // A notice that asks for no answer still shows where mail to puebla goes.
        let answer_address = match (&reply_to, to.focal_point_id) {
            (Some(a), _) => Some(a.as_str()),
            (None, Some(_)) => Some(self.config.reply_address.as_str()),
            (None, None) => None,
        };
        let audience = Audience {
            language: to.language,
            time_zone: to.time_zone,
            country: to.country,
            country_name: &to.country_name,
            recipient_name: &to.name,
            reply_to: answer_address,
            email: Some(&to.email),
            focal_points: &to.colleagues,
            answer_page: answer_page.as_deref(),
        };
        let names = |code: CountryCode| {
            ctx.body
                .member(code)
                .map_or_else(|_| code.to_string(), |m| m.name(to.language).to_string())
        };
        let context = context(kind, c, round, &audience, &names);
        let rendered = self
            .templates
            .render(template, to.language, &context)
            .with_context(|| format!("cannot render the {template} notice to {}", to.email))?;
        let attach = record.is_some_and(|r| {
            kind == NoticeKind::RoundInvitation
                && ctx
                    .procedure
                    .rounds
                    .get(r.step)
                    .is_some_and(|s| s.attach_text)
        });
        let version = c.current_version();
        let thread = format!(
            "<{}.{}@{domain}>",
            c.reference,
            to.country
                .map_or("ts".to_string(), |c| c.as_str().to_ascii_lowercase())
        );
        let payload = NoticePayload {
            template: template.to_string(),
            version: version.number,
            focal_point_id: to.focal_point_id,
            reply_to,
            deadline: record.map(|r| r.deadline),
            time_zone: Some(to.time_zone.name().to_string()),
            attachment: attach.then(|| {
                (
                    format!("{}-v{}.md", c.reference, version.number),
                    version.text.clone(),
                )
            }),
            thread: Some(thread.clone()),
            // One calendar event per round and recipient: the invitation creates it,
            // each extension moves it (same UID, SEQUENCE = extensions so far).
            calendar_uid: record.map(|r| deadline_uid(&thread, r.number, &recipient_key)),
            calendar_sequence: record
                .map_or(0, |r| u32::try_from(r.extensions.len()).unwrap_or(u32::MAX)),
            files: files.to_vec(),
        };
        Ok(NewNotice {
            reference: Some(c.reference.clone()),
            kind: kind.into(),
            round: round.map(i64::from),
            country: to.country,
            recipient: to.email.clone(),
            recipient_name: to.name.clone(),
            language: to.language,
            subject: rendered.subject,
            body_text: rendered.text,
            body_html: Some(rendered.html),
            message_id,
            payload_json: serde_json::to_string(&payload).context("serialize notice payload")?,
            created_at: now,
        })
    }
}
