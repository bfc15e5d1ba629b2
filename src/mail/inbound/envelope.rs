//! The few header facts the inbound pipeline needs before (or beside) a full parse:
//! the Message-ID that deduplicates a message, and every recipient address a reply
//! token may hide in. A plain scan of the header block, liberal and panic-free, so
//! that a message is stored under its Message-ID even if the parser would choke.

/// The headers that may carry the address a message was delivered to.
const RECIPIENT_HEADERS: [&str; 6] = [
    "to",
    "cc",
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "x-envelope-to",
];

/// The most of a header block that is scanned: 256 KiB. A real one is a few
/// kilobytes; what an attacker puts beyond this is kept in the raw message, unread.
pub const MAX_HEADER_BYTES: usize = 256 * 1024;

/// The header block's fields, unfolded: (lowercase name, value). At most the first
/// [`MAX_HEADER_BYTES`] are read.
pub fn header_fields(raw: &[u8]) -> Vec<(String, String)> {
    let raw = &raw[..raw.len().min(MAX_HEADER_BYTES)];
    let end = find_blank_line(raw).unwrap_or(raw.len());
    let text = String::from_utf8_lossy(&raw[..end]);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if !name.is_empty() && !name.contains(' ') {
                fields.push((name.to_ascii_lowercase(), value.trim().to_string()));
            }
        }
    }
    fields
}

fn find_blank_line(raw: &[u8]) -> Option<usize> {
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = raw.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The Message-ID with its angle brackets (`<id@host>`), if the message has one.
pub fn message_id(raw: &[u8]) -> Option<String> {
    header_fields(raw)
        .into_iter()
        .find(|(name, _)| name == "message-id")
        .and_then(|(_, value)| {
            let v = value.trim();
            let inner = match (v.find('<'), v.find('>')) {
                (Some(a), Some(b)) if a < b => &v[a + 1..b],
                _ => v.split_whitespace().next().unwrap_or(""),
            };
            let inner = inner.trim();
            // An id with a control character in it is no id (PostgreSQL refuses a NUL
            // in text, and the message could never be stored): the message is keyed
            // by its hash instead.
            (!inner.is_empty() && inner.len() <= 500 && !inner.chars().any(char::is_control))
                .then(|| format!("<{inner}>"))
        })
}

/// Every `Message-ID:` value in a text of header lines (a returned original's
/// headers in a delivery report, possibly several blocks), angle brackets
/// included (added when missing), in order, without duplicates.
pub fn message_ids_in(headers: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let lines: Vec<&str> = headers.lines().map(|l| l.trim_end_matches('\r')).collect();
    for (i, line) in lines.iter().enumerate() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("message-id") || line.starts_with([' ', '\t']) {
            continue;
        }
        // The value may be folded onto the next line.
        let mut value = value.trim().to_string();
        if value.is_empty() {
            if let Some(next) = lines.get(i + 1).filter(|l| l.starts_with([' ', '\t'])) {
                value = next.trim().to_string();
            }
        }
        let inner = match (value.find('<'), value.find('>')) {
            (Some(a), Some(b)) if a < b => &value[a + 1..b],
            _ => value.split_whitespace().next().unwrap_or(""),
        };
        let inner = inner.trim();
        if !inner.is_empty() && inner.len() <= 500 && inner.contains('@') {
            let id = format!("<{inner}>");
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}
/// The most recipient addresses looked at for a reply token: a real message has a
/// few; the engine verifies a token in each, so a header of thousands is cut here.
pub const MAX_RECIPIENTS: usize = 1000;

/// Every address in the recipient headers (To, Cc, Delivered-To, X-Original-To,
/// Envelope-To), lowercase, in header order, without duplicates; at most
/// [`MAX_RECIPIENTS`].
pub fn recipient_addresses(raw: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // Duplicates are found in a set: a header of many thousand addresses stays linear.
    let mut seen = std::collections::HashSet::new();
    for (name, value) in header_fields(raw) {
        if !RECIPIENT_HEADERS.contains(&name.as_str()) {
            continue;
        }
        for word in value.split(|c: char| c.is_whitespace() || ",;<>\"()[]".contains(c)) {
            let word = word.trim_matches(|c: char| c == '\'' || c == '.' || c == ':');
            if word.contains('@') && !word.starts_with('@') && !word.ends_with('@') {
                let address = word.to_ascii_lowercase();
                if seen.insert(address.clone()) {
                    out.push(address);
                    if out.len() == MAX_RECIPIENTS {
                        return out;
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &[u8] = b"Delivered-To: consultas+abc@rcm-ts.example\r\n\
From: Ana <ana@example.gob>\r\n\
To: \"RCM, Consultas\" <consultas+tok2@rcm-ts.example>,\r\n\tOther <o@x.org>\r\n\
Cc: b@y.org\r\n\
Message-ID:\r\n <CAF=abc@mail.gmail.com>\r\n\
Subject: RE: x\r\n\r\nTo: not-a-header@z.org\r\n";

    #[test]
    fn recipients_from_every_header_and_folded_lines() {
        assert_eq!(
            recipient_addresses(RAW),
            vec![
                "consultas+abc@rcm-ts.example",
                "consultas+tok2@rcm-ts.example",
                "o@x.org",
                "b@y.org"
            ]
        );
    }

    #[test]
    fn message_id_with_brackets() {
        assert_eq!(message_id(RAW).as_deref(), Some("<CAF=abc@mail.gmail.com>"));
        assert_eq!(message_id(b"Subject: x\r\n\r\nbody"), None);
        assert_eq!(
            message_id(b"Message-Id: bare@host\n\n").as_deref(),
            Some("<bare@host>")
        );
        assert_eq!(message_id(b"Message-ID: <a\0b@host>\n\n"), None);
    }

    #[test]
    fn only_a_bounded_header_block_is_read() {
        let mut raw = b"To: first@example.org,\r\n".to_vec();
        for i in 0..MAX_HEADER_BYTES / 16 {
            raw.extend_from_slice(format!(" r{i:06}@x.org,\r\n").as_bytes());
        }
        raw.extend_from_slice(b" last@example.org\r\nMessage-ID: <late@x>\r\n\r\nbody");
        let found = recipient_addresses(&raw);
        assert_eq!(found.first().map(String::as_str), Some("first@example.org"));
        assert!(!found.contains(&"last@example.org".to_string()));
        assert_eq!(found.len(), MAX_RECIPIENTS);
        assert_eq!(message_id(&raw), None);
    }

    #[test]
    fn message_ids_of_returned_originals() {
        let text = "From: a@b\r\nMessage-ID: <RCM-2027-001.s3.round_invitation.fp3@rcm-ts.example>\r\n\r\n\
Subject: x\nMessage-ID: bare@host\nX: y\nmessage-id:\n <folded@host>\n  Message-ID: <not-a-header@x>\n";
        assert_eq!(
            message_ids_in(text),
            vec![
                "<RCM-2027-001.s3.round_invitation.fp3@rcm-ts.example>",
                "<bare@host>",
                "<folded@host>"
            ]
        );
        assert!(message_ids_in("Message-ID: <>\nMessage-ID:").is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        for raw in [&b""[..], b"\xff\xfe", b":\n:", b"\r\n\r\n", b"To:\n\t\n"] {
            let _ = recipient_addresses(raw);
            let _ = message_id(raw);
        }
    }
}
