//! The notices a decision tells outside the procedure step: explanations of a
//! quarantined or oversized message, confirmation requests, bounce alerts.

use anyhow::Context as _;
use chrono::Datelike;

use super::decide::facts::{Facts, Read, ReadAs};
use crate::domain::consultation::{Position, TransitionError};
use crate::domain::{ConsultationRef, CountryCode, Language};
use crate::engine::ports::{
    FocalPointRow, InboundMessage, InboundReading, NewNotice, SystemNoticeKind,
};
use crate::engine::system_notice::{
    BounceAlertView, ConfirmationRequestView, QuarantineView, BOUNCE_ALERT, CONFIRMATION_REQUEST,
};
use crate::engine::{Engine, EngineError};
use crate::mail::inbound::Inspection;
use crate::mail::templates::Rendered;
use crate::mail::token::{ConfirmationToken, StageRef, Token};
use crate::mail::NoticePayload;

impl Engine {
    /// The explanation of a quarantined or oversized message, to the directory
    /// address of its sender.
    pub(super) fn quarantine_notice(
        &self,
        row: &InboundMessage,
        reading: &InboundReading,
        to: &FocalPointRow,
        l: Language,
        reason: &str,
        kind: SystemNoticeKind,
    ) -> Result<NewNotice, EngineError> {
        let body = &self.catalog().body;
        let oversized = (kind == SystemNoticeKind::Oversized).then(|| {
            (
                usize::try_from(row.size).unwrap_or(usize::MAX),
                self.config.inbound_max_bytes,
            )
        });
        let view = QuarantineView::new(
            l,
            &body.code,
            reading
                .reference
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            reading.subject.as_deref(),
            row.received_at,
            body.secretariat_time_zone,
            reason,
            oversized,
        );
        let rendered = self
            .templates
            .render_with(kind.as_str(), l, &view)
            .with_context(|| format!("cannot render the {kind} notice to {}", to.email))?;
        self.inbound_notice(
            row,
            kind,
            "sender",
            None,
            None,
            to.email.as_str(),
            &to.name,
            l,
            rendered,
            None,
        )
    }

