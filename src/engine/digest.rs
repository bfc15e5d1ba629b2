//! The daily digest for the PPT and the Technical Secretariat: every open
//! consultation with its stage, deadline, who has answered what and who has not,
//! the answers a person must review (and whether a decision waits on them), late
//! replies, and the outbox's problems, in the reader's language.
//!
//! Rendering is pure: [`render`] turns the data into a subject, a text part and
//! an HTML part with the handlebars templates `templates/{es,en,fr}/digest.*.hbs`,
//! loaded from `templates_dir` by the shared [`Templates`] like every other notice
//! (strict mode: a missing variable is an error, never a blank; `puebla check`
//! renders [`sample`] through them). [`crate::engine::jobs`] gathers the data and
//! writes the notices.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::domain::body::Body;
use crate::domain::consultation::{Consultation, Position, ReviewReason, Stage};
use crate::domain::{CountryCode, Language};
use crate::engine::ports::{Notice, OutboxCounts, SystemNoticeKind};
use crate::engine::Unreadable;
use crate::mail::locale::{format_date, format_deadline, review_label};
use crate::mail::templates::{Rendered, Templates};

/// The name of the digest's schedule (and its notices' kind).
pub const DIGEST: &str = SystemNoticeKind::Digest.as_str();

/// How many failed notices a digest lists; the counts cover the rest.
pub const FAILED_LISTED: i64 = 20;

/// What a digest is made of: the state of things when it runs.
#[derive(Debug, Clone, Copy)]
pub struct DigestData<'a> {
    pub body: &'a Body,
    /// The open consultations.
    pub consultations: &'a [Consultation],
    /// Open consultations whose stored state cannot be read (named, not shown).
    pub unreadable: &'a [Unreadable],
    pub outbox: &'a OutboxCounts,
    /// The most recent failed notices (at most [`FAILED_LISTED`]).
    pub failed: &'a [Notice],
    /// The run being served; its day is the digest's date.
    pub due: DateTime<Utc>,
}

/// Who reads a digest.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    pub name: &'a str,
    pub language: Language,
    pub time_zone: Tz,
}

// The view the templates see. Every field is always present (`null` or empty
// when there is nothing to say) so that strict mode catches only real mistakes.

#[derive(Debug, Clone, Serialize)]
struct View {
    body: String,
    date: String,
    recipient: String,
    open_count: usize,
    consultations: Vec<ConsultationView>,
    unreadable_count: usize,
    unreadable: Vec<UnreadableView>,
    outbox: OutboxView,
}

#[derive(Debug, Clone, Serialize)]
struct UnreadableView {
    reference: String,
    error: String,
}

#[derive(Debug, Clone, Serialize)]
struct ConsultationView {
    reference: String,
    title: String,
    stage: String,
    troika: Option<TroikaView>,
    round: Option<RoundView>,
    /// The consultation waits for these reviews before its decision.
    awaiting_decision: bool,
    /// Doubtful answers not reviewed yet (latest round).
    to_review: Vec<ReviewView>,
    late: Vec<LateView>,
}

#[derive(Debug, Clone, Serialize)]
struct ReviewView {
    country: String,
    round: u32,
    position: String,
    /// Why, localized: unclear reading, conditional, conflicting focal points.
    reasons: Vec<String>,
    received: String,
    excerpt: String,
    /// The earlier, different answer of another focal point of the same country.
    conflict: Option<ConflictView>,
}

#[derive(Debug, Clone, Serialize)]
struct ConflictView {
    /// The focal point's address, or who entered it.
    from: String,
    position: String,
    received: String,
}

