//! Raw messages as focal points' mail clients and mail servers write them: a reply
//! with the notice quoted below (Outlook or Gmail style), an out-of-office answer,
//! a delivery status notification. The demo's simulated focal points send these
//! through the same `Engine::ingest` as real mail; the tests use them too.

use chrono::{DateTime, Utc};

/// One reply to a notice.
#[derive(Debug, Clone)]
pub struct Reply<'a> {
    pub from_name: &'a str,
    pub from: &'a str,
    /// Where the reply goes: the notice's Reply-To (with its token) or the plain address.
    pub to: &'a str,
    /// The notice's subject; `RE: ` is added.
    pub subject: &'a str,
    /// The notice's Message-ID (angle brackets included), for In-Reply-To/References.
    pub in_reply_to: Option<&'a str>,
    /// What the focal point writes above the quoted notice.
    pub text: &'a str,
    /// The notice's text, quoted below the reply.
    pub quoted: &'a str,
    pub date: DateTime<Utc>,
    /// The reply's own Message-ID (angle brackets included).
    pub message_id: &'a str,
}

fn threading(r: &Reply<'_>) -> String {
    match r.in_reply_to {
        Some(id) => format!("In-Reply-To: {id}\r\nReferences: {id}\r\n"),
        None => String::new(),
    }
}

fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Outlook (Windows): the reply on top, a divider, the original's header block in
/// Spanish, and the notice unquoted below it.
pub fn outlook_reply(r: &Reply<'_>) -> Vec<u8> {
    let body = format!(
        "{}\n\nSaludos cordiales,\n{}\n\n________________________________\nDe: RCM Consultations <consultas@rcm-ts.example>\nEnviado: {}\nPara: {} <{}>\nAsunto: {}\n\n{}\n",
        r.text,
        r.from_name,
        r.date.format("%A, %d de %B de %Y %H:%M"),
        r.from_name,
        r.from,
        r.subject,
        r.quoted
    );
    format!(
        "From: {} <{}>\r\nTo: {}\r\nSubject: RE: {}\r\nDate: {}\r\nMessage-ID: {}\r\n{}\
         MIME-Version: 1.0\r\nX-Mailer: Microsoft Outlook 16.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{}",
        r.from_name,
        r.from,
        r.to,
        r.subject,
        r.date.to_rfc2822(),
        r.message_id,
        threading(r),
        crlf(&body)
    )
    .into_bytes()
}

/// Gmail: the reply on top, an attribution line, and the notice quoted with `>`.
pub fn gmail_reply(r: &Reply<'_>) -> Vec<u8> {
    let quoted: String = r
        .quoted
        .lines()
        .map(|l| {
            if l.is_empty() {
                ">\n".to_string()
            } else {
                format!("> {l}\n")
            }
        })
        .collect();
    let body = format!(
        "{}\n\nOn {} RCM Consultations <consultas@rcm-ts.example> wrote:\n\n{quoted}",
        r.text,
        r.date.format("%a, %b %-d, %Y at %-I:%M %p"),
    );
    format!(
        "From: {} <{}>\r\nTo: {}\r\nSubject: Re: {}\r\nDate: {}\r\nMessage-ID: {}\r\n{}\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{}",
        r.from_name,
        r.from,
        r.to,
        r.subject,
        r.date.to_rfc2822(),
        r.message_id,
        threading(r),
        crlf(&body)
    )
    .into_bytes()
}

/// An out-of-office answer with the RFC 3834 header, in Spanish.
pub fn out_of_office(
    from_name: &str,
    from: &str,
    to: &str,
    subject: &str,
    date: DateTime<Utc>,
    message_id: &str,
) -> Vec<u8> {
    format!(
        "From: {from_name} <{from}>\r\nTo: {to}\r\nSubject: Respuesta automática: {subject}\r\n\
         Date: {}\r\nMessage-ID: {message_id}\r\nAuto-Submitted: auto-replied\r\nX-Autoreply: yes\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Estaré fuera de la oficina hasta el lunes, sin acceso al correo.\r\n\
         Para asuntos urgentes, escriba a la Cancillería.\r\n",
        date.to_rfc2822()
    )
    .into_bytes()
}

