//! Builds the MIME message for a stored notice with `lettre`.
//!
//! The message is a pure function of the notice and the configured From address:
//! the Date is the notice's `created_at` (never the system clock), the Message-ID is
//! the notice's deterministic one, and the MIME boundaries derive from it, so the
//! same notice always formats to the same bytes and a resend after a crash is
//! recognisable as such.
//!
//! Structure:
//! ```text
//! multipart/mixed                      (only when there are attachments)
//!   multipart/alternative              (only when there is an HTML body)
//!     text/plain; charset=utf-8
//!     text/html; charset=utf-8
//!   text/calendar; method=PUBLISH      (invitations with a deadline: the .ics)
//!   text/markdown; charset=utf-8       (the text, when the procedure asks for it)
//!   <the stored content type>          (the consultation's attached files, when the
//!                                       notice carries the text: same bytes and name)
//! ```

// `mail/mod.rs` is shared with the template work, so the calendar module hangs off
// this one (the file is `mail/ics.rs` beside it).
#[path = "ics.rs"]
pub mod ics;

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};
use sha2::{Digest, Sha256};

use self::ics::{deadline_calendar, legacy_uid, DeadlineEvent};
use crate::domain::{input, ConsultationRef, Language};
use crate::mail::locale::format_deadline;
use crate::mail::token::{bounce_address, BounceToken, Token, TokenKey};
use crate::mail::{FileRef, NoticePayload};

/// Why a notice could not be turned into a message. Retrying does not help: the
/// worker records it as a permanent failure.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("the {field} address `{value}` is not valid: {reason}")]
    Address {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("the notice's payload cannot be read: {0}")]
    Payload(#[from] serde_json::Error),
    #[error("the message cannot be assembled: {0}")]
    Build(String),
    /// A value that goes into a header has a control character in it (a line break
    /// in a name would be a forged header; lettre panics on it).
    #[error("the {field} `{value}` {problem}: it cannot go into a mail header")]
    Header {
        field: &'static str,
        /// As quoted in errors: control characters escaped, at most 60 characters.
        value: String,
        problem: String,
    },
}

/// What a message is built from: the fields of a notice as the engine wrote it to
/// the outbox. Mail knows nothing of the store; the outbox's rows give this view
/// ([`AsMessageSource`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSource<'a> {
    /// The outbox row.
    pub id: i64,
    pub reference: Option<&'a ConsultationRef>,
    pub kind: &'a str,
    pub country: Option<&'a str>,
    pub recipient: &'a str,
    pub recipient_name: &'a str,
    pub language: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub body_html: Option<&'a str>,
    pub message_id: &'a str,
    pub payload_json: &'a str,
    pub created_at: DateTime<Utc>,
}

/// A notice a message can be built from.
pub trait AsMessageSource {
    fn message_source(&self) -> MessageSource<'_>;
}

impl AsMessageSource for MessageSource<'_> {
    fn message_source(&self) -> MessageSource<'_> {
        *self
    }
}

/// A message ready for a transport: the envelope and the formatted bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The outbox row it came from.
    pub notice_id: i64,
    /// A short stable name, `000042-RCM-2027-001-round_invitation-hn`: the file
    /// transport's file name, and a handle in logs.
    pub label: String,
    /// With angle brackets, as in the header.
    pub message_id: String,
    /// The envelope sender (MAIL FROM): the From address, or the notice's signed
    /// bounce address ([`Outgoing::with_bounce_address`]).
    pub envelope_from: String,
    /// The envelope recipients (RCPT TO).
    pub to: Vec<String>,
    /// The RFC 5322 message, CRLF line endings.
    pub bytes: Vec<u8>,
}

impl Outgoing {
    /// Builds the message for `notice`, from `from` (e.g. `RCM Consultations <consultas@rcm-ts.example>`).
    pub fn from_notice(notice: &impl AsMessageSource, from: &str) -> Result<Self, MessageError> {
        Self::from_notice_with_files(notice, from, &[])
    }

