//! Words and dates in the recipient's language (Spanish, English, French): the
//! deadline in their time zone, stage labels, positions, the answer keywords.
//! Shared by the notices the engine prepares and the messages mail builds.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::domain::consultation::{Position, ReviewReason};
use crate::domain::Language;

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

pub(crate) fn lang_index(l: Language) -> usize {
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

pub(crate) fn pick<'a>(lang: Language, es: &'a str, en: &'a str, fr: &'a str) -> &'a str {
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