#[derive(Debug, Clone, Serialize)]
struct TroikaView {
    agreed: Vec<String>,
    changes_requested: Vec<String>,
    pending: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct RoundView {
    number: u32,
    deadline: String,
    participant_count: usize,
    answered_count: usize,
    pending_count: usize,
    answered: Vec<AnswerView>,
    pending: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct AnswerView {
    country: String,
    position: String,
    objection: bool,
    /// Doubtful and not reviewed yet (listed again under `to_review`).
    needs_review: bool,
    received: String,
    excerpt: String,
}

#[derive(Debug, Clone, Serialize)]
struct LateView {
    country: String,
    round: u32,
    position: String,
    received: String,
}

#[derive(Debug, Clone, Serialize)]
struct OutboxView {
    problems: bool,
    pending: i64,
    retrying: i64,
    failed: i64,
    failed_notices: Vec<FailedView>,
}

#[derive(Debug, Clone, Serialize)]
struct FailedView {
    recipient: String,
    kind: String,
    reference: String,
    error: String,
}

/// The digest of `data` for `reader`, in the reader's language and time zone.
pub fn render(
    templates: &Templates,
    data: &DigestData<'_>,
    reader: &Reader<'_>,
) -> anyhow::Result<Rendered> {
    templates
        .render_with(DIGEST, reader.language, &view(data, reader))
        .with_context(|| format!("cannot render the {} digest", reader.language))
}

/// Sample data for `puebla check` and the snapshot tests, labelled: `full` reaches
/// every branch of the templates, `quiet` is a day with nothing open and no problem.
pub fn samples(l: Language) -> Vec<(&'static str, serde_json::Value)> {
    let mut quiet = sample_view(l);
    quiet.consultations.clear();
    quiet.unreadable.clear();
    quiet.unreadable_count = 0;
    quiet.open_count = 0;
    quiet.outbox = OutboxView {
        problems: false,
        pending: 0,
        retrying: 0,
        failed: 0,
        failed_notices: vec![],
    };
    [("full", sample_view(l)), ("quiet", quiet)]
        .into_iter()
        .map(|(label, v)| {
            (
                label,
                serde_json::to_value(v).expect("a digest view serializes"),
            )
        })
        .collect()
}

fn view(data: &DigestData<'_>, reader: &Reader<'_>) -> View {
    let l = reader.language;
    let tz = reader.time_zone;
    let country = |c: &CountryCode| {
        data.body
            .member(*c)
            .map_or_else(|_| c.to_string(), |m| m.name(l).to_string())
    };
    let when = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
    let consultations = data
        .consultations
        .iter()
        .map(|c| {
            let troika = match c.stage {
                Stage::TroikaReview => c.troika_reviews.last().map(|review| {
                    let reviewers = c.troika.reviewers();
                    let with = |approve: bool| {
                        reviewers
                            .iter()
                            .filter(|r| review.answers.get(r).is_some_and(|a| a.approve == approve))
                            .map(&country)
                            .collect()
                    };
                    TroikaView {
                        agreed: with(true),
                        changes_requested: with(false),
                        pending: reviewers
                            .iter()
                            .filter(|r| !review.answers.contains_key(r))
                            .map(&country)
                            .collect(),
                    }
                }),
                Stage::Draft
                | Stage::Round { .. }
                | Stage::Revision { .. }
                | Stage::AwaitingDecision
                | Stage::Adopted
                | Stage::NotAdopted
                | Stage::Concluded
                | Stage::Withdrawn => None,
            };
            let round = c.open_round().map(|r| {
                let answered: Vec<AnswerView> = c
                    .participants
                    .iter()
                    .filter_map(|p| r.answers.get(p))
                    .map(|a| AnswerView {
                        country: country(&a.country),
                        position: position_label(a.position, l).to_string(),
                        objection: a.position == Position::Objection,
                        needs_review: a.needs_review(),
                        received: when(a.received_at),
                        excerpt: excerpt(&a.text, 120),
                    })
                    .collect();
                let pending: Vec<String> = c
                    .participants
                    .iter()
                    .filter(|p| !r.answers.contains_key(p))
                    .map(&country)
                    .collect();
                RoundView {
                    number: r.number,
                    deadline: format_deadline(r.deadline, tz, l),
                    participant_count: c.participants.len(),
                    answered_count: answered.len(),
                    pending_count: pending.len(),
                    answered,
                    pending,
                }
            });
            let late = c
                .rounds
                .iter()
                .flat_map(|r| {
                    r.late.iter().map(|a| LateView {
                        country: country(&a.country),
                        round: r.number,
                        position: position_label(a.position, l).to_string(),
                        received: when(a.received_at),
                    })
                })
                .collect();
            let to_review = crate::engine::review::review_items(c)
                .into_iter()
                .map(|i| ReviewView {
                    country: country(&i.country),
                    round: i.round,
                    position: position_label(i.position, l).to_string(),
                    reasons: i
                        .reasons
                        .iter()
                        .map(|r| review_label(*r, l).to_string())
                        .collect(),
                    received: when(i.received_at),
                    excerpt: excerpt(&i.text, 120),
                    conflict: i.conflict.map(|k| ConflictView {
                        from: k.from.unwrap_or_else(|| staff(l).to_string()),
                        position: position_label(k.position, l).to_string(),
                        received: when(k.received_at),
                    }),
                })
                .collect();
            ConsultationView {
                reference: c.reference.to_string(),
                title: c.title.clone(),
                stage: stage_label(&c.stage_name(), l),
                troika,
                round,
                awaiting_decision: c.stage == Stage::AwaitingDecision,
                to_review,
                late,
            }
        })
        .collect::<Vec<_>>();
    View {
        body: data.body.code.clone(),
        date: format_date(data.due, tz, l),
        recipient: reader.name.to_string(),
        open_count: consultations.len(),
        consultations,
        unreadable_count: data.unreadable.len(),
        unreadable: data
            .unreadable
            .iter()
            .map(|u| UnreadableView {
                reference: u.reference.clone(),
                error: u.error.clone(),
            })
            .collect(),
        outbox: OutboxView {
            problems: data.outbox.failed > 0 || data.outbox.retrying > 0,
            pending: data.outbox.pending,
            retrying: data.outbox.retrying,
            failed: data.outbox.failed,
            failed_notices: data
                .failed
                .iter()
                .map(|n| FailedView {
                    recipient: n.notice.recipient.clone(),
                    kind: n.notice.kind.to_string(),
                    reference: n
                        .notice
                        .reference
                        .as_ref()
                        .map_or_else(|| "—".into(), ToString::to_string),
                    error: n.last_error.clone().unwrap_or_default(),
                })
                .collect(),
        },
    }
}

/// The first line of `text`, cut at `max` characters.
fn excerpt(text: &str, max: usize) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    let line = line.unwrap_or("");
    if line.chars().count() <= max {
        return line.to_string();
    }
    let cut: String = line.chars().take(max).collect();
    format!("{}…", cut.trim_end())
}

fn position_label(p: Position, l: Language) -> &'static str {
    match (p, l) {
        (Position::NoObjection, Language::Es) => "sin objeción",
        (Position::NoObjection, Language::En) => "no objection",
        (Position::NoObjection, Language::Fr) => "pas d'objection",
        (Position::Objection, Language::Es) => "objeción",
        (Position::Objection, Language::En) => "objection",
        (Position::Objection, Language::Fr) => "objection",
        (Position::Comments, Language::Es) => "comentarios",
        (Position::Comments, Language::En) => "comments",
        (Position::Comments, Language::Fr) => "commentaires",
    }
}

