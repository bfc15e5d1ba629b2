//! What a notice says, as data: [`NoticeContext`] is built here from the consultation,
//! the notice kind, the round and the recipient, and rendered by the handlebars
//! templates in `templates/` (see [`crate::mail::templates`]). Everything a template
//! shows in the recipient's language (the deadline in their time zone, stage labels,
//! positions, country names) is prepared here, so templates only lay it out. The
//! words and dates themselves are [`crate::mail::locale`]'s; the sample contexts
//! that `puebla check` renders are in [`crate::engine::samples`].

use chrono_tz::Tz;
use serde::Serialize;

use crate::domain::consultation::{Answer, AnswerSource, Consultation, NoticeKind, Outcome, Tally};
use crate::domain::procedure::Consensus;
use crate::domain::{CountryCode, Language};
use crate::mail::locale::{
    answer_words, format_deadline, pick, position_label, review_label, stage_label, troika_label,
    AnswerWords,
};
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
