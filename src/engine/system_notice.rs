//! Notices the engine sends on its own rather than as a procedure step: the daily
//! digest, the explanation to the sender of a message that was not counted (or was
//! too large to keep whole), the alert that a focal point's address bounces, and the
//! request to confirm a message that came from a focal point's address without a
//! valid token.
//!
//! Their templates live in `templates/<lang>/` beside the procedure's and load with
//! the same [`crate::mail::templates::Templates`]; a procedure file cannot name
//! them, so they have their own list, [`ENGINE_TEMPLATE_NAMES`], which `puebla
//! check` renders against [`samples`] as it renders the procedure's templates.
//! What they show is built here as data (the views below), in the reader's language.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::digest::{self, DIGEST};
use crate::domain::Language;
use crate::engine::ports::SystemNoticeKind;
use crate::mail::locale::{answer_words, format_deadline, stage_label, AnswerWords};

/// The explanation sent to the sender of a quarantined human message.
pub const QUARANTINE_NOTICE: &str = SystemNoticeKind::QuarantineNotice.as_str();
/// The alert to the TS and the PPT that a focal point's address bounces.
pub const BOUNCE_ALERT: &str = SystemNoticeKind::BounceAlert.as_str();
/// The explanation sent to the sender of a message over the size limit.
pub const OVERSIZED: &str = SystemNoticeKind::Oversized.as_str();
/// The alert to the TS that a notice failed for good (it cannot be built, or the
/// relay refused it permanently): see `outbox::FailureAlerts`.
pub const NOTICE_FAILED: &str = SystemNoticeKind::NoticeFailed.as_str();

/// "We received from your address … read as …: reply CONFIRMO": to the directory
/// address of a focal point, about a message held as awaiting confirmation.
pub const CONFIRMATION_REQUEST: &str = SystemNoticeKind::ConfirmationRequest.as_str();

/// The templates the engine renders outside the procedure's steps.
pub const ENGINE_TEMPLATE_NAMES: [&str; 6] = [
    DIGEST,
    QUARANTINE_NOTICE,
    BOUNCE_ALERT,
    OVERSIZED,
    CONFIRMATION_REQUEST,
    NOTICE_FAILED,
];

/// What the request to confirm a held message shows.
#[derive(Debug, Clone, Serialize)]
pub struct ConfirmationRequestView {
    pub lang: &'static str,
    /// The consultation's reference, which the subject starts with.
    pub tag: String,
    pub reference: String,
    pub body: String,
    pub title: Option<String>,
    pub recipient_name: String,
    /// The focal point's country, in the reader's language.
    pub country: String,
    /// The directory's address the held message came from (and this request goes to).
    pub address: String,
    /// The held message's subject (user text) and when it came, in the reader's zone.
    pub subject: Option<String>,
    pub received: String,
    /// What it was read as answering: "round 1 (Input from Member Countries)", the
    /// Troika review.
    pub stage: String,
    pub troika: bool,
    /// The keyword it was read as (in the reader's language), and whether the
    /// reading is uncertain.
    pub read_as: String,
    pub ambiguous: bool,
    /// The beginning of its text, on one line.
    pub quote: String,
    /// The word to reply with to confirm, and the words that deny it.
    pub confirm: &'static str,
    pub deny: &'static str,
    /// The words of a fresh answer.
    pub words: AnswerWords,
    /// The round's deadline in the reader's zone, for a round.
    pub deadline: Option<String>,
    /// The address carrying the confirmation token.
    pub reply_to: String,
}

/// The confirm keyword in `l` (all three are accepted, see `mail::inbound::keywords`).
pub fn confirm_word(l: Language) -> &'static str {
    match l {
        Language::Es => "CONFIRMO",
        Language::En => "CONFIRM",
        Language::Fr => "CONFIRME",
    }
}