/// A new message written from scratch (no In-Reply-To, no quoted notice): what a
/// focal point sends when they do not reply to the notice.
pub fn fresh_email(
    from_name: &str,
    from: &str,
    to: &str,
    subject: &str,
    text: &str,
    date: DateTime<Utc>,
    message_id: &str,
) -> Vec<u8> {
    format!(
        "From: {from_name} <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {}\r\n\
         Message-ID: {message_id}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{}",
        date.to_rfc2822(),
        crlf(text)
    )
    .into_bytes()
}

/// `raw` with a header field added on top, as a receiving server adds
/// `Authentication-Results` or `Delivered-To`.
pub fn with_header(raw: &[u8], name: &str, value: &str) -> Vec<u8> {
    let mut out = format!("{name}: {value}\r\n").into_bytes();
    out.extend_from_slice(raw);
    out
}

/// A Postfix delivery status notification to puebla's plain address: `failed`
/// (5.1.1, permanent) or, with `delayed`, a 4.4.7 warning that delivery is still
/// being tried. See [`delivery_report_to`] for one sent back to a notice's signed
/// envelope address.
pub fn delivery_report(
    failed_address: &str,
    original_subject: &str,
    original_message_id: &str,
    date: DateTime<Utc>,
    message_id: &str,
    delayed: bool,
) -> Vec<u8> {
    delivery_report_to(
        "consultas@rcm-ts.example",
        failed_address,
        original_subject,
        original_message_id,
        date,
        message_id,
        delayed,
    )
}

/// A delivery status notification sent to `to`: the envelope sender of the
/// message that failed (a notice's `consultas+b.TOKEN@domain`), as an MTA sends it,
/// with `Delivered-To` added by the receiving mailbox.
pub fn delivery_report_to(
    to: &str,
    failed_address: &str,
    original_subject: &str,
    original_message_id: &str,
    date: DateTime<Utc>,
    message_id: &str,
    delayed: bool,
) -> Vec<u8> {
    let (action, status, diagnostic, intro) = if delayed {
        (
            "delayed",
            "4.4.7",
            "smtp; 451 4.4.7 Connection timed out",
            "This is a delivery status notification, NOT a failure. Delivery is still being tried.",
        )
    } else {
        (
            "failed",
            "5.1.1",
            "smtp; 550 5.1.1 Recipient address rejected: User unknown in virtual mailbox table",
            "I'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.",
        )
    };
    format!(
        "Return-Path: <>\r\nDelivered-To: {to}\r\nFrom: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n\
         To: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Date: {}\r\nMessage-ID: {message_id}\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"BOUNDARY\"\r\n\r\n\
         --BOUNDARY\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         This is the mail system at host mx.example.org.\r\n\r\n{intro}\r\n\r\n\
         <{failed_address}>: {diagnostic}\r\n\r\n\
         --BOUNDARY\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; {failed_address}\r\n\
         Action: {action}\r\nStatus: {status}\r\nDiagnostic-Code: {diagnostic}\r\n\r\n\
         --BOUNDARY\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n\
         From: RCM Consultations <consultas@rcm-ts.example>\r\nTo: <{failed_address}>\r\n\
         Subject: {original_subject}\r\nMessage-ID: {original_message_id}\r\n\r\n--BOUNDARY--\r\n",
        date.to_rfc2822()
    )
    .into_bytes()
}

/// The shapes of hostile message that once made reading quadratic (issue 12): the
/// benchmark `puebla-bench reader` times them at growing sizes and the tests post them
/// to the daemon. Each is a complete message whose body is about `size` bytes.
pub const HOSTILE_TRAPS: [&str; 12] = [
    "blank_lines",
    "brackets",
    "style_blocks",
    "deep_quotes",
    "nested_html",
    "long_line",
    "attributions",
    "header_blocks",
    "entities",
    "open_tags",
    "sign_offs",
    "recipients",
];

