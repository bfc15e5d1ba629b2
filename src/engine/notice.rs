//! What a notice says, as data: [`NoticeContext`] is built here from the consultation,
//! the notice kind, the round and the recipient, and rendered by the handlebars
//! templates in `templates/` (see [`crate::mail::templates`]). Everything a template
//! shows in the recipient's language (the deadline in their time zone, stage labels,
//! positions, country names) is prepared here, so templates only lay it out.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::domain::body::Troika;
use crate::domain::consultation::{
    Answer, AnswerSource, Conflict, Consultation, Extension, NoticeKind, Outcome, Position,
    ResultsReport, Review, ReviewReason, RoundRecord, Stage, Tally, TextVersion, TroikaAnswer,
    TroikaReview, Withdrawal,
};
use crate::domain::procedure::Consensus;
use crate::domain::{ConsultationRef, CountryCode, Language};
use crate::mail::templates::mailto;

/// Facts about the recipient a notice needs.
#[derive(Debug, Clone)]
pub struct Audience<'a> {
    pub language: Language,
    pub time_zone: Tz,
    /// None for the Technical Secretariat.
    pub country: Option<CountryCode>,
    /// The recipient's country name in `language`, or the secretariat.
    pub country_name: &'a str,
    pub recipient_name: &'a str,
    /// Where answers go (`consultas+TOKEN@domain`); None when no answer is expected.
    pub reply_to: Option<&'a str>,
    /// The recipient's address (None for samples that need none).
    pub email: Option<&'a str>,
    /// The focal points of the recipient's country, as (address in lower case, name),
    /// to name who answered; empty when the notice names nobody.
    pub focal_points: &'a [(String, String)],
    /// The answer page for this notice's token (`PUEBLA_PUBLIC_URL/answer/TOKEN`),
    /// when the notice asks for an answer and a public URL is configured.
    pub answer_page: Option<&'a str>,
}