    /// "We received from your address … read as …": asks the focal point, at the
    /// directory's address, to confirm a held message, with a confirmation token.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn confirmation_request(
        &self,
        row: &InboundMessage,
        read: &Read,
        facts: &Facts,
        to: &FocalPointRow,
        reference: &ConsultationRef,
        stage: StageRef,
        read_as: ReadAs,
    ) -> Result<NewNotice, EngineError> {
        let key = self
            .config
            .token_key
            .as_ref()
            .ok_or(EngineError::NoTokenSecret {
                notice: CONFIRMATION_REQUEST,
            })?;
        let country = to.country;
        let token = key
            .mint(&Token::Confirmation(ConfirmationToken {
                inbound_id: row.id,
                focal_point_id: to.id,
                country,
            }))
            .map_err(|e| anyhow::anyhow!("cannot sign a confirmation token: {e}"))?;
        let reply_to = crate::mail::token::reply_address(&self.config.reply_address, &token);
        let body = match &facts.body {
            Some(b) => b.clone(),
            None => self.catalog.body.clone(),
        };
        let member = body.member(country).map_err(TransitionError::from)?;
        let l = to.language;
        let consultation = facts.consultation.as_ref().map(|(c, _)| c);
        let deadline = match (stage, consultation) {
            (StageRef::Round { round }, Some(c)) => c
                .rounds
                .iter()
                .find(|r| r.number == round)
                .map(|r| crate::mail::locale::format_deadline(r.deadline, member.time_zone, l)),
            _ => None,
        };
        let words = crate::mail::locale::answer_words(l);
        let (read_as, ambiguous) = match read_as {
            ReadAs::Position {
                position,
                ambiguous,
            } => (
                match position {
                    Position::NoObjection => words.no_objection,
                    Position::Objection => words.objection,
                    Position::Comments => words.comments,
                },
                ambiguous,
            ),
            ReadAs::Troika { approve: true } => (words.approve, false),
            ReadAs::Troika { approve: false } => (words.changes, false),
        };
        let stage_label = match (stage, consultation) {
            (StageRef::Round { round }, c) => {
                let name = c
                    .and_then(|c| c.rounds.iter().find(|r| r.number == round))
                    .map(|r| crate::mail::locale::stage_label(&r.stage, l));
                crate::engine::system_notice::round_label(round, name.as_deref(), l)
            }
            (StageRef::Troika { .. }, _) => crate::mail::locale::stage_label("troika_review", l),
        };
        let view = ConfirmationRequestView {
            lang: l.as_str(),
            tag: reference.to_string(),
            reference: reference.to_string(),
            body: self.catalog.body.code.clone(),
            title: consultation.map(|c| c.title.clone()),
            recipient_name: to.name.clone(),
            country: member.name(l).to_string(),
            address: to.email.to_string(),
            subject: Some(read.inspection.headers.subject.clone()).filter(|s| !s.trim().is_empty()),
            received: crate::mail::locale::format_deadline(row.received_at, member.time_zone, l),
            stage: stage_label,
            troika: stage.is_troika(),
            read_as: read_as.to_string(),
            ambiguous,
            quote: crate::engine::system_notice::quote(&read.inspection.text),
            confirm: crate::engine::system_notice::confirm_word(l),
            deny: crate::engine::system_notice::deny_words(l),
            words,
            deadline,
            reply_to: reply_to.clone(),
        };
        let rendered = self
            .templates
            .render_with(CONFIRMATION_REQUEST, l, &view)
            .with_context(|| {
                format!(
                    "cannot render the {CONFIRMATION_REQUEST} notice to {}",
                    to.email
                )
            })?;
        self.inbound_notice(
            row,
            SystemNoticeKind::ConfirmationRequest,
            &format!("fp{}", to.id),
            Some(reference.clone()),
            Some(country),
            to.email.as_str(),
            &to.name,
            l,
            rendered,
            Some(reply_to),
        )
    }

    /// One alert to the TS and one to each active focal point of the PPT, naming
    /// the country that may now not be reached.
    pub(super) async fn bounce_alerts(
        &self,
        row: &InboundMessage,
        inspection: &Inspection,
        facts: &Facts,
        fp: &FocalPointRow,
    ) -> Result<Vec<NewNotice>, EngineError> {
        let body = match &facts.body {
            Some(b) => b.clone(),
            None => self.body().await?,
        };
        let country = fp.country;
        let member = body.member(country).map_err(TransitionError::from)?;
        // The PPT of the consultation the bounced notice was about, else this year's.
        let reference = facts
            .bounced_notice
            .as_ref()
            .and_then(|(n, _)| n.notice.reference.clone())
            .or_else(|| inspection.reference.clone());
        let consultation = match &reference {
            Some(r) => self.load_ref(r).await.ok().map(|(c, _)| c),
            None => None,
        };
        let presidency = consultation
            .as_ref()
            .map(|c| c.presidency)
            .or_else(|| body.presidency.get(&self.now().year()).copied());
        let reachable: Vec<String> = self
            .store
            .focal_points(Some(country), true)
            .await?
            .into_iter()
            .filter(|f| f.id != fp.id && !facts.bouncing.contains(&f.id))
            .map(|f| f.email.to_string())
            .collect();
        let mut recipients: Vec<(Option<CountryCode>, String, String, Language, String)> = vec![(
            None,
            self.config.secretariat_email.clone(),
            "Secretaría Técnica".into(),
            Language::Es,
            "ts".into(),
        )];
        if let Some(ppt) = presidency {
            body.member(ppt).map_err(TransitionError::from)?;
            for p in self.store.focal_points(Some(ppt), true).await? {
                if p.id == fp.id {
                    continue;
                }
                let language = p.language;
                recipients.push((
                    Some(ppt),
                    p.email.to_string(),
                    p.name,
                    language,
                    format!("fp{}", p.id),
                ));
            }
        }
        let reference = consultation.as_ref().map(|c| c.reference.clone());
        // Every subject starts with a bracketed reference: the consultation's, or the body's.
        let tag = reference
            .as_ref()
            .map_or_else(|| self.catalog().body.code.clone(), ToString::to_string);
        let mut out = Vec::new();
        for (to_country, email, name, l, key) in recipients {
            let view = BounceAlertView {
                lang: l.as_str(),
                tag: tag.clone(),
                reference: reference.as_ref().map(ToString::to_string),
                body: self.catalog().body.code.clone(),
                recipient_name: name.clone(),
                country: member.name(l).to_string(),
                country_code: country.to_string(),
                address: fp.email.to_string(),
                focal_point: fp.name.clone(),
                report: inspection
                    .reason
                    .trim_end_matches("; not counted")
                    .to_string(),
                reachable: reachable.clone(),
            };
            let rendered = self
                .templates
                .render_with(BOUNCE_ALERT, l, &view)
                .with_context(|| format!("cannot render the {BOUNCE_ALERT} notice to {email}"))?;
            out.push(self.inbound_notice(
                row,
                SystemNoticeKind::BounceAlert,
                &format!("{key}.{}", fp.id),
                reference.clone(),
                to_country,
                &email,
                &name,
                l,
                rendered,
                None,
            )?);
        }
        Ok(out)
    }

    /// A notice caused by an inbound message, with a Message-ID derived from it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn inbound_notice(
        &self,
        row: &InboundMessage,
        kind: SystemNoticeKind,
        key: &str,
        reference: Option<ConsultationRef>,
        country: Option<CountryCode>,
        recipient: &str,
        recipient_name: &str,
        language: Language,
        rendered: Rendered,
        reply_to: Option<String>,
    ) -> Result<NewNotice, EngineError> {
        let domain = &self.config.message_id_domain;
        Ok(NewNotice {
            reference,
            kind: kind.into(),
            round: None,
            country,
            recipient: recipient.to_string(),
            recipient_name: recipient_name.to_string(),
            language,
            subject: rendered.subject,
            body_text: rendered.text,
            body_html: Some(rendered.html),
            message_id: format!("<inbound.{}.{kind}.{key}@{domain}>", row.id),
            payload_json: serde_json::to_string(&NoticePayload {
                template: kind.to_string(),
                reply_to,
                ..NoticePayload::default()
            })
            .context("serialize notice payload")?,
            created_at: self.now(),
        })
    }
}
