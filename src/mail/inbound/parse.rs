//! Raw bytes → an owned [`ParsedMessage`], liberally.
//!
//! `mail-parser` does the MIME work (charsets, quoted-printable, base64, nested
//! messages); this module picks out what the rest of the inbound path needs and
//! turns HTML-only bodies into text. Nothing here fails: what cannot be read is
//! listed in `problems`.

use std::borrow::Cow;

use mail_parser::{HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use super::html;

/// An attachment as recorded: its bytes are not kept here (the raw message is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: Option<String>,
    /// `type/subtype`, lowercase.
    pub content_type: String,
    pub size: usize,
    /// SHA-256 of the decoded content, lowercase hex.
    pub sha256: String,
}

impl Attachment {
    /// A document that may carry proposed edits: a word-processor file or a PDF.
    pub fn is_document(&self) -> bool {
        let name = self.name.as_deref().unwrap_or("").to_ascii_lowercase();
        let by_name = [".docx", ".doc", ".pdf", ".odt", ".rtf"]
            .iter()
            .any(|ext| name.ends_with(ext));
        let by_type = matches!(
            self.content_type.as_str(),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
                | "application/msword"
                | "application/pdf"
                | "application/vnd.oasis.opendocument.text"
                | "application/rtf"
        );
        by_name || by_type
    }
}

/// The headers the inbound path looks at, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// Lowercase address.
    pub from_address: Option<String>,
    pub from_name: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    /// RFC 3339, when the Date header could be read.
    pub date: Option<String>,
    /// As written, trimmed: `<>` is the null return path.
    pub return_path: Option<String>,
    pub auto_submitted: Option<String>,
    pub x_autoreply: Option<String>,
    pub x_autorespond: Option<String>,
    pub precedence: Option<String>,
    /// `type/subtype` of the top part, lowercase.
    pub content_type: Option<String>,
    /// The `report-type` parameter of a `multipart/report`, lowercase.
    pub report_type: Option<String>,
}

impl Headers {
    /// True when the Return-Path is the null path `<>` (RFC 5321 §4.5.5).
    pub fn null_return_path(&self) -> bool {
        self.return_path.as_deref().is_some_and(|r| {
            r.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
                .is_empty()
        })
    }
}

/// What could be read from one raw message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedMessage {
    pub headers: Headers,
    /// The message's own text: the text/plain body, or the HTML body converted to
    /// text up to the first quoted block.
    pub body: String,
    /// What the HTML conversion set aside as quoted (blockquotes, reply dividers).
    pub html_quoted: String,
    /// The `message/delivery-status` parts of a delivery report, as text.
    pub delivery_status: Option<String>,
    /// Headers (and text) of a returned original message, from `message/rfc822`
    /// or `text/rfc822-headers` parts.
    pub returned_original: Option<String>,
    pub attachments: Vec<Attachment>,
    pub problems: Vec<String>,
    /// Set when the body was longer than [`MAX_TEXT_BYTES`] (or its HTML longer than
    /// [`MAX_HTML_BYTES`]): its full size in bytes. Only the first part was read.
    pub text_cut: Option<usize>,
}

/// The most of a message's decoded text that is read: its first 256 KiB. A reply is
/// a few lines; what lies beyond stays in the stored raw message, unread, so that the
/// time to read a message is bounded whatever its size.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;

/// The most of an HTML body's markup that is turned into text: 1 MiB (markup is
/// several times the text it carries).
pub const MAX_HTML_BYTES: usize = 1024 * 1024;

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Parses one raw message. Never panics; never fails.
///
/// mail-parser is liberal but not panic-free on every input (0.11.9 was seen to
/// panic on a fuzzed message), so a panic inside it is caught and the message is
/// kept as plain text with the problem named, like one with no readable header.
pub fn parse(raw: &[u8]) -> ParsedMessage {
    match std::panic::catch_unwind(|| parse_unguarded(raw)) {
        Ok(parsed) => parsed,
        Err(_) => {
            let mut out = ParsedMessage {
                problems: vec![
                    "the MIME parser failed on this message; the whole message is taken as text"
                        .into(),
                ],
                ..ParsedMessage::default()
            };
            raw_as_text(raw, &mut out);
            out
        }
    }
}

/// The raw bytes as the body (a message whose headers cannot be read), bounded
/// like any text body.
fn raw_as_text(raw: &[u8], out: &mut ParsedMessage) {
    let text = String::from_utf8_lossy(&raw[..raw.len().min(MAX_TEXT_BYTES + 4)]);
    out.body = prefix(&text, MAX_TEXT_BYTES).to_string();
    if raw.len() > MAX_TEXT_BYTES {
        out.text_cut = Some(raw.len());
        out.problems.push(cut_problem(raw.len()));
    }
}

/// The problem recorded when only a prefix of a text of `size` bytes was read.
fn cut_problem(size: usize) -> String {
    format!(
        "the text is {size} bytes: only its first {} KB were read (the whole message is kept)",
        MAX_TEXT_BYTES / 1024
    )
}