/// Everything a notice template may show. Every field is always present (an absent
/// value is `null`, an empty list `[]`), so that strict mode catches misspelt names.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeContext {
    /// The notice kind the context was built for; decides which templates it samples.
    #[serde(skip)]
    pub kind: NoticeKind,
    pub lang: &'static str,
    pub reference: String,
    pub title: String,
    pub recipient_name: String,
    /// The recipient's country in the recipient's language (or the secretariat).
    pub country_name: String,
    /// The country holding the Presidency Pro Tempore, in the recipient's language.
    pub presidency: String,
    /// The round the notice is about (1-based), if any.
    pub round: Option<u32>,
    /// The stage, as the recipient reads it ("Aportes de los Países Miembros").
    pub stage: String,
    /// The text version the notice is about, its note and its full text.
    pub version: u32,
    pub version_note: Option<String>,
    pub text: String,
    /// From round 2 on: the line diff against the text of the previous round.
    pub diff: Option<String>,
    /// From round 2 on: the text is the same as in the previous round.
    pub unchanged: bool,
    /// The round's deadline in the recipient's language and time zone, and as RFC 3339.
    pub deadline: Option<String>,
    pub deadline_iso: Option<String>,
    pub time_zone: String,
    /// The Troika members' requests for changes in the latest review.
    pub troika_comments: Vec<CountryText>,
    /// The latest extension of the round.
    pub extension: Option<ExtensionInfo>,
    pub withdrawal_reason: Option<String>,
    pub outcome: Option<OutcomeInfo>,
    /// The position of every participant in the round.
    pub answers: Vec<AnswerLine>,
    /// The answers of the round a person must review (doubtful and unreviewed).
    pub to_review: Vec<AnswerLine>,
    /// The PPT's results report.
    pub report: Option<String>,
    /// The recipient's country's answer being confirmed (or recorded late).
    pub answer: Option<AnswerInfo>,
    /// The words an answer starts with, in the recipient's language.
    pub words: AnswerWords,
    pub reply_to: Option<String>,
    /// The rendered subject; filled in by the renderer before the body parts.
    pub subject: String,
    /// Mailto links that prefill each answer; filled in with the subject.
    pub reply: Option<ReplyLinks>,
    /// The link to the answer page (the notice's token in a web form); `null` when
    /// no public URL is configured or the notice asks for no answer.
    pub answer_page: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CountryText {
    pub country: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExtensionInfo {
    pub reason: String,
    pub working_days: u32,
    pub previous_deadline: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutcomeInfo {
    pub adopted: bool,
    /// Country names, in the recipient's language.
    pub objections: Vec<String>,
    pub no_answer: Vec<String>,
    /// How the decision came about, from the counts kept with it; `null` for a
    /// decision recorded before they were kept (the notice then says less).
    pub tally: Option<TallyInfo>,
}

/// The counts behind an outcome's wording, as recorded when it was decided.
#[derive(Debug, Clone, Serialize)]
pub struct TallyInfo {
    /// Adopted, every member having answered without objection.
    pub by_consensus: bool,
    /// Adopted because no objection came by the deadline, some members silent.
    pub by_silence: bool,
    /// Not adopted without any objection: the procedure needs every member's answer.
    pub missing_answers: bool,
    pub participants: usize,
    /// Answered with no objection or with comments.
    pub without_objection: usize,
    pub with_comments: usize,
    pub objected: usize,
    pub did_not_answer: usize,
    /// Countries whose answer a person confirmed or corrected before the decision.
    pub reviewed: Vec<String>,
    /// Countries whose doubtful answer was counted as read, unreviewed, because an
    /// objection beyond doubt decided anyway.
    pub provisional: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnswerLine {
    pub country: String,
    /// The country's code (for the commands a notice to staff shows).
    pub code: String,
    /// Localized, or "no answer".
    pub position: String,
    pub answered: bool,
    /// The beginning of the answer's text, when there is one.
    pub quote: Option<String>,
    /// Why the answer is doubtful, localized ("unclear reading"); reviewed or not.
    pub flags: Vec<String>,
    /// Doubtful and not reviewed yet.
    pub needs_review: bool,
    /// The reader's own words on how it read the reply, when it read one.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnswerInfo {
    /// Localized ("sin objeción").
    pub position: String,
    /// The beginning of the text, on one line.
    pub quote: String,
    pub received: String,
    /// The reader was not sure of the position: it counts provisionally until a
    /// person reviews it.
    pub provisional: bool,
    /// Read as consent with a condition or a reservation (recorded as comments).
    pub conditional: bool,
    /// The reader's own words on how it read the reply (English).
    pub reason: Option<String>,
    /// A person has confirmed or corrected the reading.
    pub reviewed: bool,
    /// Who answered, when a focal point did: "Name <address>" or the address.
    pub by: Option<String>,
    /// Entered by PPT or TS staff (a letter, a call, a released message), by `channel`.
    pub by_staff: bool,
    pub channel: Option<String>,
    /// The recipient is the focal point who answered.
    pub yours: bool,
    /// The answer this one replaced in the round, if any.
    pub replaces: Option<ReplacedInfo>,
    /// The answer contradicts an earlier one by someone else of the same country.
    pub conflict: bool,
}

/// The earlier answer a new one replaced.
#[derive(Debug, Clone, Serialize)]
pub struct ReplacedInfo {
    pub position: String,
    pub received: String,
    /// As [`AnswerInfo::by`]; `null` with `by_staff`.
    pub by: Option<String>,
    pub by_staff: bool,
    /// The same focal point answered both.
    pub same_answerer: bool,
}

/// The first-line keywords the inbound reader recognises.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerWords {
    pub no_objection: &'static str,
    pub objection: &'static str,
    pub comments: &'static str,
    /// Troika review.
    pub approve: &'static str,
    pub changes: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplyLinks {
    pub address: String,
    pub no_objection: String,
    pub objection: String,
    pub comments: String,
    pub approve: String,
    pub changes: String,
}

impl NoticeContext {
    /// Records the rendered subject and builds the mailto links that answer it.
    pub fn with_subject(mut self, subject: &str) -> Self {
        self.subject = subject.to_string();
        self.reply = self.reply_to.as_deref().map(|address| {
            let re = format!("Re: {subject}");
            let w = &self.words;
            ReplyLinks {
                address: address.to_string(),
                no_objection: mailto(address, &re, w.no_objection),
                objection: mailto(address, &re, w.objection),
                comments: mailto(address, &re, w.comments),
                approve: mailto(address, &re, w.approve),
                changes: mailto(address, &re, w.changes),
            }
        });
        self
    }

    /// Whether this context is sample data for template `name`.
    pub fn for_template(&self, name: &str) -> bool {
        template_kind(name) == Some(self.kind)
    }
}

/// The notice kind a template name renders.
pub fn template_kind(name: &str) -> Option<NoticeKind> {
    use NoticeKind as K;
    Some(match name {
        "troika_request" => K::TroikaRequest,
        "changes_requested" => K::ChangesRequested,
        "round_invitation" | "round2_invitation" => K::RoundInvitation,
        "revision_due" => K::RevisionDue,
        "decision_due" => K::DecisionDue,
        "reminder" => K::Reminder,
        "deadline_extended" => K::DeadlineExtended,
        "withdrawn" => K::Withdrawn,
        "outcome" => K::Outcome,
        "results_report" => K::ResultsReport,
        "reply_confirmation" => K::ReplyConfirmation,
        "late_reply" => K::LateReply,
        "troika_confirmation" => K::TroikaConfirmation,
        "late_troika_feedback" => K::LateTroikaFeedback,
        _ => return None,
    })
}

const WEEKDAYS: [[&str; 7]; 3] = [
    [
        "lunes",
        "martes",
        "miércoles",
        "jueves",
        "viernes",
        "sábado",
        "domingo",
    ],
    [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ],
    [
        "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
    ],
];
const MONTHS: [[&str; 12]; 3] = [
    [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ],
    [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
];

fn lang_index(l: Language) -> usize {
    match l {
        Language::Es => 0,
        Language::En => 1,
        Language::Fr => 2,
    }
}

/// The city part of an IANA zone, e.g. `Tegucigalpa` for `America/Tegucigalpa`.
fn zone_city(tz: Tz) -> String {
    tz.name()
        .rsplit('/')
        .next()
        .unwrap_or(tz.name())
        .replace('_', " ")
}

/// A deadline as a person reads it, e.g. "lunes 7 de diciembre de 2026, 23:59 (hora de Tegucigalpa)".
pub fn format_deadline(at: DateTime<Utc>, tz: Tz, lang: Language) -> String {
    let local = at.with_timezone(&tz);
    let i = lang_index(lang);
    let weekday = WEEKDAYS[i][local.weekday().num_days_from_monday() as usize];
    let month = MONTHS[i][local.month0() as usize];
    let (d, y, h, m) = (local.day(), local.year(), local.hour(), local.minute());
    let city = zone_city(tz);
    match lang {
        Language::Es => format!("{weekday} {d} de {month} de {y}, {h:02}:{m:02} (hora de {city})"),
        Language::En => format!("{weekday}, {month} {d}, {y}, {h:02}:{m:02} ({city} time)"),
        Language::Fr => format!("{weekday} {d} {month} {y}, {h:02} h {m:02} (heure de {city})"),
    }
}

/// A day as a person reads it, e.g. "lunes 7 de diciembre de 2026".
pub fn format_date(at: DateTime<Utc>, tz: Tz, lang: Language) -> String {
    let local = at.with_timezone(&tz);
    let i = lang_index(lang);
    let weekday = WEEKDAYS[i][local.weekday().num_days_from_monday() as usize];
    let month = MONTHS[i][local.month0() as usize];
    let (d, y) = (local.day(), local.year());
    match lang {
        Language::Es => format!("{weekday} {d} de {month} de {y}"),
        Language::En => format!("{weekday}, {month} {d}, {y}"),
        Language::Fr => format!("{weekday} {d} {month} {y}"),
    }
}

fn pick<'a>(lang: Language, es: &'a str, en: &'a str, fr: &'a str) -> &'a str {
    match lang {
        Language::Es => es,
        Language::En => en,
        Language::Fr => fr,
    }
}

/// The first-line keywords of an answer in `lang`.
pub fn answer_words(lang: Language) -> AnswerWords {
    match lang {
        Language::Es => AnswerWords {
            no_objection: "SIN OBJECIÓN",
            objection: "OBJECIÓN",
            comments: "COMENTARIOS",
            approve: "APROBAR",
            changes: "CAMBIOS",
        },
        Language::En => AnswerWords {
            no_objection: "NO OBJECTION",
            objection: "OBJECTION",
            comments: "COMMENTS",
            approve: "APPROVE",
            changes: "CHANGES",
        },
        Language::Fr => AnswerWords {
            no_objection: "PAS D'OBJECTION",
            objection: "OBJECTION",
            comments: "COMMENTAIRES",
            approve: "APPROUVER",
            changes: "MODIFICATIONS",
        },
    }
}

/// A position as the recipient reads it.
pub fn position_label(p: Position, l: Language) -> &'static str {
    match p {
        Position::NoObjection => pick(l, "sin objeción", "no objection", "pas d'objection"),
        Position::Objection => pick(l, "objeción", "objection", "objection"),
        Position::Comments => pick(l, "comentarios", "comments", "commentaires"),
    }
}

/// Troika feedback as the recipient reads it.
pub fn troika_label(approve: bool, l: Language) -> &'static str {
    if approve {
        pick(l, "aprobación", "approval", "approbation")
    } else {
        pick(
            l,
            "solicitud de cambios",
            "request for changes",
            "demande de modifications",
        )
    }
}