/// Who entered an answer that no focal point sent.
fn staff(l: Language) -> &'static str {
    match l {
        Language::Es => "la PPT o la ST",
        Language::En => "PPT or TS staff",
        Language::Fr => "la PPT ou le ST",
    }
}

/// The stage as staff read it. Stage names of rounds come from procedure files,
/// so an unknown one is shown as written.
fn stage_label(stage: &str, l: Language) -> String {
    let known = match (stage, l) {
        ("draft", Language::Es) => "borrador",
        ("draft", Language::En) => "draft",
        ("draft", Language::Fr) => "projet",
        ("troika_review", Language::Es) => "revisión de la Troika",
        ("troika_review", Language::En) => "Troika review",
        ("troika_review", Language::Fr) => "examen par la Troïka",
        ("member_input", Language::Es) => "aportes de los Países Miembros",
        ("member_input", Language::En) => "input from the Member Countries",
        ("member_input", Language::Fr) => "contributions des pays membres",
        ("revision", Language::Es) => "revisión del texto por la PPT",
        ("revision", Language::En) => "revision of the text by the PPT",
        ("revision", Language::Fr) => "révision du texte par la PPT",
        ("awaiting_decision", Language::Es) => "decisión pendiente: hay respuestas por revisar",
        ("awaiting_decision", Language::En) => "decision waiting: answers to review",
        ("awaiting_decision", Language::Fr) => "décision en attente : réponses à examiner",
        ("member_comments", Language::Es) => "comentarios de los Países Miembros",
        ("member_comments", Language::En) => "comments from the Member Countries",
        ("member_comments", Language::Fr) => "commentaires des pays membres",
        ("silence_period", Language::Es) => "período de silencio",
        ("silence_period", Language::En) => "silence period",
        ("silence_period", Language::Fr) => "période de silence",
        ("adopted", Language::Es) => "adoptado; falta el informe de resultados",
        ("adopted", Language::En) => "adopted; results report pending",
        ("adopted", Language::Fr) => "adopté ; rapport sur les résultats en attente",
        _ => return stage.replace('_', " "),
    };
    known.to_string()
}

