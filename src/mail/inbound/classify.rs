//! Human reply, auto-reply or bounce.
//!
//! Bounces are decided first: a delivery report often has a null Return-Path and
//! `Auto-Submitted` too, and must not be taken for an out-of-office message.

use super::fold;
use super::parse::ParsedMessage;

crate::named_enum! {
    /// What kind of message it is (recorded on the stored message as these names).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Kind {
        /// Written by a person: its position counts.
        Reply => "reply",
        /// Out-of-office messages, ticketing acknowledgements, other automatic answers.
        AutoReply => "auto_reply",
        /// A delivery failure (or delay) report.
        Bounce => "bounce",
    }
}

/// The kind of a message and, for a bounce, whom it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub kind: Kind,
    pub bounced_recipient: Option<String>,
    /// A delay (Action: delayed, status 4.x.x): delivery is still being tried.
    pub transient: bool,
    pub reason: String,
}

/// Classifies a parsed message; `reply_text` is its trimmed text, so that body
/// phrases are looked for in the sender's words and not in a quoted notice.
pub fn classify(msg: &ParsedMessage, reply_text: &str) -> Classification {
    if let Some(c) = bounce(msg) {
        return c;
    }
    if let Some(reason) = auto_reply(msg, reply_text) {
        return Classification {
            kind: Kind::AutoReply,
            bounced_recipient: None,
            transient: false,
            reason,
        };
    }
    Classification {
        kind: Kind::Reply,
        bounced_recipient: None,
        transient: false,
        reason: "written by a person".into(),
    }
}

fn bounce(msg: &ParsedMessage) -> Option<Classification> {
    let h = &msg.headers;
    if let Some(status) = &msg.delivery_status {
        if let Some(c) = from_delivery_status(status) {
            return Some(c);
        }
    }
    let subject = fold(&h.subject);
    const SUBJECTS: [&str; 30] = [
        "undeliverable",
        "undelivered mail",
        "delivery status notification",
        "mail delivery failed",
        "mail delivery failure",
        "delivery failure",
        "failure notice",
        "returned mail",
        "delivery has failed",
        "message not delivered",
        "delivery delayed",
        "delivery has been delayed",
        "delayed mail",
        "message delayed",
        "warning: message",
        "no se puede entregar",
        "no se pudo entregar",
        "mensaje no entregado",
        "no entregado",
        "entrega retrasada",
        "retraso en la entrega",
        "error en la entrega",
        "non remis",
        "non distribuable",
        "echec de la remise",
        "echec de remise",
        "impossible de remettre",
        "remise differee",
        "remise retardee",
        "notification d'etat de remise",
    ];
    let local = h
        .from_address
        .as_deref()
        .and_then(|a| a.split('@').next())
        .unwrap_or("");
    let daemon = [
        "mailer-daemon",
        "postmaster",
        "mail-daemon",
        "microsoftexchange",
    ]
    .iter()
    .any(|d| local.starts_with(d))
        || h.from_name
            .as_deref()
            .is_some_and(|n| fold(n).contains("mail delivery"));
    let subject_says = SUBJECTS
        .iter()
        .find(|s| subject.starts_with(*s) || (daemon && subject.contains(*s)));
    let report = h.report_type.as_deref() == Some("delivery-status");
    if subject_says.is_none() && !report && !(daemon && h.null_return_path()) {
        return None;
    }
    let text = format!(
        "{}\n{}",
        msg.body,
        msg.delivery_status.as_deref().unwrap_or("")
    );
    let codes = status_codes(&text);
    let permanent_code = codes.iter().any(|c| c.starts_with('5'));
    let delay_words = [
        "delay",
        "still being retried",
        "will retry",
        "will continue",
        "retrying",
        "retras",
        "retard",
        "differe",
        "seguira intentando",
        "continuera",
    ]
    .iter()
    .any(|w| subject.contains(w) || fold(&msg.body).contains(w));
    let transient = !permanent_code && (delay_words || codes.iter().any(|c| c.starts_with('4')));
    let recipient = addresses(&text)
        .into_iter()
        .find(|a| Some(a) != h.from_address.as_ref() && !h.to.contains(a) && !is_daemon(a));
    Some(Classification {
        kind: Kind::Bounce,
        bounced_recipient: recipient,
        transient,
        reason: format!(
            "a non-standard delivery {} notice ({})",
            if transient { "delay" } else { "failure" },
            match subject_says {
                Some(s) => format!("subject \"{s}\""),
                None => "sent by the mail system".into(),
            }
        ),
    })
}