fn parse_unguarded(raw: &[u8]) -> ParsedMessage {
    let mut out = ParsedMessage::default();
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        out.problems.push("the message is empty".into());
        return out;
    }
    let Some(message) = MessageParser::default().parse(raw) else {
        out.problems
            .push("no header could be read; the whole message is taken as text".into());
        raw_as_text(raw, &mut out);
        return out;
    };
    out.headers = headers(&message);
    if out.headers.from_address.is_none() {
        out.problems.push("no From address".into());
    }
    read_parts(&message, &mut out);
    if out.body.trim().is_empty() && out.delivery_status.is_none() {
        out.problems.push("no text body".into());
    }
    out
}

fn headers(message: &Message<'_>) -> Headers {
    // The first From address that has an address: an unquoted comma in a display
    // name ("Smith, John <j@x>") splits it into a nameless part and the real one.
    let from = message.from().and_then(|a| {
        a.iter()
            .find(|a| a.address().is_some_and(|s| s.contains('@')))
    });
    let (content_type, report_type) = match message.root_part().content_type() {
        Some(ct) => (
            Some(
                match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_string(),
                }
                .to_ascii_lowercase(),
            ),
            ct.attribute("report-type").map(|r| r.to_ascii_lowercase()),
        ),
        None => (None, None),
    };
    Headers {
        message_id: message.message_id().map(str::to_string),
        in_reply_to: id_list(message.in_reply_to()),
        references: id_list(message.references()),
        from_address: from
            .and_then(|a| a.address())
            .map(|a| a.trim().to_lowercase()),
        from_name: from
            .and_then(|a| a.name())
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
        to: message
            .to()
            .map(|a| {
                a.iter()
                    .filter_map(|a| a.address())
                    .map(|a| a.trim().to_lowercase())
                    .collect()
            })
            .unwrap_or_default(),
        subject: message.subject().unwrap_or("").trim().to_string(),
        date: message.date().map(|d| d.to_rfc3339()),
        return_path: raw_header(message, "Return-Path"),
        auto_submitted: raw_header(message, "Auto-Submitted"),
        x_autoreply: raw_header(message, "X-Autoreply"),
        x_autorespond: raw_header(message, "X-Autorespond"),
        precedence: raw_header(message, "Precedence"),
        content_type,
        report_type,
    }
}

fn raw_header(message: &Message<'_>, name: &str) -> Option<String> {
    message
        .headers_raw()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
}

fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

fn mime_type(part: &MessagePart<'_>) -> Option<String> {
    part.content_type().map(|ct| {
        match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        }
        .to_ascii_lowercase()
    })
}