/// The Troika feedback a Troika notice to `country` confirms: its answer in the
/// latest review, or (late) its latest feedback recorded after a review closed.
fn troika_answer(
    kind: NoticeKind,
    c: &Consultation,
    country: Option<CountryCode>,
    l: Language,
    tz: Tz,
) -> Option<AnswerInfo> {
    let country = country?;
    let (approve, comments, at) = match kind {
        NoticeKind::TroikaConfirmation => {
            let a = c.troika_reviews.last()?.answers.get(&country)?;
            (a.approve, a.comments.clone(), a.at)
        }
        NoticeKind::LateTroikaFeedback => {
            let r = c
                .troika_reviews
                .iter()
                .flat_map(|r| r.late.iter())
                .filter(|r| r.country == country)
                .max_by_key(|r| r.received_at)?;
            (r.approve, r.comments.clone(), r.received_at)
        }
        _ => return None,
    };
    Some(AnswerInfo {
        position: troika_label(approve, l).to_string(),
        quote: comments.as_deref().map(quote).unwrap_or_default(),
        received: format_deadline(at, tz, l),
        // Troika feedback is a keyword (or a staff entry), never a reading in doubt.
        provisional: false,
        conditional: false,
        reason: None,
        reviewed: false,
        by: None,
        by_staff: false,
        channel: None,
        yours: true,
        replaces: None,
        conflict: false,
    })
}

