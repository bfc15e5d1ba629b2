//! Sample data, for `puebla check`, `puebla mail preview` and the snapshot tests:
//! one context per notice kind, built by [`context`] from a sample consultation.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};

use crate::domain::body::Troika;
use crate::domain::consultation::{
    Answer, AnswerSource, Conflict, Consultation, Extension, NoticeKind, Outcome, Position,
    ResultsReport, Review, RoundRecord, Stage, Tally, TextVersion, TroikaAnswer, TroikaReview,
    Withdrawal,
};
use crate::domain::procedure::Consensus;
use crate::domain::{ConsultationRef, CountryCode, Language};
use crate::engine::notice::{context, Audience, NoticeContext};
use crate::mail::locale::{lang_index, pick};

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
        if !super::step::asks_for_answer(c.kind) {
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