fn read_parts(message: &Message<'_>, out: &mut ParsedMessage) {
    // The body: the first text/plain part that the parser chose as a text body,
    // else the first HTML body converted to text.
    let plain = message
        .text_body
        .iter()
        .filter_map(|&id| message.parts.get(id as usize))
        .find_map(|p| match &p.body {
            PartType::Text(t) => Some(t.clone()),
            _ => None,
        });
    // Only a bounded prefix of the body is read (see MAX_TEXT_BYTES).
    match plain {
        Some(text) => {
            if text.len() > MAX_TEXT_BYTES {
                out.text_cut = Some(text.len());
            }
            out.body = prefix(&text, MAX_TEXT_BYTES).to_string();
        }
        None => {
            let html = message
                .html_body
                .iter()
                .filter_map(|&id| message.parts.get(id as usize))
                .find_map(|p| match &p.body {
                    PartType::Html(h) => Some(h.clone()),
                    _ => None,
                });
            if let Some(h) = html {
                let markup = prefix(&h, MAX_HTML_BYTES);
                let (own, quoted) = html::split_quoted(markup);
                let text = html::to_text(own);
                if h.len() > MAX_HTML_BYTES || text.len() > MAX_TEXT_BYTES {
                    out.text_cut = Some(h.len());
                }
                out.body = prefix(&text, MAX_TEXT_BYTES).to_string();
                out.html_quoted = prefix(&html::to_text(quoted), MAX_TEXT_BYTES).to_string();
            }
        }
    }
    if let Some(size) = out.text_cut {
        out.problems.push(cut_problem(size));
    }

    let mut status = String::new();
    let mut original = String::new();
    for (i, part) in message.parts.iter().enumerate() {
        if part.is_encoding_problem {
            out.problems.push(format!(
                "part {i} could not be fully decoded (charset or transfer encoding)"
            ));
        }
        let ctype = mime_type(part).unwrap_or_default();
        match ctype.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => {
                status.push_str(&String::from_utf8_lossy(part.contents()));
                status.push('\n');
            }
            "text/rfc822-headers" | "message/global-headers" => {
                original.push_str(&String::from_utf8_lossy(part.contents()));
                original.push('\n');
            }
            _ => {}
        }
        if let PartType::Message(nested) = &part.body {
            original.push_str(&format!(
                "Subject: {}\nMessage-ID: {}\n",
                nested.subject().unwrap_or(""),
                nested.message_id().unwrap_or("")
            ));
            if let Some(to) = nested.to() {
                for a in to.iter().filter_map(|a| a.address()) {
                    original.push_str(&format!("To: {a}\n"));
                }
            }
        }
    }
    if !status.trim().is_empty() {
        out.delivery_status = Some(prefix(&status, MAX_TEXT_BYTES).to_string());
    }
    if !original.trim().is_empty() {
        out.returned_original = Some(prefix(&original, MAX_TEXT_BYTES).to_string());
    }

    for &id in &message.attachments {
        let Some(part) = message.parts.get(id as usize) else {
            continue;
        };
        let content: Cow<'_, [u8]> = match &part.body {
            PartType::Message(m) => Cow::Borrowed(m.raw_message()),
            _ => Cow::Borrowed(part.contents()),
        };
        let content_type = mime_type(part).unwrap_or_else(|| match &part.body {
            PartType::Message(_) => "message/rfc822".into(),
            PartType::Text(_) => "text/plain".into(),
            PartType::Html(_) => "text/html".into(),
            _ => "application/octet-stream".into(),
        });
        out.attachments.push(Attachment {
            name: part.attachment_name().map(str::to_string),
            content_type,
            size: content.len(),
            sha256: hex(&Sha256::digest(&content)),
        });
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_latin1_quoted_printable() {
        let raw = b"From: =?iso-8859-1?Q?Jos=E9_P=E9rez?= <jose@example.gob>\r\n\
Subject: =?iso-8859-1?Q?RE:_[RCM-2026-007]_Consulta_escrita?=\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\n\
Sin objeci=F3n.\r\n";
        let m = parse(raw);
        assert_eq!(m.headers.from_address.as_deref(), Some("jose@example.gob"));
        assert_eq!(m.headers.from_name.as_deref(), Some("José Pérez"));
        assert!(m.headers.subject.contains("[RCM-2026-007]"));
        assert_eq!(m.body.trim(), "Sin objeción.");
        assert!(m.problems.is_empty(), "{:?}", m.problems);
    }

    #[test]
    fn only_a_bounded_prefix_of_a_long_text_is_read() {
        let words = "Sin objeción. ".repeat(MAX_TEXT_BYTES / 8);
        let raw = format!(
            "From: a@example.gob\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{words}"
        );
        let m = parse(raw.as_bytes());
        assert!(m.body.len() <= MAX_TEXT_BYTES && m.body.len() > MAX_TEXT_BYTES - 16);
        assert!(words.starts_with(&m.body));
        assert_eq!(m.text_cut, Some(words.len()));
        assert!(
            m.problems
                .iter()
                .any(|p| p.contains("only its first 256 KB")),
            "{:?}",
            m.problems
        );

        let short = parse(b"From: a@example.gob\r\nSubject: x\r\n\r\nOk\r\n");
        assert_eq!(short.text_cut, None);
    }

    #[test]
    fn only_a_bounded_prefix_of_long_html_is_read() {
        let html = "<div>No objection.</div>".repeat(MAX_HTML_BYTES / 12);
        let raw = format!(
            "From: a@example.gob\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}"
        );
        let m = parse(raw.as_bytes());
        assert!(m.body.len() <= MAX_TEXT_BYTES);
        assert!(m.body.starts_with("No objection.\nNo objection."));
        assert_eq!(m.text_cut, Some(html.len()));
    }

    #[test]
    fn a_prefix_ends_on_a_character_boundary() {
        assert_eq!(prefix("ñañ", 1), "");
        assert_eq!(prefix("ñañ", 3), "ña");
        assert_eq!(prefix("ñañ", 99), "ñañ");
    }

    #[test]
    fn garbage_still_yields_a_message_with_problems() {
        let m = parse(b"\xff\xfe\x00 not a message");
        assert!(!m.problems.is_empty());
        let m = parse(b"");
        assert_eq!(m.problems, vec!["the message is empty".to_string()]);
    }

    #[test]
    fn unquoted_comma_in_the_from_name() {
        let m = parse(b"From: Smith, John <jsmith@example.gob>\r\nSubject: x\r\n\r\nOk\r\n");
        assert_eq!(
            m.headers.from_address.as_deref(),
            Some("jsmith@example.gob")
        );
    }

    #[test]
    fn null_return_path() {
        let h = Headers {
            return_path: Some("<>".into()),
            ..Headers::default()
        };
        assert!(h.null_return_path());
        let h = Headers {
            return_path: Some("<a@example.org>".into()),
            ..Headers::default()
        };
        assert!(!h.null_return_path());
    }

    #[test]
    fn attachment_hash_and_size() {
        let raw = b"From: a@example.gob\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\n\
Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document; name=\"edits.docx\"\r\n\
Content-Disposition: attachment; filename=\"edits.docx\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n";
        let m = parse(raw);
        assert_eq!(m.attachments.len(), 1);
        let a = &m.attachments[0];
        assert_eq!(a.name.as_deref(), Some("edits.docx"));
        assert_eq!(a.size, 5);
        assert_eq!(
            a.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(a.is_document());
        assert_eq!(m.body.trim(), "See attached.");
    }
}