/// Reads an RFC 3464 `message/delivery-status` body: the first recipient whose
/// Action is failed (else delayed) decides.
fn from_delivery_status(status: &str) -> Option<Classification> {
    let status = unfold(status);
    // Per-recipient blocks are separated by blank lines; the first block is per message.
    let mut best: Option<(u8, Option<String>, String, String)> = None;
    for block in status.split("\n\n") {
        let mut recipient = None;
        let mut action = String::new();
        let mut code = String::new();
        for line in block.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "final-recipient" | "original-recipient" => {
                    let addr = value.split_once(';').map_or(value, |(_, a)| a).trim();
                    let addr = addr.trim_matches(['<', '>']).to_lowercase();
                    if recipient.is_none() || key.trim().eq_ignore_ascii_case("final-recipient") {
                        recipient = Some(addr).filter(|a| !a.is_empty());
                    }
                }
                "action" => action = value.to_ascii_lowercase(),
                "status" => code = value.split_whitespace().next().unwrap_or("").to_string(),
                _ => {}
            }
        }
        if action.is_empty() && code.is_empty() {
            continue;
        }
        let rank = match (action.as_str(), code.chars().next()) {
            ("failed", _) | (_, Some('5')) => 3,
            ("delayed", _) | (_, Some('4')) => 2,
            _ => 1,
        };
        if best.as_ref().is_none_or(|b| rank > b.0) {
            best = Some((rank, recipient, action, code));
        }
    }
    let (rank, recipient, action, code) = best?;
    let (kind, transient) = match rank {
        3 => (Kind::Bounce, false),
        2 => (Kind::Bounce, true),
        // "delivered", "relayed", "expanded": a receipt, not a failure.
        _ => (Kind::AutoReply, false),
    };
    Some(Classification {
        kind,
        bounced_recipient: if kind == Kind::Bounce {
            recipient
        } else {
            None
        },
        transient,
        reason: format!(
            "an RFC 3464 delivery report (Action: {}, Status: {})",
            if action.is_empty() { "-" } else { &action },
            if code.is_empty() { "-" } else { &code }
        ),
    })
}

/// Joins folded header lines (RFC 5322 §2.2.3).
fn unfold(s: &str) -> String {
    let s = s.replace("\r\n", "\n");
    let mut out = String::with_capacity(s.len());
    for line in s.split('\n') {
        if (line.starts_with(' ') || line.starts_with('\t')) && !line.trim().is_empty() {
            out.push(' ');
            out.push_str(line.trim());
        } else {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(line.trim_end());
        }
    }
    out
}

/// Enhanced status codes (RFC 3463) such as `5.1.1` or `4.4.7` in free text.
fn status_codes(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|t| t.trim_matches('.'))
        .filter(|t| {
            let parts: Vec<&str> = t.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
        .collect()
}

/// Email addresses in free text, in order, lowercase.
fn addresses(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || "<>()[];,\"'".contains(c))
        .map(|t| t.trim_matches(|c: char| c == '.' || c == ':'))
        .filter(|t| {
            let Some((local, domain)) = t.split_once('@') else {
                return false;
            };
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@.-_+=".contains(c))
        })
        .map(|t| t.to_lowercase())
        .collect()
}

fn is_daemon(addr: &str) -> bool {
    let local = addr.split('@').next().unwrap_or("");
    [
        "mailer-daemon",
        "postmaster",
        "mail-daemon",
        "microsoftexchange",
        "no-reply",
        "noreply",
    ]
    .iter()
    .any(|d| local.starts_with(d))
}