/// A stage name from the procedure or the engine, as the recipient reads it.
pub fn stage_label(stage: &str, l: Language) -> String {
    let s = match stage {
        "draft" => pick(l, "Borrador", "Draft", "Projet"),
        "troika_review" => pick(
            l,
            "Revisión preliminar de la Troika",
            "Preliminary review by the Troika",
            "Examen préliminaire par la Troïka",
        ),
        "member_input" => pick(
            l,
            "Aportes de los Países Miembros",
            "Input from Member Countries",
            "Contributions des pays membres",
        ),
        "member_comments" => pick(
            l,
            "Comentarios sobre el texto revisado",
            "Comments on the revised text",
            "Observations sur le texte révisé",
        ),
        "silence_period" => pick(
            l,
            "Procedimiento de silencio",
            "Silence procedure",
            "Procédure d'approbation tacite",
        ),
        "revision" => pick(
            l,
            "Revisión del texto por la PPT",
            "Revision of the text by the PPT",
            "Révision du texte par la PPT",
        ),
        "awaiting_decision" => pick(
            l,
            "Decisión pendiente de revisión",
            "Decision awaiting review",
            "Décision en attente d'examen",
        ),
        "adopted" => pick(l, "Adoptado", "Adopted", "Adopté"),
        "not_adopted" => pick(l, "No adoptado", "Not adopted", "Non adopté"),
        "concluded" => pick(l, "Concluido", "Concluded", "Conclu"),
        "withdrawn" => pick(l, "Retirado", "Withdrawn", "Retiré"),
        other => return other.replace('_', " "),
    };
    s.to_string()
}

/// Why an answer is doubtful, as the recipient reads it.
pub fn review_label(r: ReviewReason, l: Language) -> &'static str {
    match r {
        ReviewReason::Ambiguous => {
            pick(l, "lectura dudosa", "unclear reading", "lecture incertaine")
        }
        ReviewReason::Conditional => pick(
            l,
            "condicionada o con reserva",
            "conditional or with a reservation",
            "conditionnelle ou avec réserve",
        ),
        ReviewReason::Conflict => pick(
            l,
            "otro punto focal del país respondió distinto",
            "another focal point of the country answered differently",
            "un autre point focal du pays a répondu autrement",
        ),
    }
}

/// Who gave an answer, as a notice names them: "Name <address>" when the address is
/// a focal point's, the address otherwise; `None` for staff.
fn answerer_name(a: &Answer, focal_points: &[(String, String)]) -> Option<String> {
    let from = a.answerer()?;
    Some(
        focal_points
            .iter()
            .find(|(email, _)| *email == from)
            .map_or_else(|| from.clone(), |(_, name)| format!("{name} <{from}>")),
    )
}

/// The beginning of an answer on one line, at most about 280 characters, without
/// the first-line keyword (the position is shown beside it).
fn quote(text: &str) -> String {
    const MAX: usize = 280;
    let text = crate::mail::inbound::position::without_keyword(text);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX {
        return flat;
    }
    let cut: String = flat.chars().take(MAX).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(a, _)| a);
    format!("{cut} …")
}

/// A unified diff without its file headers, and with hunk headers (`@@ -2,3 +2,4 @@`)
/// shown as `…`: what a reader needs is the `-`/`+` lines and their context.
fn readable_diff(diff: &str) -> String {
    let lines: Vec<&str> = diff
        .lines()
        .filter(|l| !(l.starts_with("--- ") || l.starts_with("+++ ")))
        .map(|l| if l.starts_with("@@") { "…" } else { l })
        .collect();
    let lines = match lines.first() {
        Some(&"…") => &lines[1..],
        _ => &lines[..],
    };
    lines.join("\n")
}