/// A denial in `l`.
pub fn deny_words(l: Language) -> &'static str {
    match l {
        Language::Es => "NO CONFIRMO",
        Language::En => "I DO NOT CONFIRM",
        Language::Fr => "JE NE CONFIRME PAS",
    }
}

/// "round 2 (Comments on the revised text)" in `l`.
pub fn round_label(round: u32, stage: Option<&str>, l: Language) -> String {
    let word = match l {
        Language::Es => "ronda",
        Language::En => "round",
        Language::Fr => "tour",
    };
    match stage {
        Some(s) => format!("{word} {round} ({s})"),
        None => format!("{word} {round}"),
    }
}

/// The beginning of a text on one line, at most about 280 characters.
pub fn quote(text: &str) -> String {
    const MAX: usize = 280;
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX {
        return flat;
    }
    let cut: String = flat.chars().take(MAX).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(a, _)| a);
    format!("{cut} …")
}

/// What the explanation of a quarantined (or oversized) message shows.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineView {
    pub lang: &'static str,
    /// The bracketed tag the subject starts with: the consultation's reference if the
    /// message named one, else the body's code.
    pub tag: String,
    pub reference: Option<String>,
    /// The body's code, e.g. `RCM`.
    pub body: String,
    /// The subject of the message being explained (user text).
    pub subject: Option<String>,
    /// When it was received, in the reader's language.
    pub received: String,
    /// Why it was not counted, as recorded for the TS (in English).
    pub reason: String,
    /// Oversized messages only: its size and the limit, e.g. `12.4 MB`.
    pub size: Option<String>,
    pub limit: Option<String>,
}

/// What the alert about a bouncing focal point address shows.
#[derive(Debug, Clone, Serialize)]
pub struct BounceAlertView {
    pub lang: &'static str,
    /// The consultation's reference if the bounced notice named one, else the body's code.
    pub tag: String,
    pub reference: Option<String>,
    pub body: String,
    pub recipient_name: String,
    /// The country that may now not be reached, in the reader's language, and its code.
    pub country: String,
    pub country_code: String,
    /// The address that bounced and whose it is.
    pub address: String,
    pub focal_point: String,
    /// The delivery report, as read.
    pub report: String,
    /// The country's other active addresses; empty when none is left.
    pub reachable: Vec<String>,
}

/// What the alert about a notice that failed for good shows. The failed notice's
/// values are shown with their control characters escaped (one of them may be why
/// it failed) and cut to a readable length.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeFailedView {
    pub lang: &'static str,
    /// The consultation's reference if the notice was about one, else the body's code.
    pub tag: String,
    pub reference: Option<String>,
    pub body: String,
    pub recipient_name: String,
    /// The failed notice: its outbox id, kind, addressee, country and subject.
    pub notice_id: i64,
    pub kind: String,
    pub address: String,
    pub name: String,
    /// The country's name in the reader's language, when the notice was to a country.
    pub country: Option<String>,
    pub subject: String,
    /// When it failed, in the reader's language and the TS's time zone.
    pub failed: String,
    pub error: String,
}

impl QuarantineView {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        l: Language,
        body: &str,
        reference: Option<&str>,
        subject: Option<&str>,
        received: DateTime<Utc>,
        time_zone: Tz,
        reason: &str,
        oversized: Option<(usize, usize)>,
    ) -> Self {
        QuarantineView {
            lang: l.as_str(),
            tag: reference.unwrap_or(body).to_string(),
            reference: reference.map(str::to_string),
            body: body.to_string(),
            subject: subject.map(str::to_string).filter(|s| !s.trim().is_empty()),
            received: format_deadline(received, time_zone, l),
            reason: reason.to_string(),
            size: oversized.map(|(size, _)| size_label(size, l)),
            limit: oversized.map(|(_, limit)| size_label(limit, l)),
        }
    }
}