fn auto_reply(msg: &ParsedMessage, reply_text: &str) -> Option<String> {
    let h = &msg.headers;
    if let Some(v) = &h.auto_submitted {
        let v = v
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if v != "no" {
            return Some(format!("Auto-Submitted: {v}"));
        }
    }
    for (name, value) in [
        ("X-Autoreply", &h.x_autoreply),
        ("X-Autorespond", &h.x_autorespond),
    ] {
        if let Some(v) = value {
            let v = v.trim().to_ascii_lowercase();
            if v != "no" && v != "false" {
                return Some(format!("{name} header"));
            }
        }
    }
    if let Some(p) = &h.precedence {
        let p = p.trim().to_ascii_lowercase();
        if matches!(p.as_str(), "bulk" | "junk" | "list" | "auto_reply") {
            return Some(format!("Precedence: {p}"));
        }
    }
    if h.null_return_path() {
        return Some("null Return-Path (<>)".into());
    }
    let subject = fold(&h.subject);
    const SUBJECTS: [&str; 22] = [
        "automatic reply",
        "auto reply",
        "autoreply",
        "auto-reply",
        "auto response",
        "autoresponse",
        "out of office",
        "out of the office",
        "respuesta automatica",
        "fuera de la oficina",
        "fuera de oficina",
        "ausente de la oficina",
        "reponse automatique",
        "absence du bureau",
        "absent du bureau",
        "message d'absence",
        "ticket",
        "solicitud registrada",
        "acuse de recibo automatico",
        "accuse de reception automatique",
        "caso no.",
        "caso n°",
    ];
    if let Some(s) = SUBJECTS.iter().find(|s| subject.contains(*s)) {
        return Some(format!("subject \"{s}\""));
    }
    let text: String = fold(reply_text).chars().take(1500).collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    const BODIES: [&str; 30] = [
        "su solicitud ha sido registrada",
        "ha sido registrada con el numero",
        "ha sido registrado con el numero",
        "numero de ticket",
        "numero de caso",
        "your request has been registered",
        "your request has been received and assigned",
        "ticket number",
        "votre demande a ete enregistree",
        "this is an automated",
        "this is an automatic",
        "this message was generated automatically",
        "mensaje automatico",
        "mensaje generado automaticamente",
        "respuesta automatica",
        "message automatique",
        "reponse automatique",
        "i am out of the office",
        "i am currently out of the office",
        "i will be out of the office",
        "out of the office until",
        "estare fuera de la oficina",
        "me encuentro fuera de la oficina",
        "estoy fuera de la oficina",
        "me encuentro de vacaciones",
        "je suis absent",
        "je serai absent",
        "je suis actuellement absent",
        "with limited access to e",
        "con acceso limitado al correo",
    ];
    BODIES
        .iter()
        .find(|b| text.contains(*b))
        .map(|b| format!("the text says \"{b}\""))
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn kind(raw: &str) -> Classification {
        let m = parse(raw.as_bytes());
        classify(&m, &m.body)
    }

    #[test]
    fn dsn_failed_and_delayed() {
        let raw = "From: MAILER-DAEMON@mx.example.org\r\nReturn-Path: <>\r\n\
Auto-Submitted: auto-replied\r\nSubject: Delivery Status Notification\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n--b\r\n\
Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n\
Final-Recipient: rfc822; ana@example.gob\r\nAction: ACTION\r\nStatus: STATUS\r\n--b--\r\n";
        let c = kind(&raw.replace("ACTION", "failed").replace("STATUS", "5.1.1"));
        assert_eq!(c.kind, Kind::Bounce);
        assert_eq!(c.bounced_recipient.as_deref(), Some("ana@example.gob"));
        assert!(!c.transient);
        let c = kind(&raw.replace("ACTION", "delayed").replace("STATUS", "4.4.7"));
        assert_eq!(c.kind, Kind::Bounce);
        assert!(c.transient);
    }

    #[test]
    fn null_return_path_alone_is_an_auto_reply_but_with_a_daemon_a_bounce() {
        let c = kind("From: ana@example.gob\r\nReturn-Path: <>\r\nSubject: Re: x\r\n\r\nHola\r\n");
        assert_eq!(c.kind, Kind::AutoReply);
        let c = kind(
            "From: MAILER-DAEMON@mx.example.org\r\nReturn-Path: <>\r\nSubject: failure\r\n\r\n\
             <ana@example.gob>: 550 5.1.1 user unknown\r\n",
        );
        assert_eq!(c.kind, Kind::Bounce);
        assert_eq!(c.bounced_recipient.as_deref(), Some("ana@example.gob"));
    }

    #[test]
    fn out_of_office_subjects() {
        for s in [
            "Automatic reply: [RCM-2026-007]",
            "Respuesta automática: [RCM-2026-007]",
            "Réponse automatique : [RCM-2026-007]",
            "Absence du bureau",
            "Fuera de la oficina",
        ] {
            let c = kind(&format!("From: a@example.gob\r\nSubject: {s}\r\n\r\nx\r\n"));
            assert_eq!(c.kind, Kind::AutoReply, "{s}");
        }
        let c = kind("From: a@example.gob\r\nAuto-Submitted: no\r\nSubject: Re: x\r\n\r\nOk\r\n");
        assert_eq!(c.kind, Kind::Reply);
    }

    #[test]
    fn status_codes_in_text() {
        assert_eq!(status_codes("said: 550 5.1.1 <a@b.c>"), vec!["5.1.1"]);
        assert_eq!(status_codes("version 1.2.3 and 4.4.7."), vec!["4.4.7"]);
    }
}