    /// As [`Outgoing::from_notice`], with the bytes of the files the notice's payload
    /// names (`payload.files`, read from the store by the worker).
    pub fn from_notice_with_files(
        notice: &impl AsMessageSource,
        from: &str,
        files: &[(FileRef, Vec<u8>)],
    ) -> Result<Self, MessageError> {
        let message = build_with_files(notice, from, files)?;
        let envelope = message.envelope();
        let n = notice.message_source();
        Ok(Self {
            notice_id: n.id,
            label: format!(
                "{:06}-{}-{}-{}",
                n.id,
                n.reference
                    .map_or_else(|| "general".into(), ToString::to_string),
                n.kind,
                n.country.unwrap_or("ts").to_ascii_lowercase()
            ),
            message_id: n.message_id.to_string(),
            envelope_from: envelope.from().map(ToString::to_string).unwrap_or_default(),
            to: envelope.to().iter().map(ToString::to_string).collect(),
            bytes: message.formatted(),
        })
    }
}

impl Outgoing {
    /// Sends the message with its own signed envelope sender (VERP):
    /// `consultas+b.TOKEN@domain`, the token naming this notice. A bounce comes back
    /// to it (as the Return-Path its recipient's server recorded), and only such a
    /// bounce, or one returning this notice's Message-ID, marks the recipient bouncing.
    /// The headers are unchanged: replies still go to Reply-To.
    pub fn with_bounce_address(mut self, key: &TokenKey) -> Result<Self, MessageError> {
        let token = key
            .mint(&Token::Bounce(BounceToken {
                notice_id: self.notice_id,
            }))
            .map_err(|e| MessageError::Build(format!("cannot sign the bounce address: {e}")))?;
        let verp = bounce_address(&self.envelope_from, &token);
        address("envelope sender", &verp)?;
        self.envelope_from = verp;
        Ok(self)
    }
}

fn mailbox(field: &'static str, value: &str) -> Result<Mailbox, MessageError> {
    value
        .trim()
        .parse::<Mailbox>()
        .map_err(|e| MessageError::Address {
            field,
            value: value.to_string(),
            reason: e.to_string(),
        })
}

fn address(field: &'static str, value: &str) -> Result<Address, MessageError> {
    value
        .trim()
        .parse::<Address>()
        .map_err(|e| MessageError::Address {
            field,
            value: value.to_string(),
            reason: e.to_string(),
        })
}

fn raw(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
}

fn content_type(s: &str) -> Result<ContentType, MessageError> {
    ContentType::parse(s).map_err(|e| MessageError::Build(format!("content type {s}: {e}")))
}

/// The payload the engine stored with the notice; an empty document means none.
pub fn payload(notice: &impl AsMessageSource) -> Result<NoticePayload, MessageError> {
    let json = notice.message_source().payload_json.trim();
    if json.is_empty() || json == "{}" {
        return Ok(NoticePayload::default());
    }
    Ok(serde_json::from_str(json)?)
}

/// Whether the notice carries the `.ics` entry: every round invitation with a
/// deadline, any other kind of invitation that has one, and the notice that a
/// deadline was extended (the same event, moved).
pub fn wants_calendar(kind: &str, payload: &NoticePayload) -> bool {
    payload.deadline.is_some()
        && (kind == "round_invitation"
            || kind.ends_with("invitation")
            || kind == "deadline_extended")
}

/// A MIME boundary that depends only on the Message-ID (and the part's role).
fn boundary(message_id: &str, role: &str) -> String {
    let digest = Sha256::digest(format!("{role}\0{message_id}").as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("=_puebla_{role}_{hex}")
}

fn pick<'a>(lang: Language, es: &'a str, en: &'a str, fr: &'a str) -> &'a str {
    match lang {
        Language::Es => es,
        Language::En => en,
        Language::Fr => fr,
    }
}

/// Builds the `lettre` message for a notice.
pub fn build(notice: &impl AsMessageSource, from: &str) -> Result<Message, MessageError> {
    build_with_files(notice, from, &[])
}