/// A size as the reader writes it: megabytes (MiB) with one decimal from 1 MB on,
/// whole kilobytes below, e.g. `12.4 MB`, `12,4 MB`, `4 Ko`.
pub fn size_label(bytes: usize, l: Language) -> String {
    const KB: usize = 1024;
    const MB: usize = 1024 * KB;
    let (number, unit) = if bytes >= MB {
        // One decimal, computed in integers: tenths of a megabyte, rounded.
        let tenths = (bytes * 10 + MB / 2) / MB;
        let sep = if l == Language::En { '.' } else { ',' };
        (format!("{}{sep}{}", tenths / 10, tenths % 10), "M")
    } else if bytes >= KB {
        (((bytes + KB / 2) / KB).to_string(), "K")
    } else {
        (bytes.to_string(), "")
    };
    let unit = match (l, unit) {
        (Language::Fr, "M") => "Mo",
        (Language::Fr, "K") => "Ko",
        (Language::Fr, _) => "octets",
        (Language::Es, "") => "bytes",
        (Language::En, "") => "bytes",
        (_, "M") => "MB",
        (_, _) => "KB",
    };
    format!("{number} {unit}")
}

/// Sample data for the engine's own templates in `lang`: (template, label, data).
/// Every template has a `full` sample (every optional section, user text with
/// characters HTML must escape); the others cover the empty branches.
pub fn samples(l: Language) -> Vec<(&'static str, &'static str, serde_json::Value)> {
    let received = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 2, 16, 30, 0)
        .single()
        .expect("a valid sample time");
    let tz = chrono_tz::America::Costa_Rica;
    let reason = "the sender <ana@ministerio.example> is not an active focal point of HN";
    let mut out: Vec<(&'static str, &'static str, serde_json::Value)> = digest::samples(l)
        .into_iter()
        .map(|(label, v)| (DIGEST, label, v))
        .collect();
    let full = QuarantineView::new(
        l,
        "RCM",
        Some("RCM-2026-007"),
        Some("Re: [RCM-2026-007] Lineamientos <consulares> & datos"),
        received,
        tz,
        reason,
        None,
    );
    let sparse = QuarantineView::new(l, "RCM", None, None, received, tz, reason, None);
    out.push((QUARANTINE_NOTICE, "full", value(&full)));
    out.push((QUARANTINE_NOTICE, "sparse", value(&sparse)));
    let big = Some((13_002_342, 10 * 1024 * 1024));
    let size_reason =
        "the message is 13002342 bytes, over the limit of 10485760: stored in part and not counted";
    out.push((
        OVERSIZED,
        "full",
        value(&QuarantineView::new(
            l,
            "RCM",
            Some("RCM-2026-007"),
            Some("Re: [RCM-2026-007] Lineamientos <consulares> & datos"),
            received,
            tz,
            size_reason,
            big,
        )),
    ));
    out.push((
        OVERSIZED,
        "sparse",
        value(&QuarantineView::new(
            l,
            "RCM",
            None,
            None,
            received,
            tz,
            size_reason,
            big,
        )),
    ));
    let pick = |es: &str, en: &str, fr: &str| {
        match l {
            Language::Es => es,
            Language::En => en,
            Language::Fr => fr,
        }
        .to_string()
    };
    let alert = BounceAlertView {
        lang: l.as_str(),
        tag: "RCM-2026-007".into(),
        reference: Some("RCM-2026-007".into()),
        body: "RCM".into(),
        recipient_name: pick(
            "Secretaría Técnica",
            "Technical Secretariat",
            "Secrétariat technique",
        ),
        country: pick("Belice", "Belize", "Belize"),
        country_code: "BZ".into(),
        address: "fp1.bz@example.org".into(),
        focal_point: "Jordan O'Neil <Consular & Migration>".into(),
        report: "delivery failed permanently (5.1.1): user unknown".into(),
        reachable: vec!["fp2.bz@example.org".into()],
    };
    let mut alone = alert.clone();
    alone.tag = "RCM".into();
    alone.reference = None;
    alone.reachable.clear();
    out.push((BOUNCE_ALERT, "full", value(&alert)));
    out.push((BOUNCE_ALERT, "sparse", value(&alone)));
    let ask = ConfirmationRequestView {
        lang: l.as_str(),
        tag: "RCM-2026-007".into(),
        reference: "RCM-2026-007".into(),
        body: "RCM".into(),
        title: Some("Lineamientos <consulares> & datos".into()),
        recipient_name: "Ana María Reyes".into(),
        country: "Honduras".into(),
        address: "fp1.hn@example.org".into(),
        subject: Some("Re: [RCM-2026-007] Lineamientos <consulares> & datos".into()),
        received: format_deadline(received, chrono_tz::America::Tegucigalpa, l),
        stage: round_label(1, Some(&stage_label("member_input", l)), l),
        troika: false,
        read_as: answer_words(l).objection.into(),
        ambiguous: true,
        quote: "Honduras no está en condiciones de acompañar el numeral 2 <tal como está>.".into(),
        confirm: confirm_word(l),
        deny: deny_words(l),
        words: answer_words(l),
        deadline: Some(format_deadline(
            received + chrono::Duration::days(5),
            chrono_tz::America::Tegucigalpa,
            l,
        )),
        reply_to: "consultas+aeaqaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@rcm-ts.example".into(),
    };
    let mut troika = ask.clone();
    troika.title = None;
    troika.subject = None;
    troika.stage = stage_label("troika_review", l);
    troika.troika = true;
    troika.read_as = answer_words(l).approve.into();
    troika.ambiguous = false;
    troika.quote = String::new();
    troika.deadline = None;
    out.push((CONFIRMATION_REQUEST, "full", value(&ask)));
    out.push((CONFIRMATION_REQUEST, "sparse", value(&troika)));
    let failed = NoticeFailedView {
        lang: l.as_str(),
        tag: "RCM-2026-007".into(),
        reference: Some("RCM-2026-007".into()),
        body: "RCM".into(),
        recipient_name: pick(
            "Secretaría Técnica",
            "Technical Secretariat",
            "Secrétariat technique",
        ),
        notice_id: 4242,
        kind: "round_invitation".into(),
        address: "fp1.bz@example.org".into(),
        name: "Jordan O'Neil <Consular & Migration>\\nBcc: x@example.org".into(),
        country: Some(pick("Belice", "Belize", "Belize")),
        subject: "[RCM-2026-007] Lineamientos <consulares> & datos".into(),
        failed: format_deadline(received, tz, l),
        error: "cannot build the message: the recipient's name `Jordan O'Neil <Consular & \
                Migration>\\nBcc: x@example.org` contains a line break (U+000A) at character 37: \
                it cannot go into a mail header"
            .into(),
    };
    let mut general = failed.clone();
    general.tag = "RCM".into();
    general.reference = None;
    general.country = None;
    general.kind = "digest".into();
    out.push((NOTICE_FAILED, "full", value(&failed)));
    out.push((NOTICE_FAILED, "sparse", value(&general)));
    out
}

/// A view as JSON; the views above always serialize.
fn value<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("a notice view serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_each_language_writes_them() {
        assert_eq!(size_label(13_002_342, Language::En), "12.4 MB");
        assert_eq!(size_label(13_002_342, Language::Es), "12,4 MB");
        assert_eq!(size_label(10 * 1024 * 1024, Language::Fr), "10,0 Mo");
        assert_eq!(size_label(4096, Language::Es), "4 KB");
        assert_eq!(size_label(900, Language::Fr), "900 octets");
    }

    #[test]
    fn every_engine_template_has_a_full_sample_in_every_language() {
        for l in Language::ALL {
            let s = samples(l);
            for name in ENGINE_TEMPLATE_NAMES {
                assert!(
                    s.iter().any(|(n, label, _)| *n == name && *label == "full"),
                    "{name} ({l})"
                );
            }
        }
    }
}
