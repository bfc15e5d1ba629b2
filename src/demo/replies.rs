//! The focal points' scripted messages in the demo: replies, a Troika answer, a
//! confirmation, an out-of-office, a bounce and a forged one.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::domain::{ConsultationRef, CountryCode};
use crate::engine::inbound::{Disposition, InboundSource};
use crate::mail::simulate::{self, Reply};
use crate::mail::NoticePayload;

use super::stage::Demo;

impl Demo<'_> {
    /// The latest notice of `reference` to `email` that carries a reply address
    /// (of round `round` when given): what a focal point replies to.
    pub(super) async fn notice_to(
        &self,
        reference: &str,
        email: &str,
        round: Option<i64>,
    ) -> Result<(crate::engine::ports::Notice, String)> {
        let key = ConsultationRef::parse_canonical(reference)?;
        let notices = self.engine.store().notices(Some(&key)).await?;
        notices
            .into_iter()
            .rev()
            .filter(|n| {
                n.notice.recipient == email && round.is_none_or(|r| n.notice.round == Some(r))
            })
            .find_map(|n| {
                let payload: NoticePayload = serde_json::from_str(&n.notice.payload_json).ok()?;
                let reply_to = payload.reply_to?;
                Some((n, reply_to))
            })
            .with_context(|| format!("no notice to {email} to reply to"))
    }

    /// A focal point replies by email: a raw message, written the way its mail
    /// client writes one (the notice quoted below), goes through `Engine::ingest`.
    pub(super) async fn email(
        &mut self,
        reference: &str,
        at: DateTime<Utc>,
        country: &str,
        text: &str,
        gmail: bool,
        round: Option<i64>,
    ) -> Result<()> {
        self.email_from(reference, at, country, 1, text, gmail, round)
            .await
    }

    /// As [`Demo::email`], from the country's focal point number `fp`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn email_from(
        &mut self,
        reference: &str,
        at: DateTime<Utc>,
        country: &str,
        fp: u32,
        text: &str,
        gmail: bool,
        round: Option<i64>,
    ) -> Result<()> {
        self.advance_to(reference, at).await?;
        let email = format!("fp{fp}.{}@example.org", country.to_ascii_lowercase());
        let (notice, reply_to) = self.notice_to(reference, &email, round).await?;
        let message_id = format!("<demo-{country}-{}@example.org>", at.timestamp());
        let reply = Reply {
            from_name: &notice.notice.recipient_name,
            from: &email,
            to: &reply_to,
            subject: &notice.notice.subject,
            in_reply_to: Some(&notice.notice.message_id),
            text,
            quoted: &notice.notice.body_text,
            date: at,
            message_id: &message_id,
        };
        let (raw, client) = if gmail {
            (simulate::gmail_reply(&reply), "Gmail")
        } else {
            (simulate::outlook_reply(&reply), "Outlook")
        };
        let outcome = self.engine.ingest(&raw, InboundSource::Imap).await?;
        let sent = self.deliver().await?;
        let read = match &outcome.disposition {
            Disposition::Counted {
                position,
                round,
                ambiguous,
                ..
            } => format!(
                "read as {position}{} → counted in round {round}",
                if *ambiguous {
                    " (unclear: counts provisionally, listed for review)"
                } else {
                    ""
                }
            ),
            Disposition::Late { round, .. } => {
                format!("late for round {round}: recorded, not counted")
            }
            other => describe(other),
        };
        let c = self.engine.load(reference).await?.0;
        let notices = if sent > 0 {
            format!(" [{sent} notice(s)]")
        } else {
            String::new()
        };
        let conflict = c
            .rounds
            .last()
            .and_then(|r| r.answers.get(&CountryCode::parse(country).ok()?))
            .filter(|a| a.answerer().as_deref() == Some(email.as_str()))
            .and_then(|a| a.conflict.as_ref())
            .map(|k| {
                format!(
                    "; differs from {}'s {} (conflict flagged; every focal point of {country} told)",
                    k.from.as_deref().unwrap_or("staff"),
                    k.position
                )
            })
            .unwrap_or_default();
        let who = if fp == 1 {
            country.to_string()
        } else {
            format!("{country} (focal point {fp})")
        };
        let line = format!(
            "{who} replies by email ({client}): {read}{conflict} → {}{notices}",
            c.stage_name()
        );
        self.line(at, &line)?;
        if c.stage_name() != self.last_stage {
            self.after_stage_change(&c).await?;
        }
        Ok(())
    }

    /// A Troika member answers the Troika request by email with its keyword.
    pub(super) async fn troika_email(
        &mut self,
        reference: &str,
        at: DateTime<Utc>,
        country: &str,
        text: &str,
    ) -> Result<()> {
        self.advance_to(reference, at).await?;
        let email = format!("fp1.{}@example.org", country.to_ascii_lowercase());
        let (notice, reply_to) = self.notice_to(reference, &email, None).await?;
        let raw = simulate::outlook_reply(&Reply {
            from_name: &notice.notice.recipient_name,
            from: &email,
            to: &reply_to,
            subject: &notice.notice.subject,
            in_reply_to: Some(&notice.notice.message_id),
            text,
            quoted: &notice.notice.body_text,
            date: at,
            message_id: &format!("<demo-troika-{country}-{}@example.org>", at.timestamp()),
        });
        let outcome = self.engine.ingest(&raw, InboundSource::Imap).await?;
        let sent = self.deliver().await?;
        let c = self.engine.load(reference).await?.0;
        let line = format!(
            "Troika: {country} answers by email: {} → {}{}",
            describe(&outcome.disposition),
            c.stage_name(),
            notices(sent)
        );
        self.line(at, &line)?;
        if c.stage_name() != self.last_stage {
            self.after_stage_change(&c).await?;
        }
        Ok(())
    }

    /// A focal point writes a fresh email (not a reply to the notice, so without its
    /// token) naming the consultation: it is held, the focal point is asked at the
    /// registered address to confirm, and confirms.
    pub(super) async fn fresh_email_then_confirm(
        &mut self,
        reference: &str,
        at: DateTime<Utc>,
        country: &str,
        text: &str,
        confirm_at: DateTime<Utc>,
    ) -> Result<()> {
        self.advance_to(reference, at).await?;
        let email = format!("fp1.{}@example.org", country.to_ascii_lowercase());
        let raw = simulate::fresh_email(
            "Punto Focal",
            &email,
            "consultas@rcm-ts.example",
            &format!("[{reference}] Respuesta de {country}"),
            text,
            at,
            &format!("<demo-fresh-{country}-{}@example.org>", at.timestamp()),
        );
        let held = self.engine.ingest(&raw, InboundSource::Imap).await?;
        let sent = self.deliver().await?;
        self.line(
            at,
            &format!(
                "{country} writes a new email without the reply token: {}{}",
                describe(&held.disposition),
                notices(sent)
            ),
        )?;
        self.advance_to(reference, confirm_at).await?;
        let key = ConsultationRef::parse_canonical(reference)?;
        let request = self
            .engine
            .store()
            .notices(Some(&key))
            .await?
            .into_iter()
            .rev()
            .find(|n| {
                n.notice.kind == crate::engine::ports::SystemNoticeKind::ConfirmationRequest
                    && n.notice.recipient == email
            })
            .context("the confirmation request")?;
        let payload: NoticePayload = serde_json::from_str(&request.notice.payload_json)?;
        let to = payload
            .reply_to
            .context("the confirmation request's token")?;
        let raw = simulate::gmail_reply(&Reply {
            from_name: "Punto Focal",
            from: &email,
            to: &to,
            subject: &request.notice.subject,
            in_reply_to: Some(&request.notice.message_id),
            text: "CONFIRMO",
            quoted: &request.notice.body_text,
            date: confirm_at,
            message_id: &format!(
                "<demo-confirm-{country}-{}@example.org>",
                confirm_at.timestamp()
            ),
        });
        let outcome = self.engine.ingest(&raw, InboundSource::Imap).await?;
        let sent = self.deliver().await?;
        let c = self.engine.load(reference).await?.0;
        self.line(
            confirm_at,
            &format!(
                "{country} replies CONFIRMO from the registered address: {} → {}{}",
                describe(&outcome.disposition),
                c.stage_name(),
                notices(sent)
            ),
        )
    }

    /// A forged "Delivery Status Notification" naming a focal point's address and
    /// referring to no notice: kept for the TS, nothing marked, nobody alerted.
    pub(super) async fn forged_bounce(
        &mut self,
        reference: &str,
        at: DateTime<Utc>,
        email: &str,
    ) -> Result<()> {
        self.advance_to(reference, at).await?;
        let raw = simulate::delivery_report(
            email,
            &format!("[{reference}] consulta"),
            "<made-up@forger.example>",
            at,
            &format!("<demo-forged-dsn-{}@forger.example>", at.timestamp()),
            false,
        );
        let outcome = self.engine.ingest(&raw, InboundSource::Imap).await?;
        let sent = self.deliver().await?;
        let what = match outcome.disposition {
            Disposition::Quarantined { .. } => {
                "kept for the TS; nothing marked, nobody alerted".to_string()
            }
            other => describe(&other),
        };
        self.line(
            at,
            &format!(
                "a forged bounce naming {email} (it refers to no notice): {what}{}",
                notices(sent)
            ),
        )
    }

    /// An out-of-office answer arrives from `country`'s focal point.
    pub(super) async fn out_of_office(
        &mut self,
        reference: &str,
        at: DateTime<Utc>,
        country: &str,
    ) -> Result<()> {
        self.advance_to(reference, at).await?;
        let email = format!("fp1.{}@example.org", country.to_ascii_lowercase());
        let (notice, reply_to) = self.notice_to(reference, &email, None).await?;
        let raw = simulate::out_of_office(
            &notice.notice.recipient_name,
            &email,
            &reply_to,
            &notice.notice.subject,
            at,
            &format!("<demo-ooo-{country}-{}@example.org>", at.timestamp()),
        );
        let outcome = self.engine.ingest(&raw, InboundSource::Imap).await?;
        let sent = self.deliver().await?;
        let what = match outcome.disposition {
            Disposition::AutoReply { .. } => "recorded, not counted, not answered".to_string(),
            other => format!("{other:?}"),
        };
        let suffix = if sent > 0 {
            format!(" [{sent} notice(s)]")
        } else {
            String::new()
        };
        self.line(
            at,
            &format!("{country}'s mailbox answers automatically (out of office): {what}{suffix}"),
        )
    }

    /// The mail server of `email` refuses a notice for good: the report comes back
    /// to the notice's signed envelope address.
    pub(super) async fn bounce(
        &mut self,
        reference: &str,
        at: DateTime<Utc>,
        email: &str,
    ) -> Result<()> {
        self.advance_to(reference, at).await?;
        let (notice, _) = self.notice_to(reference, email, None).await?;
        let envelope = self
            .engine
            .bounce_address_of(notice.id)
            .context("a bounce address (the demo signs with a secret)")?;
        let raw = simulate::delivery_report_to(
            &envelope,
            email,
            &notice.notice.subject,
            &notice.notice.message_id,
            at,
            &format!("<demo-dsn-{}@mx.example.org>", at.timestamp()),
            false,
        );
        let outcome = self.engine.ingest(&raw, InboundSource::Imap).await?;
        let sent = self.deliver().await?;
        let what = match outcome.disposition {
            Disposition::Bounce {
                newly_bouncing: true,
                country,
                ..
            } => format!(
                "marked bouncing; TS and PPT alerted that {} may not be reached",
                country.map_or_else(|| "a country".to_string(), |c| c.to_string())
            ),
            other => format!("{other:?}"),
        };
        let suffix = if sent > 0 {
            format!(" [{sent} notice(s)]")
        } else {
            String::new()
        };
        self.line(
            at,
            &format!("bounce: {email} rejects mail (5.1.1): {what}{suffix}"),
        )
    }
}

