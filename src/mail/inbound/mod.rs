//! Inbound mail understanding: raw bytes → what a focal point said.
//!
//! `parse` (MIME, charsets, HTML) → `trim` (the author's own words) → `classify`
//! (reply, auto-reply, bounce) → `position` (no objection, objection, comments).
//! Everything here is pure: no IO, no clock, no database. Matching a message to a
//! consultation and storing it belong elsewhere.

mod html;

pub mod authentication;
pub mod classify;
pub mod envelope;
pub mod keywords;
mod lexicon;
pub mod parse;
pub mod position;
pub mod trim;
mod wording;

pub use classify::{Classification, Kind};
pub use parse::{parse, Attachment, Headers, ParsedMessage, MAX_HTML_BYTES, MAX_TEXT_BYTES};
pub use position::Reading;
pub use trim::Trimmed;

use crate::domain::consultation::Position;
use crate::domain::reference::ConsultationRef;

/// What the engine makes of one raw message (`puebla mail inspect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub kind: Kind,
    /// `None` for auto-replies and bounces: they are never counted as answers.
    pub position: Option<Position>,
    pub ambiguous: bool,
    /// The reply's consent or comments come with a condition or a reservation
    /// (`Reading::conditional`); false for auto-replies and bounces.
    pub conditional: bool,
    /// Why the message was read this way, in a sentence.
    pub reason: String,
    /// The sender's own words.
    pub text: String,
    /// What was removed from the body: quoted history, signatures.
    pub trimmed: String,
    pub bounced_recipient: Option<String>,
    pub transient: bool,
    /// From the subject, else the text, the quoted notice, a returned original, or
    /// the threading headers.
    pub reference: Option<ConsultationRef>,
    /// The Message-IDs (angle brackets included) in the headers of a returned
    /// original (a delivery report's): which notices a bounce is about.
    pub returned_message_ids: Vec<String>,
    pub headers: Headers,
    pub attachments: Vec<Attachment>,
    pub problems: Vec<String>,
}

/// Reads one raw message. Never panics.
pub fn inspect(raw: &[u8]) -> Inspection {
    let parsed = parse::parse(raw);
    let Trimmed { text, trimmed } = trim::trim(&parsed.body);
    let trimmed = match (trimmed.is_empty(), parsed.html_quoted.is_empty()) {
        (_, true) => trimmed,
        (true, false) => parsed.html_quoted.clone(),
        (false, false) => format!("{trimmed}\n\n{}", parsed.html_quoted),
    };
    let class = classify::classify(&parsed, &text);
    let (position, ambiguous, conditional, reason) = match class.kind {
        Kind::Reply => {
            let r = position::read(&text, &parsed.attachments);
            (Some(r.position), r.ambiguous, r.conditional, r.reason)
        }
        Kind::AutoReply => (
            None,
            false,
            false,
            format!("an automatic reply ({}); not counted", class.reason),
        ),
        Kind::Bounce => (None, false, false, format!("{}; not counted", class.reason)),
    };
    let reason = match parsed.text_cut {
        Some(size) => format!(
            "{reason} (only the first {} KB of its {size}-byte text were read; the rest is \
             kept, not read)",
            parse::MAX_TEXT_BYTES / 1024
        ),
        None => reason,
    };
    let h = &parsed.headers;
    let reference = find_reference(&h.subject)
        .or_else(|| find_reference(&text))
        .or_else(|| find_reference(&trimmed))
        .or_else(|| parsed.returned_original.as_deref().and_then(find_reference))
        .or_else(|| find_reference(&h.in_reply_to.join(" ")))
        .or_else(|| find_reference(&h.references.join(" ")))
        .or_else(|| match class.kind {
            Kind::Bounce => find_reference(&parsed.body),
            _ => None,
        });
    let returned_message_ids = parsed
        .returned_original
        .as_deref()
        .map(envelope::message_ids_in)
        .unwrap_or_default();
    Inspection {
        kind: class.kind,
        returned_message_ids,
        position,
        ambiguous,
        conditional,
        reason,
        text,
        trimmed,
        bounced_recipient: class.bounced_recipient,
        transient: class.transient,
        reference,
        attachments: parsed.attachments,
        problems: parsed.problems,
        headers: parsed.headers,
    }
}