/// One hostile message of `trap` (see [`HOSTILE_TRAPS`]) with a body of about
/// `size` bytes, from `from`, with Message-ID `message_id` (angle brackets included).
pub fn hostile(trap: &str, size: usize, from: &str, message_id: &str) -> Vec<u8> {
    let repeat = |unit: &str| unit.repeat(size / unit.len().max(1) + 1);
    let (content_type, body, extra) = match trap {
        "blank_lines" => ("text/plain", repeat("\r\n"), String::new()),
        "brackets" => ("text/plain", repeat("["), String::new()),
        "style_blocks" => (
            "text/html",
            repeat("<style>p{margin:0}</style><STYLE>"),
            String::new(),
        ),
        "deep_quotes" => (
            "text/plain",
            repeat(&format!("{} quoted text\r\n", ">".repeat(60))),
            String::new(),
        ),
        "nested_html" => (
            "text/html",
            format!("{}Sin objeción{}", repeat("<div>"), repeat("</div>")),
            String::new(),
        ),
        "long_line" => ("text/plain", repeat("x"), String::new()),
        "attributions" => (
            "text/plain",
            repeat("On Mon, 2 Mar 2026 at 10:00, RCM <consultas@rcm-ts.example> wrote:\r\n\r\n"),
            String::new(),
        ),
        "header_blocks" => ("text/plain", repeat("From: x\r\n"), String::new()),
        "entities" => ("text/html", repeat("&amp;&#x41;&"), String::new()),
        "open_tags" => ("text/html", repeat("<a"), String::new()),
        "sign_offs" => ("text/plain", repeat("\r\nRegards,\r\n"), String::new()),
        "recipients" => {
            let to: Vec<String> = (0..size / 24 + 1)
                .map(|i| format!("r{i}@example.org"))
                .collect();
            (
                "text/plain",
                "No objection.\r\n".to_string(),
                format!("Cc: {}\r\n", to.join(",\r\n ")),
            )
        }
        other => panic!("no hostile trap {other}"),
    };
    format!(
        "From: Attacker <{from}>\r\nTo: consultas@rcm-ts.example\r\n{extra}\
         Subject: [RCM-2027-001] {trap}\r\nMessage-ID: {message_id}\r\nMIME-Version: 1.0\r\n\
         Content-Type: {content_type}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::consultation::Position;
    use crate::mail::inbound::{inspect, Kind};

    fn reply<'a>(text: &'a str, quoted: &'a str) -> Reply<'a> {
        Reply {
            from_name: "Ana Pérez",
            from: "ana@example.gob",
            to: "consultas+abc@rcm-ts.example",
            subject: "[RCM-2027-001] Consulta a los Países Miembros",
            in_reply_to: Some("<RCM-2027-001.s5.round_invitation.fp3@rcm-ts.example>"),
            text,
            quoted,
            date: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            message_id: "<r1@example.gob>",
        }
    }

    const NOTICE: &str =
        "Se somete el siguiente texto.\n\nResponda SIN OBJECIÓN, OBJECIÓN o COMENTARIOS.";

    #[test]
    fn the_inbound_reader_reads_them_as_real_mail() {
        for raw in [
            outlook_reply(&reply("Sin objeción.", NOTICE)),
            gmail_reply(&reply("Sin objeción.", NOTICE)),
        ] {
            let i = inspect(&raw);
            assert_eq!(i.kind, Kind::Reply);
            assert_eq!(i.position, Some(Position::NoObjection), "{}", i.text);
            assert!(i.text.starts_with("Sin objeción."), "{}", i.text);
            assert!(i.trimmed.contains("Responda SIN"), "{}", i.trimmed);
        }
        let date = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let ooo = out_of_office(
            "Ana",
            "ana@example.gob",
            "x@y",
            "[RCM-2027-001] x",
            date,
            "<o@x>",
        );
        assert_eq!(inspect(&ooo).kind, Kind::AutoReply);
        let dsn = delivery_report(
            "ana@example.gob",
            "[RCM-2027-001] x",
            "<n@x>",
            date,
            "<d@x>",
            false,
        );
        let i = inspect(&dsn);
        assert_eq!(i.kind, Kind::Bounce);
        assert_eq!(i.bounced_recipient.as_deref(), Some("ana@example.gob"));
        assert!(!i.transient);
        let delayed = delivery_report("ana@example.gob", "x", "<n@x>", date, "<d2@x>", true);
        assert!(inspect(&delayed).transient);
    }
}