/// What became of a message, in a few words for the timeline.
fn describe(d: &Disposition) -> String {
    match d {
        Disposition::Counted {
            position,
            round,
            ambiguous,
            ..
        } => format!(
            "read as {position}{} → counted in round {round}",
            if *ambiguous {
                " (unclear, flagged)"
            } else {
                ""
            }
        ),
        Disposition::Late { round, .. } => format!("late for round {round}: recorded, not counted"),
        Disposition::TroikaFeedback { approve, late, .. } => format!(
            "{}{}",
            if *approve { "APROBAR" } else { "CAMBIOS" },
            if *late {
                " (late: recorded, changes nothing)"
            } else {
                " → recorded, confirmed to the sender"
            }
        ),
        Disposition::AwaitingConfirmation { .. } => {
            "held, awaiting confirmation; a confirmation request went to the registered address"
                .to_string()
        }
        Disposition::Confirmed { recorded, .. } => {
            format!("the held message now counts ({})", describe(recorded))
        }
        Disposition::Ignored { reason } => format!("nothing to do: {reason}"),
        Disposition::Quarantined { reason } => format!("held for the TS: {reason}"),
        other => format!("{other:?}"),
    }
}

fn notices(sent: usize) -> String {
    if sent > 0 {
        format!(" [{sent} notice(s)]")
    } else {
        String::new()
    }
}
