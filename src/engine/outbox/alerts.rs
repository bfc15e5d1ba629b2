//! The alert to the Technical Secretariat about a notice that failed for good.

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use crate::domain::{input, Language};
use crate::engine::ports::{NewNotice, Notice, SystemNoticeKind};
use crate::engine::system_notice::{NoticeFailedView, NOTICE_FAILED};
use crate::engine::Engine;
use crate::mail::NoticePayload;

/// Makes the alert to the Technical Secretariat about a notice that failed for good
/// (it cannot be built, the relay refused it, or it ran out of attempts). The engine
/// makes it (below); `puebla serve` gives it to its worker ([`OutboxWorker::with_alerts`]).
pub trait FailureAlerts: Send + Sync {
    /// The alert about `failed`, which failed with `error` at `at`; `None` when no
    /// alert is sent: about an alert that failed itself, which would loop.
    fn failure_alert(
        &self,
        failed: &Notice,
        error: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Option<NewNotice>>;
}

/// The longest failure reason an alert quotes, in characters.
const ALERT_ERROR_CHARS: usize = 1000;

impl FailureAlerts for Engine {
    fn failure_alert(
        &self,
        failed: &Notice,
        error: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Option<NewNotice>> {
        let n = &failed.notice;
        // An alert that failed itself is not alerted about: that would loop. It stays
        // failed, listed in `/status` like any other.
        if n.kind == SystemNoticeKind::NoticeFailed {
            return Ok(None);
        }
        // The TS reads Spanish (as the bounce alerts).
        let l = Language::Es;
        let body = &self.catalog.body;
        let country = n
            .country
            .and_then(|c| body.member(c).ok())
            .map(|m| m.name(l).to_string());
        let mut shown_error =
            input::visible(&error.chars().take(ALERT_ERROR_CHARS).collect::<String>());
        if error.chars().nth(ALERT_ERROR_CHARS).is_some() {
            shown_error.push('…');
        }
        let name = "Secretaría Técnica";
        let view = NoticeFailedView {
            lang: l.as_str(),
            tag: n
                .reference
                .as_ref()
                .map_or_else(|| body.code.clone(), ToString::to_string),
            reference: n.reference.as_ref().map(ToString::to_string),
            body: body.code.clone(),
            recipient_name: name.into(),
            notice_id: failed.id,
            kind: n.kind.to_string(),
            address: input::quoted(&n.recipient),
            name: input::quoted(&n.recipient_name),
            country,
            subject: input::quoted(&n.subject),
            failed: crate::mail::locale::format_deadline(at, body.secretariat_time_zone, l),
            error: shown_error,
        };
        let rendered = self
            .templates
            .render_with(NOTICE_FAILED, l, &view)
            .with_context(|| format!("cannot render the {NOTICE_FAILED} notice"))?;
        let domain = &self.config.message_id_domain;
        Ok(Some(NewNotice {
            reference: n.reference.clone(),
            kind: SystemNoticeKind::NoticeFailed.into(),
            round: None,
            country: None,
            recipient: self.config.secretariat_email.clone(),
            recipient_name: name.into(),
            language: l,
            subject: rendered.subject,
            body_text: rendered.text,
            body_html: Some(rendered.html),
            message_id: format!("<outbox.{}.{NOTICE_FAILED}.ts@{domain}>", failed.id),
            payload_json: serde_json::to_string(&NoticePayload {
                template: NOTICE_FAILED.into(),
                ..NoticePayload::default()
            })
            .context("serialize notice payload")?,
            created_at: at,
        }))
    }
}