/// Data that reaches every branch of the templates.
fn sample_view(l: Language) -> View {
    let answer = |country: &str, p: Position, needs_review| AnswerView {
        country: country.into(),
        position: position_label(p, l).into(),
        objection: p == Position::Objection,
        needs_review,
        received: "2027-03-22 10:00".into(),
        excerpt: "Proposes adding a point on <consular> data & protection.".into(),
    };
    let late = LateView {
        country: "Nicaragua".into(),
        round: 1,
        position: position_label(Position::Comments, l).into(),
        received: "2027-03-31 12:00".into(),
    };
    View {
        body: "RCM".into(),
        date: "lunes 22 de marzo de 2027".into(),
        recipient: "Technical Secretariat".into(),
        open_count: 3,
        consultations: vec![
            ConsultationView {
                reference: "RCM-2027-001".into(),
                title: "Regional guidelines on consular assistance".into(),
                stage: stage_label("member_input", l),
                troika: None,
                round: Some(RoundView {
                    number: 1,
                    deadline: "lunes 29 de marzo de 2027, 23:59 (hora de Tegucigalpa)".into(),
                    participant_count: 11,
                    answered_count: 2,
                    pending_count: 9,
                    answered: vec![
                        answer("México", Position::Comments, false),
                        answer("Belice", Position::Objection, true),
                    ],
                    pending: vec!["Canadá".into(), "Costa Rica".into()],
                }),
                awaiting_decision: false,
                to_review: vec![ReviewView {
                    country: "Belice".into(),
                    round: 1,
                    position: position_label(Position::Objection, l).into(),
                    reasons: vec![review_label(ReviewReason::Ambiguous, l).into()],
                    received: "2027-03-22 10:00".into(),
                    excerpt: "Proposes adding a point on <consular> data & protection.".into(),
                    conflict: None,
                }],
                late: vec![late],
            },
            ConsultationView {
                reference: "RCM-2027-003".into(),
                title: "Statement on regional labour mobility".into(),
                stage: stage_label("awaiting_decision", l),
                troika: None,
                round: None,
                awaiting_decision: true,
                to_review: vec![ReviewView {
                    country: "Guatemala".into(),
                    round: 2,
                    position: position_label(Position::NoObjection, l).into(),
                    reasons: vec![
                        review_label(ReviewReason::Conditional, l).into(),
                        review_label(ReviewReason::Conflict, l).into(),
                    ],
                    received: "2027-03-19 16:30".into(),
                    excerpt: "Sin objeción, siempre que se mencione la legislación nacional."
                        .into(),
                    conflict: Some(ConflictView {
                        from: "fp1.gt@example.org".into(),
                        position: position_label(Position::Objection, l).into(),
                        received: "2027-03-18 11:00".into(),
                    }),
                }],
                late: vec![],
            },
            ConsultationView {
                reference: "RCM-2027-002".into(),
                title: "Work plan 2027".into(),
                stage: stage_label("troika_review", l),
                troika: Some(TroikaView {
                    agreed: vec!["Costa Rica".into()],
                    changes_requested: vec![],
                    pending: vec!["Guatemala".into()],
                }),
                round: None,
                awaiting_decision: false,
                to_review: vec![],
                late: vec![],
            },
        ],
        unreadable_count: 1,
        unreadable: vec![UnreadableView {
            reference: "RCM-2027-003".into(),
            error: "EOF while parsing an object at line 1 column 7".into(),
        }],
        outbox: OutboxView {
            problems: true,
            pending: 3,
            retrying: 1,
            failed: 1,
            failed_notices: vec![FailedView {
                recipient: "fp1.bz@example.org".into(),
                kind: "reminder".into(),
                reference: "RCM-2027-001".into(),
                error: "550 mailbox unavailable".into(),
            }],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> Templates {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        Templates::load(&dir).unwrap_or_else(|e| panic!("the shipped templates load:\n{e}"))
    }

    #[test]
    fn every_language_renders_the_sample_in_strict_mode() {
        let t = templates();
        for l in Language::ALL {
            let r = t.render_with(DIGEST, l, &sample_view(l)).unwrap();
            assert!(r.subject.starts_with("[RCM]"), "{l}: {}", r.subject);
            assert!(!r.subject.contains('\n'));
            for part in [&r.text, &r.html] {
                assert!(part.contains("RCM-2027-001"), "{l}: {part}");
                assert!(
                    part.contains("Canadá") && part.contains("Costa Rica"),
                    "{l}"
                );
                assert!(part.contains("Nicaragua"), "{l}: late reply listed");
                assert!(
                    part.contains("fp1.bz@example.org"),
                    "{l}: failed notice listed"
                );
                assert!(part.contains("Guatemala"), "{l}: pending Troika reviewer");
                assert!(
                    part.contains("RCM-2027-003") && part.contains("fp1.gt@example.org"),
                    "{l}: the answer in doubt and the conflicting focal point listed"
                );
                assert!(
                    part.contains(review_label(ReviewReason::Conditional, l)),
                    "{l}: why it is in doubt"
                );
            }
            // A decision waiting for a review says so, in the reader's language.
            let waiting = match l {
                Language::Es => "DECISIÓN PENDIENTE",
                Language::En => "DECISION WAITING",
                Language::Fr => "DÉCISION EN ATTENTE",
            };
            assert!(r.text.contains(waiting), "{l}: {}", r.text);
            // User text is escaped in HTML only.
            assert!(
                r.html.contains("&lt;consular&gt; data &amp; protection"),
                "{l}"
            );
            assert!(r.text.contains("<consular> data & protection"), "{l}");
        }
    }

    #[test]
    fn a_quiet_day_says_so() {
        let t = templates();
        for l in Language::ALL {
            let (_, quiet) = samples(l).into_iter().find(|(s, _)| *s == "quiet").unwrap();
            let r = t.render_with(DIGEST, l, &quiet).unwrap();
            assert!(!r.text.contains("RCM-2027"), "{l}: {}", r.text);
        }
    }

    #[test]
    fn excerpts_keep_the_first_line_and_cut_long_ones() {
        assert_eq!(excerpt("\n  Sin objeción.\nSaludos", 120), "Sin objeción.");
        assert_eq!(excerpt("abcdef ghij", 7), "abcdef…");
    }
}