/// How far after a `[` its `]` is looked for: a reference is at most 22 characters
/// (a body code of 10 letters, a year, a sequence of 6 digits), with room for spaces.
const MAX_BRACKETED: usize = 40;

/// The first consultation reference in a text: a bracketed `[RCM-2026-007]` first,
/// else a bare one (as in a Message-ID such as `<RCM-2026-007.s3.notice.x@host>`).
pub fn find_reference(text: &str) -> Option<ConsultationRef> {
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        // A reference is short: the closing bracket is looked for only that far, so
        // that a text of a million `[` is read once, not once per bracket.
        let window = &after.as_bytes()[..after.len().min(MAX_BRACKETED)];
        if let Some(close) = window.iter().position(|&b| b == b']') {
            if let Ok(r) = ConsultationRef::parse(&after[..close]) {
                return Some(r);
            }
        }
        rest = after;
    }
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|t| t.len() >= 10 && t.contains('-'))
        .find_map(|t| ConsultationRef::parse(t.trim_matches('-')).ok())
}

/// Lowercase without diacritics, typographic apostrophes made plain, so that
/// "OBJECIÓN", "objecion" and "Objeción" compare equal.
pub(crate) fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            'ç' => 'c',
            'ý' | 'ÿ' => 'y',
            '’' | '‘' | '`' | '´' => '\'',
            '\u{a0}' | '\u{202f}' => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_from_subject_text_or_message_id() {
        assert_eq!(
            find_reference("RE: [RCM-2026-007] Consulta").map(|r| r.to_string()),
            Some("RCM-2026-007".into())
        );
        assert_eq!(
            find_reference("<RCM-2026-012.s3.notice.hn-1@rcm-ts.example>").map(|r| r.to_string()),
            Some("RCM-2026-012".into())
        );
        assert_eq!(find_reference("RE: [EXTERNAL] Consulta 2026"), None);
    }

    #[test]
    fn the_quoted_notice_does_not_decide() {
        let raw = "From: Ana <ana@example.gob>\r\nSubject: RE: [RCM-2026-007] Consulta\r\n\r\n\
Sin objeción.\r\n\r\n\
De: RCM <consultas@rcm-ts.example>\r\nEnviado: lunes\r\nPara: Ana\r\nAsunto: [RCM-2026-007]\r\n\r\n\
Responda OBJECIÓN si tiene objeciones.\r\n";
        let i = inspect(raw.as_bytes());
        assert_eq!(i.kind, Kind::Reply);
        assert_eq!(i.position, Some(Position::NoObjection));
        assert_eq!(i.text, "Sin objeción.");
        assert!(i.trimmed.contains("Responda OBJECIÓN"));
        assert_eq!(
            i.reference.map(|r| r.to_string()),
            Some("RCM-2026-007".into())
        );
    }

    #[test]
    fn a_reading_of_a_prefix_says_so_in_its_reason() {
        let raw = format!(
            "From: Ana <ana@example.gob>\r\nSubject: RE: [RCM-2026-007] Consulta\r\n\r\n\
             Sin objeción.\r\n{}",
            "\r\n".repeat(MAX_TEXT_BYTES)
        );
        let i = inspect(raw.as_bytes());
        assert_eq!(i.position, Some(Position::NoObjection));
        assert!(
            i.reason.contains("only the first 256 KB")
                && i.reason.contains("the rest is kept, not read"),
            "{}",
            i.reason
        );
    }

    #[test]
    fn brackets_without_a_reference_are_read_once() {
        let many = format!("{}[RCM-2026-007]", "[".repeat(100_000));
        assert_eq!(
            find_reference(&many).map(|r| r.to_string()),
            Some("RCM-2026-007".into())
        );
        assert_eq!(
            find_reference("[ RCM-2026-007 ]").map(|r| r.to_string()),
            Some("RCM-2026-007".into())
        );
        assert_eq!(find_reference(&"[".repeat(100_000)), None);
    }

    #[test]
    fn fold_strips_accents() {
        assert_eq!(fold("OBJECIÓN Réponse ñ’"), "objecion reponse n'");
    }
}