/// Builds the `lettre` message for a notice with the bytes of the files its payload
/// names; a named file missing from `files` is an error (nothing goes out without it).
pub fn build_with_files(
    notice: &impl AsMessageSource,
    from: &str,
    files: &[(FileRef, Vec<u8>)],
) -> Result<Message, MessageError> {
    let n = notice.message_source();
    let payload = payload(notice)?;
    // Every value written into a header is one line. The edges refuse control
    // characters, but a row written before they did (or by hand) must fail here, as
    // this notice's permanent failure, and not in lettre, as a panic.
    let thread = payload.thread.as_deref().unwrap_or_default();
    let reply_to = payload.reply_to.as_deref().unwrap_or_default();
    for (field, value) in [
        ("From", from),
        ("recipient", n.recipient),
        ("recipient's name", n.recipient_name),
        ("subject", n.subject),
        ("language", n.language),
        ("Message-ID", n.message_id),
        ("thread", thread),
        ("Reply-To", reply_to),
    ] {
        if let Some(problem) = input::header_problem(value) {
            return Err(MessageError::Header {
                field,
                value: input::quoted(value),
                problem,
            });
        }
    }
    let from = mailbox("From", from)?;
    let to = Mailbox::new(
        (!n.recipient_name.trim().is_empty()).then(|| n.recipient_name.trim().to_string()),
        address("To", n.recipient)?,
    );
    // Replies go to the token address when there is one, else to From.
    let reply_to = match &payload.reply_to {
        Some(r) => Mailbox::new(from.name.clone(), address("Reply-To", r)?),
        None => from.clone(),
    };
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .reply_to(reply_to)
        .subject(n.subject)
        .date(SystemTime::from(n.created_at))
        .message_id(Some(n.message_id.to_string()))
        .raw_header(raw("Auto-Submitted", "auto-generated"))
        .raw_header(raw("Content-Language", n.language));
    if let Some(thread) = &payload.thread {
        builder = builder
            .in_reply_to(thread.clone())
            .references(thread.clone());
    }

    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(n.body_text.replace("\r\n", "\n"));
    let mut attachments = Vec::new();
    if let (true, Some(deadline)) = (wants_calendar(n.kind, &payload), payload.deadline) {
        let lang = n.language.parse::<Language>().unwrap_or(Language::En);
        let tz: Tz = payload
            .time_zone
            .as_deref()
            .and_then(|z| z.parse().ok())
            .unwrap_or(Tz::UTC);
        let when = format_deadline(deadline, tz, lang);
        let reference = n.reference.map(ToString::to_string).unwrap_or_default();
        let summary = format!(
            "{}: {}",
            pick(lang, "Plazo", "Deadline", "Échéance"),
            n.subject
        );
        let description = format!(
            "{} {when}. {}",
            pick(
                lang,
                "Plazo para responder:",
                "Deadline to answer:",
                "Échéance pour répondre :"
            ),
            pick(
                lang,
                "Responda al mensaje de la consulta.",
                "Reply to the consultation message.",
                "Répondez au message de la consultation.",
            ),
        );
        let alarm = format!(
            "{} {reference}: {when}",
            pick(
                lang,
                "Plazo de la consulta",
                "Consultation deadline",
                "Échéance de la consultation"
            )
        );
        let uid = payload
            .calendar_uid
            .clone()
            .unwrap_or_else(|| legacy_uid(n.message_id));
        let ics = deadline_calendar(&DeadlineEvent {
            uid: &uid,
            sequence: payload.calendar_sequence,
            created_at: n.created_at,
            deadline,
            summary: &summary,
            description: &description,
            alarm: &alarm,
        });
        let name = if reference.is_empty() {
            "deadline.ics".to_string()
        } else {
            format!("{reference}-deadline.ics")
        };
        attachments.push(Attachment::new(name).body(
            ics,
            content_type("text/calendar; charset=utf-8; method=PUBLISH")?,
        ));
    }
    if let Some((name, text)) = &payload.attachment {
        attachments.push(
            Attachment::new(name.clone())
                .body(text.clone(), content_type("text/markdown; charset=utf-8")?),
        );
    }
    for wanted in &payload.files {
        let (_, bytes) = files
            .iter()
            .find(|(f, _)| f.sha256 == wanted.sha256)
            .ok_or_else(|| {
                MessageError::Build(format!(
                    "the attached file `{}` (sha256 {}) was not supplied",
                    wanted.filename, wanted.sha256
                ))
            })?;
        attachments.push(
            Attachment::new(wanted.filename.clone())
                .body(bytes.clone(), content_type(&wanted.content_type)?),
        );
    }

    let built = match (n.body_html, attachments.is_empty()) {
        (None, true) => builder.singlepart(text),
        (html, _) => {
            let body = match html {
                Some(html) => MultiPart::alternative()
                    .boundary(boundary(n.message_id, "alt"))
                    .singlepart(text)
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html.to_string()),
                    ),
                None => MultiPart::mixed()
                    .boundary(boundary(n.message_id, "mix"))
                    .singlepart(text),
            };
            if attachments.is_empty() {
                builder.multipart(body)
            } else {
                let mut mixed = if html.is_some() {
                    MultiPart::mixed()
                        .boundary(boundary(n.message_id, "mix"))
                        .multipart(body)
                } else {
                    body
                };
                for a in attachments {
                    mixed = mixed.singlepart(a);
                }
                builder.multipart(mixed)
            }
        }
    };
    built.map_err(|e| MessageError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    /// An outbox row as the tests write it.
    struct Notice {
        notice: Fields,
    }

    struct Fields {
        reference: ConsultationRef,
        kind: String,
        recipient: String,
        recipient_name: String,
        language: String,
        subject: String,
        body_html: Option<String>,
        message_id: String,
        payload_json: String,
        created_at: DateTime<Utc>,
    }

    impl AsMessageSource for Notice {
        fn message_source(&self) -> MessageSource<'_> {
            let n = &self.notice;
            MessageSource {
                id: 42,
                reference: Some(&n.reference),
                kind: &n.kind,
                country: Some("HN"),
                recipient: &n.recipient,
                recipient_name: &n.recipient_name,
                language: &n.language,
                subject: &n.subject,
                body_text: "Plazo: martes\n\nTexto.",
                body_html: n.body_html.as_deref(),
                message_id: &n.message_id,
                payload_json: &n.payload_json,
                created_at: n.created_at,
            }
        }
    }

    fn notice(kind: &str, html: Option<&str>, payload: NoticePayload) -> Notice {
        let created = Utc.with_ymd_and_hms(2027, 3, 19, 17, 0, 0).unwrap();
        Notice {
            notice: Fields {
                reference: ConsultationRef::parse("RCM-2027-001").unwrap(),
                kind: kind.into(),
                recipient: "fp1.hn@example.org".into(),
                recipient_name: "Focal Point 1 of HN".into(),
                language: "es".into(),
                subject: "[RCM-2027-001] Consulta a los Países Miembros: Política consular".into(),
                body_html: html.map(str::to_string),
                message_id: "<RCM-2027-001.s5.round_invitation.fp3@rcm-ts.example>".into(),
                payload_json: serde_json::to_string(&payload).unwrap(),
                created_at: created,
            },
        }
    }

    fn invitation_payload() -> NoticePayload {
        NoticePayload {
            template: "round_invitation".into(),
            version: 2,
            focal_point_id: Some(3),
            reply_to: Some("consultas+abc234@rcm-ts.example".into()),
            deadline: Some(Utc.with_ymd_and_hms(2027, 3, 31, 5, 59, 59).unwrap()),
            time_zone: Some("America/Tegucigalpa".into()),
            attachment: Some(("RCM-2027-001-v2.md".into(), "# Texto\n\n1. Uno.\n".into())),
            thread: Some("<RCM-2027-001.hn@rcm-ts.example>".into()),
            calendar_uid: Some("deadline.r1.fp3.RCM-2027-001.hn@rcm-ts.example".into()),
            calendar_sequence: 0,
            files: Vec::new(),
        }
    }

    #[test]
    fn a_control_character_in_a_header_value_is_an_error_not_a_panic() {
        for (field, bad) in [
            ("name", "Ana\nBcc: x@example.org"),
            ("subject", "[RCM-2027-001] A\r\nB"),
            ("language", "es\0"),
        ] {
            let mut n = notice("round_invitation", None, invitation_payload());
            match field {
                "name" => n.notice.recipient_name = bad.into(),
                "subject" => n.notice.subject = bad.into(),
                _ => n.notice.language = bad.into(),
            }
            let err = std::panic::catch_unwind(|| {
                Outgoing::from_notice(&n, "RCM <consultas@rcm-ts.example>")
            })
            .unwrap_or_else(|_| panic!("{field}: building panicked"))
            .unwrap_err();
            assert!(matches!(err, MessageError::Header { .. }), "{field}: {err}");
            let shown = err.to_string();
            assert!(
                !shown.contains('\n') && shown.contains("cannot go into a mail header"),
                "{shown}"
            );
        }
    }

    #[test]
    fn attached_files_go_out_with_their_bytes_name_and_type() {
        let pdf = b"%PDF-1.7\n\x00\x01binary\xff".to_vec();
        let file = FileRef {
            filename: "Propuesta ñ.pdf".into(),
            content_type: "application/pdf".into(),
            sha256: crate::domain::attachment::sha256_hex(&pdf),
            size: pdf.len() as i64,
        };
        let mut p = invitation_payload();
        p.files = vec![file.clone()];
        let n = notice("round_invitation", Some("<p>x</p>"), p);
        let err = build_with_files(&n, "RCM <consultas@rcm-ts.example>", &[]).unwrap_err();
        assert!(err.to_string().contains("Propuesta ñ.pdf"), "{err}");
        let bytes = build_with_files(&n, "RCM <consultas@rcm-ts.example>", &[(file, pdf.clone())])
            .unwrap()
            .formatted();
        use mail_parser::MimeHeaders as _;
        let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        let part = parsed
            .attachments()
            .find(|a| a.attachment_name() == Some("Propuesta ñ.pdf"))
            .expect("the PDF is attached");
        assert_eq!(part.contents(), pdf.as_slice());
        assert_eq!(
            part.content_type().map(|c| (c.ctype(), c.subtype())),
            Some(("application", Some("pdf")))
        );
    }

    /// The `.ics` part of a formatted message, unfolded, as lines.
    fn calendar_lines(bytes: &[u8]) -> Vec<String> {
        use mail_parser::MimeHeaders;
        let m = mail_parser::MessageParser::default()
            .parse(bytes)
            .expect("the message parses");
        let ics = m
            .attachments()
            .find(|a| a.attachment_name().is_some_and(|n| n.ends_with(".ics")))
            .expect("an .ics part");
        String::from_utf8_lossy(ics.contents())
            .replace("\r\n ", "")
            .split("\r\n")
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn an_extension_carries_the_invitation_event_with_a_higher_sequence() {
        let invitation = notice(
            "round_invitation",
            Some("<p>Texto</p>"),
            invitation_payload(),
        );
        let mut p = invitation_payload();
        p.template = "deadline_extended".into();
        p.attachment = None;
        p.deadline = Some(Utc.with_ymd_and_hms(2027, 4, 2, 5, 59, 59).unwrap());
        p.calendar_sequence = 1;
        let mut extended = notice("deadline_extended", Some("<p>Plazo</p>"), p);
        extended.notice.message_id =
            "<RCM-2027-001.s9.deadline_extended.fp3@rcm-ts.example>".into();
        let a = calendar_lines(&Outgoing::from_notice(&invitation, FROM).unwrap().bytes);
        let b = calendar_lines(&Outgoing::from_notice(&extended, FROM).unwrap().bytes);
        let uid = "UID:deadline.r1.fp3.RCM-2027-001.hn@rcm-ts.example".to_string();
        assert!(a.contains(&uid), "{a:?}");
        assert!(b.contains(&uid), "the same event: {b:?}");
        assert!(a.contains(&"SEQUENCE:0".to_string()), "{a:?}");
        assert!(b.contains(&"SEQUENCE:1".to_string()), "{b:?}");
        assert!(b.contains(&"DTSTART:20270402T055959Z".to_string()), "{b:?}");
        // A reminder has a deadline but no calendar entry.
        let reminder = notice("reminder", None, invitation_payload());
        let s = String::from_utf8(Outgoing::from_notice(&reminder, FROM).unwrap().bytes).unwrap();
        assert!(!s.contains("text/calendar"));
    }

    const FROM: &str = "RCM Consultations <consultas@rcm-ts.example>";

    fn head(bytes: &[u8]) -> String {
        let s = String::from_utf8(bytes.to_vec()).unwrap();
        s.split("\r\n\r\n").next().unwrap().replace("\r\n ", " ")
    }

    #[test]
    fn headers_are_all_there_and_deterministic() {
        let n = notice(
            "round_invitation",
            Some("<p>Texto</p>"),
            invitation_payload(),
        );
        let out = Outgoing::from_notice(&n, FROM).unwrap();
        let again = Outgoing::from_notice(&n, FROM).unwrap();
        assert_eq!(out.bytes, again.bytes, "the same notice, the same bytes");
        let h = head(&out.bytes);
        for line in [
            "From: \"RCM Consultations\" <consultas@rcm-ts.example>",
            "Reply-To: \"RCM Consultations\" <consultas+abc234@rcm-ts.example>",
            "To: \"Focal Point 1 of HN\" <fp1.hn@example.org>",
            "Date: Fri, 19 Mar 2027 17:00:00 +0000",
            "Message-ID: <RCM-2027-001.s5.round_invitation.fp3@rcm-ts.example>",
            "In-Reply-To: <RCM-2027-001.hn@rcm-ts.example>",
            "References: <RCM-2027-001.hn@rcm-ts.example>",
            "Auto-Submitted: auto-generated",
            "Content-Language: es",
        ] {
            assert!(h.lines().any(|l| l == line), "{line} in\n{h}");
        }
        let subject = h.lines().find(|l| l.starts_with("Subject: ")).unwrap();
        assert!(subject.starts_with("Subject: [RCM-2027-001] "), "{subject}");
        assert_eq!(out.envelope_from, "consultas@rcm-ts.example");
        assert_eq!(out.to, vec!["fp1.hn@example.org".to_string()]);
        assert_eq!(out.label, "000042-RCM-2027-001-round_invitation-hn");
    }

    #[test]
    fn an_invitation_is_mixed_with_alternative_ics_and_text() {
        let n = notice(
            "round_invitation",
            Some("<p>Texto</p>"),
            invitation_payload(),
        );
        let out = Outgoing::from_notice(&n, FROM).unwrap();
        let s = String::from_utf8(out.bytes).unwrap();
        let order = [
            "Content-Type: multipart/mixed",
            "Content-Type: multipart/alternative",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Type: text/html; charset=utf-8",
            "Content-Disposition: attachment; filename=\"RCM-2027-001-deadline.ics\"",
            "Content-Type: text/calendar; charset=utf-8; method=PUBLISH",
            "Content-Disposition: attachment; filename=\"RCM-2027-001-v2.md\"",
            "Content-Type: text/markdown; charset=utf-8",
        ];
        let mut at = 0;
        for needle in order {
            let found = s[at..]
                .find(needle)
                .unwrap_or_else(|| panic!("{needle} after offset {at} in\n{s}"));
            at += found + needle.len();
        }
    }

    #[test]
    fn a_plain_notice_is_a_single_text_part() {
        let mut p = invitation_payload();
        p.deadline = None;
        p.attachment = None;
        p.reply_to = None;
        let n = notice("reminder", None, p);
        let out = Outgoing::from_notice(&n, FROM).unwrap();
        let h = head(&out.bytes);
        assert!(!h.contains("multipart"), "{h}");
        assert!(h.contains("Content-Type: text/plain; charset=utf-8"), "{h}");
        assert!(
            h.contains("Reply-To: \"RCM Consultations\" <consultas@rcm-ts.example>"),
            "without a token, replies go to From: {h}"
        );
    }

    #[test]
    fn only_invitations_with_a_deadline_carry_a_calendar() {
        let p = invitation_payload();
        assert!(wants_calendar("round_invitation", &p));
        assert!(wants_calendar("troika_invitation", &p));
        assert!(!wants_calendar("reminder", &p));
        let none = NoticePayload::default();
        assert!(!wants_calendar("round_invitation", &none));
    }

    #[test]
    fn the_envelope_sender_names_the_notice_and_the_headers_stay() {
        let n = notice(
            "round_invitation",
            Some("<p>Texto</p>"),
            invitation_payload(),
        );
        let key = TokenKey::new(b"a secret for the envelope test");
        let plain = Outgoing::from_notice(&n, FROM).unwrap();
        let signed = plain.clone().with_bounce_address(&key).unwrap();
        assert_eq!(signed.bytes, plain.bytes, "the message itself is unchanged");
        let token = signed
            .envelope_from
            .strip_prefix("consultas+b.")
            .and_then(|t| t.strip_suffix("@rcm-ts.example"))
            .unwrap_or_else(|| panic!("a bounce address: {}", signed.envelope_from));
        assert_eq!(
            key.verify("RCM", token),
            Ok(Token::Bounce(BounceToken { notice_id: 42 }))
        );
        assert!(signed.envelope_from.split('@').next().unwrap().len() <= 64);
    }

    #[test]
    fn a_bad_address_is_named() {
        let mut n = notice("reminder", None, NoticePayload::default());
        n.notice.recipient = "not an address".into();
        let err = Outgoing::from_notice(&n, FROM).unwrap_err().to_string();
        assert!(err.contains("To address `not an address`"), "{err}");
    }
}