/// Builds what notice `kind` about consultation `c` (and round `round`) says to one
/// recipient. `country_name` gives a country's name in the recipient's language.
pub fn context(
    kind: NoticeKind,
    c: &Consultation,
    round: Option<u32>,
    audience: &Audience<'_>,
    country_name: &dyn Fn(CountryCode) -> String,
) -> NoticeContext {
    let l = audience.language;
    let tz = audience.time_zone;
    let record = round.and_then(|n| c.rounds.iter().find(|r| r.number == n));
    let version = record
        .and_then(|r| c.version(r.version))
        .unwrap_or_else(|| c.current_version());
    // From round 2 on, the diff is against the text the previous round saw.
    let previous = record.and_then(|r| c.rounds.iter().rev().find(|p| p.number < r.number));
    let (diff, unchanged) = match (record, previous) {
        (Some(r), Some(p)) if r.version == p.version => (None, true),
        (Some(_), Some(p)) => {
            let old = c.version(p.version).map_or("", |v| v.text.as_str());
            (
                Some(readable_diff(&crate::domain::consultation::text_diff(
                    old,
                    &version.text,
                ))),
                false,
            )
        }
        _ => (None, false),
    };
    let stage = record.map_or_else(|| c.stage_name(), |r| r.stage.clone());
    let troika_comments = c
        .troika_reviews
        .last()
        .map(|r| {
            r.answers
                .iter()
                .filter(|(_, a)| !a.approve)
                .map(|(country, a)| CountryText {
                    country: country_name(*country),
                    text: a.comments.clone().unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let answers: Vec<AnswerLine> = record
        .map(|r| {
            c.participants
                .iter()
                .map(|country| {
                    let a = r.answers.get(country);
                    AnswerLine {
                        country: country_name(*country),
                        code: country.to_string(),
                        position: a.map_or_else(
                            || pick(l, "sin respuesta", "no answer", "pas de réponse").to_string(),
                            |a| position_label(a.position, l).to_string(),
                        ),
                        answered: a.is_some(),
                        quote: a.map(|a| quote(&a.text)).filter(|q| !q.is_empty()),
                        flags: a.map_or_else(Vec::new, |a| {
                            a.review_reasons()
                                .into_iter()
                                .map(|r| review_label(r, l).to_string())
                                .collect()
                        }),
                        needs_review: a.is_some_and(Answer::needs_review),
                        reason: a.and_then(|a| a.reason.clone()),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let to_review = answers.iter().filter(|a| a.needs_review).cloned().collect();
    let (answer, replaced) = match (kind, record, audience.country) {
        (NoticeKind::ReplyConfirmation, Some(r), Some(country)) => (
            r.answers.get(&country),
            // The confirmation goes out in the step that recorded the answer: the
            // country's latest superseded answer is the one it replaced, if any.
            r.answers
                .get(&country)
                .and_then(|_| r.superseded.iter().rev().find(|a| a.country == country)),
        ),
        (NoticeKind::LateReply, Some(r), Some(country)) => {
            (r.late.iter().rev().find(|a| a.country == country), None)
        }
        _ => (None, None),
    };
    let answer = answer
        .map(|a| {
            let by = answerer_name(a, audience.focal_points);
            let channel = match &a.source {
                AnswerSource::Staff { channel, .. } => Some(channel.clone()),
                AnswerSource::Web { .. } => Some("web".into()),
                AnswerSource::Email { .. } => None,
            };
            AnswerInfo {
                position: position_label(a.position, l).to_string(),
                quote: quote(&a.text),
                received: format_deadline(a.received_at, tz, l),
                provisional: a.ambiguous,
                conditional: a.conditional,
                reason: a.reason.clone(),
                reviewed: a.review.is_some(),
                yours: a.answerer().is_some()
                    && a.answerer() == audience.email.map(|e| e.trim().to_lowercase()),
                by_staff: by.is_none(),
                by,
                channel,
                replaces: replaced.map(|old| {
                    let by = answerer_name(old, audience.focal_points);
                    ReplacedInfo {
                        position: position_label(old.position, l).to_string(),
                        received: format_deadline(old.received_at, tz, l),
                        by_staff: by.is_none(),
                        by,
                        same_answerer: old.answerer() == a.answerer(),
                    }
                }),
                conflict: a.conflict.is_some(),
            }
        })
        .or_else(|| troika_answer(kind, c, audience.country, l, tz));
    NoticeContext {
        kind,
        lang: l.as_str(),
        reference: c.reference.to_string(),
        title: c.title.clone(),
        recipient_name: audience.recipient_name.to_string(),
        country_name: audience.country_name.to_string(),
        presidency: country_name(c.presidency),
        round: record.map(|r| r.number),
        stage: stage_label(&stage, l),
        version: version.number,
        version_note: version.note.clone(),
        text: version.text.trim_end().to_string(),
        diff,
        unchanged,
        deadline: record.map(|r| format_deadline(r.deadline, tz, l)),
        deadline_iso: record.map(|r| r.deadline.with_timezone(&tz).to_rfc3339()),
        time_zone: tz.name().to_string(),
        troika_comments,
        extension: record
            .and_then(|r| r.extensions.last())
            .map(|e| ExtensionInfo {
                reason: e.reason.clone(),
                working_days: e.working_days,
                previous_deadline: format_deadline(e.previous_deadline, tz, l),
            }),
        withdrawal_reason: c.withdrawal.as_ref().map(|w| w.reason.clone()),
        outcome: c.outcome.as_ref().map(|o| OutcomeInfo {
            adopted: o.adopted,
            objections: o.objections.iter().map(|c| country_name(*c)).collect(),
            no_answer: o.no_answer.iter().map(|c| country_name(*c)).collect(),
            tally: o.tally.as_ref().map(|t| tally_info(o, t, country_name)),
        }),
        answers,
        to_review,
        report: c.report.as_ref().map(|r| r.text.clone()),
        answer,
        words: answer_words(l),
        reply_to: audience.reply_to.map(str::to_string),
        subject: String::new(),
        reply: None,
        answer_page: audience.answer_page.map(str::to_string),
    }
}

/// The wording data of an outcome, all from what was recorded with it.
fn tally_info(o: &Outcome, t: &Tally, country_name: &dyn Fn(CountryCode) -> String) -> TallyInfo {
    TallyInfo {
        by_consensus: o.by_consensus(),
        by_silence: o.by_silence(),
        missing_answers: !o.adopted
            && o.objections.is_empty()
            && !o.no_answer.is_empty()
            && t.rule == Consensus::ExplicitAgreement,
        participants: t.participants as usize,
        without_objection: t.no_objection.len() + t.comments.len(),
        with_comments: t.comments.len(),
        objected: o.objections.len(),
        did_not_answer: o.no_answer.len(),
        reviewed: t.reviewed.iter().map(|c| country_name(*c)).collect(),
        provisional: t.provisional.iter().map(|c| country_name(*c)).collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Sample data, for `puebla check`, `puebla mail preview` and the snapshot tests.

const SAMPLE_NAMES: [(&str, [&str; 3]); 9] = [
    ("BZ", ["Belice", "Belize", "Belize"]),
    ("CA", ["Canadá", "Canada", "Canada"]),
    ("CR", ["Costa Rica", "Costa Rica", "Costa Rica"]),
    ("GT", ["Guatemala", "Guatemala", "Guatemala"]),
    ("HN", ["Honduras", "Honduras", "Honduras"]),
    ("MX", ["México", "Mexico", "Mexique"]),
    ("NI", ["Nicaragua", "Nicaragua", "Nicaragua"]),
    ("SV", ["El Salvador", "El Salvador", "El Salvador"]),
    ("US", ["Estados Unidos", "United States", "États-Unis"]),
];

fn sample_country_name(code: CountryCode, l: Language) -> String {
    let i = lang_index(l);
    SAMPLE_NAMES
        .iter()
        .find(|(c, _)| *c == code.as_str())
        .map_or_else(|| code.to_string(), |(_, names)| names[i].to_string())
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).expect("sample country codes are valid")
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("sample times are valid")
}

const SAMPLE_V1: &str = "La Conferencia Regional sobre Migración acuerda:\n\n\
1. Adoptar los Lineamientos regionales para la protección consular de personas migrantes en situación de vulnerabilidad.\n\
2. Encargar a la Secretaría Técnica la difusión de los Lineamientos entre las redes consulares.\n";

const SAMPLE_V2: &str = "La Conferencia Regional sobre Migración acuerda:\n\n\
1. Adoptar los Lineamientos regionales para la protección consular de personas migrantes en situación de vulnerabilidad.\n\
2. Encargar a la Secretaría Técnica la difusión de los Lineamientos entre las redes consulares y los puntos focales.\n\
3. Los datos consulares de las personas migrantes están protegidos conforme a la legislación de cada país.\n";

fn sample_answer(country: &str, position: Position, text: &str, at: DateTime<Utc>) -> Answer {
    Answer {
        country: cc(country),
        position,
        text: text.to_string(),
        received_at: at,
        source: AnswerSource::Email {
            from: format!("fp1.{}@example.org", country.to_ascii_lowercase()),
            message_id: None,
        },
        ambiguous: false,
        round: None,
        conditional: false,
        reason: None,
        conflict: None,
        review: None,
    }
}

fn sample_round(
    number: u32,
    stage: &str,
    version: u32,
    opened: DateTime<Utc>,
    deadline: DateTime<Utc>,
    answers: Vec<Answer>,
) -> RoundRecord {
    RoundRecord {
        number,
        step: if number == 1 { 0 } else { 1 },
        stage: stage.to_string(),
        version,
        opened_at: opened,
        deadline,
        working_days: vec![],
        extensions: vec![],
        closed_at: None,
        closed_by: None,
        answers: answers.into_iter().map(|a| (a.country, a)).collect(),
        superseded: vec![],
        late: vec![],
    }
}

/// The sample consultation: reference RCM-2026-007 under Honduras's presidency.
/// `full`: two versions, round 2 open (deadline Monday 7 December 2026, 23:59 in
/// Tegucigalpa) after an extension, Troika comments, answers, adopted, a report and a
/// late answer. Otherwise: one version, round 1 open, not adopted, nothing optional.
fn sample_consultation(full: bool) -> Consultation {
    let members = ["BZ", "CA", "CR", "GT", "HN", "MX", "NI", "SV", "US"];
    let deadline = utc(2026, 12, 8, 5, 59);
    let v1 = TextVersion {
        number: 1,
        text: SAMPLE_V1.to_string(),
        created_at: utc(2026, 11, 16, 15, 0),
        note: None,
    };
    let v2 = TextVersion {
        number: 2,
        text: SAMPLE_V2.to_string(),
        created_at: utc(2026, 11, 27, 15, 0),
        note: Some("Incorpora los comentarios de México y Canadá.".to_string()),
    };
    let troika_answers: BTreeMap<CountryCode, TroikaAnswer> = [
        (
            cc("CR"),
            TroikaAnswer {
                approve: !full,
                comments: full.then(|| {
                    "Sugerimos mencionar expresamente a las niñas, niños y adolescentes no acompañados."
                        .to_string()
                }),
                at: utc(2026, 11, 12, 16, 0),
                source: None,
            },
        ),
        (
            cc("GT"),
            TroikaAnswer {
                approve: true,
                comments: None,
                at: utc(2026, 11, 12, 18, 0),
                source: None,
            },
        ),
    ]
    .into_iter()
    .collect();
    let round1_answers = vec![
        sample_answer(
            "MX",
            Position::Comments,
            "COMENTARIOS\nProponemos añadir a los puntos focales en el numeral 2.",
            utc(2026, 11, 18, 16, 0),
        ),
        sample_answer(
            "US",
            Position::NoObjection,
            "NO OBJECTION",
            utc(2026, 11, 19, 14, 0),
        ),
    ];
    let mut rounds = Vec::new();
    if full {
        let mut r1 = sample_round(
            1,
            "member_input",
            1,
            utc(2026, 11, 16, 15, 0),
            utc(2026, 11, 24, 5, 59),
            round1_answers,
        );
        r1.closed_at = Some(utc(2026, 11, 24, 5, 59));
        // Honduras's second focal point answered with a condition, read with doubt,
        // after the first had objected: every flag a notice can show.
        let mut hn = sample_answer(
            "HN",
            Position::Comments,
            "Honduras acompaña el texto revisado, siempre que el numeral 3 remita a la legislación nacional.",
            utc(2026, 12, 1, 16, 30),
        );
        hn.source = AnswerSource::Email {
            from: "fp2.hn@example.org".to_string(),
            message_id: None,
        };
        hn.ambiguous = true;
        hn.conditional = true;
        hn.reason = Some("consent with a condition (\"siempre que\")".to_string());
        hn.conflict = Some(Conflict {
            from: Some("fp1.hn@example.org".to_string()),
            position: Position::Objection,
            received_at: utc(2026, 11, 30, 15, 0),
        });
        let mut ni = sample_answer(
            "NI",
            Position::Comments,
            "COMENTARIOS\nNicaragua sugiere precisar el alcance del numeral 3 en el informe de implementación.",
            utc(2026, 12, 2, 17, 0),
        );
        ni.review = Some(Review {
            at: utc(2026, 12, 3, 15, 0),
            was: Position::Comments,
        });
        ni.ambiguous = true;
        let mut r2 = sample_round(
            2,
            "member_comments",
            2,
            utc(2026, 11, 27, 15, 0),
            deadline,
            vec![hn, ni],
        );
        r2.superseded.push(sample_answer(
            "HN",
            Position::Objection,
            "OBJECIÓN\nHonduras no está en condiciones de acompañar el numeral 3.",
            utc(2026, 11, 30, 15, 0),
        ));
        r2.extensions.push(Extension {
            working_days: 2,
            reason: "A solicitud de Guatemala, que realiza consultas internas.".to_string(),
            previous_deadline: utc(2026, 12, 4, 5, 59),
            new_deadline: deadline,
            at: utc(2026, 12, 2, 20, 0),
        });
        r2.late.push(sample_answer(
            "HN",
            Position::Comments,
            "COMENTARIOS\nHonduras sugiere revisar la numeración de los párrafos.",
            utc(2026, 12, 9, 15, 0),
        ));
        rounds.push(r1);
        rounds.push(r2);
    } else {
        rounds.push(sample_round(
            1,
            "member_input",
            1,
            utc(2026, 11, 30, 15, 0),
            deadline,
            vec![],
        ));
    }
    Consultation {
        format: 1,
        reference: ConsultationRef::new("RCM", 2026, 7).expect("a valid sample reference"),
        procedure: "rcm-five-day".to_string(),
        title: "Lineamientos regionales para la protección consular de personas migrantes"
            .to_string(),
        presidency: cc("HN"),
        troika: Troika {
            year: 2026,
            current: cc("HN"),
            former: Some(cc("GT")),
            upcoming: Some(cc("CR")),
        },
        participants: members.iter().map(|m| cc(m)).collect(),
        stage: Stage::Round {
            step: if full { 1 } else { 0 },
        },
        versions: if full { vec![v1, v2] } else { vec![v1] },
        troika_reviews: vec![TroikaReview {
            version: 1,
            opened_at: utc(2026, 11, 10, 15, 0),
            answers: troika_answers,
            closed_at: Some(utc(2026, 11, 12, 18, 0)),
            late: if full {
                vec![crate::domain::consultation::TroikaReply {
                    country: cc("CR"),
                    approve: true,
                    comments: Some("Costa Rica aprueba; sugiere «personas» en vez de <migrantes>.".into()),
                    review: Some(1),
                    received_at: utc(2026, 11, 16, 18, 0),
                    source: AnswerSource::Email {
                        from: "fp1.cr@example.org".into(),
                        message_id: None,
                    },
                }]
            } else {
                vec![]
            },
        }],
        rounds,
        objection_revisions: 0,
        outcome: Some(if full {
            // Adopted under the silence rule: two answered, seven did not.
            Outcome {
                adopted: true,
                at: utc(2026, 12, 8, 6, 0),
                objections: vec![],
                no_answer: ["BZ", "CA", "CR", "GT", "MX", "SV", "US"]
                    .iter()
                    .map(|m| cc(m))
                    .collect(),
                tally: Some(Tally {
                    rule: Consensus::NoObjection,
                    participants: 9,
                    no_objection: vec![],
                    comments: vec![cc("HN"), cc("NI")],
                    reviewed: vec![cc("HN"), cc("NI")],
                    provisional: vec![],
                }),
            }
        } else {
            // Not adopted: an objection, and an unreviewed doubt that did not matter.
            Outcome {
                adopted: false,
                at: utc(2026, 12, 8, 6, 0),
                objections: vec![cc("NI")],
                no_answer: vec![cc("BZ"), cc("SV")],
                tally: Some(Tally {
                    rule: Consensus::NoObjection,
                    participants: 9,
                    no_objection: vec![cc("CA"), cc("CR"), cc("GT"), cc("HN"), cc("US")],
                    comments: vec![cc("MX")],
                    reviewed: vec![],
                    provisional: vec![cc("MX")],
                }),
            }
        }),
        withdrawal: full.then(|| Withdrawal {
            reason: "La PPT presentará una propuesta consolidada en la próxima reunión."
                .to_string(),
            at: utc(2026, 12, 3, 15, 0),
            from_stage: "member_comments".to_string(),
        }),
        report: full.then(|| ResultsReport {
            text: "Los Lineamientos se difundieron a 214 consulados de los Países Miembros.\nLa ST publicará un informe de seguimiento en junio de 2027.".to_string(),
            at: utc(2027, 2, 1, 15, 0),
        }),
        created_at: utc(2026, 11, 10, 14, 0),
    }
}

/// The answer page link of the samples' focal points.
const SAMPLE_ANSWER_PAGE: &str =
    "https://consultas.rcm-ts.example/answer/aebagbafaydqqcjbmfrgcza2vbpukmle4ue4";

/// Sample contexts in `lang` for every notice kind, labelled: `full` (round 2 with a
/// diff, adopted, a reply address, every optional section), `sparse` (round 1, not
/// adopted, to the Technical Secretariat, no optional section) and `unchanged` (a
/// round whose text did not change), plus `round1`, the first invitation to a focal point.
pub fn sample_contexts(lang: Language) -> Vec<(&'static str, NoticeContext)> {
    use NoticeKind as K;
    let full = sample_consultation(true);
    let sparse = sample_consultation(false);
    let mut unchanged = full.clone();
    let mut r3 = unchanged.rounds[1].clone();
    r3.number = 3;
    r3.extensions.clear();
    unchanged.rounds.push(r3);
    unchanged.withdrawal = None;
    let names = |c: CountryCode| sample_country_name(c, lang);
    let hn_focal_points = [
        (
            "fp1.hn@example.org".to_string(),
            "Ana María Reyes".to_string(),
        ),
        ("fp2.hn@example.org".to_string(), "Carlos Mejía".to_string()),
    ];
    let hn = Audience {
        language: lang,
        time_zone: chrono_tz::America::Tegucigalpa,
        country: Some(cc("HN")),
        country_name: "Honduras",
        recipient_name: "Ana María Reyes",
        reply_to: Some("consultas+AEBAGBAFAYDQQ@rcm-ts.example"),
        email: Some("fp1.hn@example.org"),
        focal_points: &hn_focal_points,
        answer_page: Some(SAMPLE_ANSWER_PAGE),
    };
    let ts = Audience {
        language: lang,
        time_zone: chrono_tz::America::Costa_Rica,
        country: None,
        country_name: pick(
            lang,
            "Secretaría Técnica",
            "Technical Secretariat",
            "Secrétariat technique",
        ),
        recipient_name: pick(
            lang,
            "Secretaría Técnica",
            "Technical Secretariat",
            "Secrétariat technique",
        ),
        reply_to: None,
        email: None,
        focal_points: &[],
        answer_page: None,
    };
    let kinds = [
        (K::TroikaRequest, None, None),
        (K::ChangesRequested, None, None),
        (K::RoundInvitation, Some(2), Some(1)),
        (K::RevisionDue, Some(2), Some(1)),
        (K::DecisionDue, Some(2), Some(1)),
        (K::Reminder, Some(2), Some(1)),
        (K::DeadlineExtended, Some(2), Some(1)),
        (K::Withdrawn, None, None),
        (K::Outcome, Some(2), Some(1)),
        (K::ResultsReport, None, None),
        (K::ReplyConfirmation, Some(2), Some(1)),
        (K::LateReply, Some(2), Some(1)),
        (K::TroikaConfirmation, None, None),
        (K::LateTroikaFeedback, None, None),
    ];
    let mut out = vec![(
        "round1",
        context(K::RoundInvitation, &full, Some(1), &hn, &names),
    )];
    // Troika notices go to a Troika member (Costa Rica in the samples), not the PPT.
    let cr = Audience {
        language: lang,
        time_zone: chrono_tz::America::Costa_Rica,
        country: Some(cc("CR")),
        country_name: "Costa Rica",
        recipient_name: "Laura Jiménez",
        reply_to: Some("consultas+AEBAGBAFAYDQQ@rcm-ts.example"),
        email: None,
        focal_points: &[],
        answer_page: Some(SAMPLE_ANSWER_PAGE),
    };
    for (kind, full_round, sparse_round) in kinds {
        let hn = match kind {
            K::TroikaConfirmation | K::LateTroikaFeedback => &cr,
            _ => &hn,
        };
        out.push(("full", context(kind, &full, full_round, hn, &names)));
        out.push(("sparse", context(kind, &sparse, sparse_round, &ts, &names)));
        out.push((
            "unchanged",
            context(kind, &unchanged, full_round.map(|_| 3), hn, &names),
        ));
    }
    // As the engine does: only a notice that asks for an answer links the page.
    for (_, c) in &mut out {
        if !super::asks_for_answer(c.kind) {
            c.answer_page = None;
        }
    }
    out
}

/// The sample that shows template `name` best (round 1 for the first invitation, the
/// `full` sample otherwise), if `name` is a notice template.
pub fn sample_context(name: &str, lang: Language) -> Option<NoticeContext> {
    let label = if name == "round_invitation" {
        "round1"
    } else {
        "full"
    };
    sample_contexts(lang)
        .into_iter()
        .find(|(l, c)| *l == label && c.for_template(name))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn deadlines_read_naturally_in_each_language() {
        let at = Utc.with_ymd_and_hms(2026, 12, 8, 5, 59, 59).unwrap();
        let tz = chrono_tz::America::Tegucigalpa;
        assert_eq!(
            format_deadline(at, tz, Language::Es),
            "lunes 7 de diciembre de 2026, 23:59 (hora de Tegucigalpa)"
        );
        assert_eq!(
            format_deadline(at, tz, Language::En),
            "Monday, December 7, 2026, 23:59 (Tegucigalpa time)"
        );
        assert_eq!(
            format_deadline(at, chrono_tz::America::Toronto, Language::Fr),
            "mardi 8 décembre 2026, 00 h 59 (heure de Toronto)"
        );
    }
}
