//! Plain-text notices in the recipient's language, with the deadline in the recipient's time zone.
//!
//! This is the interim renderer: the outbound-mail issue replaces it with
//! handlebars templates (text and HTML) in `templates/`.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

use crate::domain::consultation::{Consultation, NoticeKind};
use crate::domain::Language;

/// What a rendered notice says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// Facts about the recipient a notice needs.
#[derive(Debug, Clone)]
pub struct Audience<'a> {
    pub language: Language,
    pub time_zone: Tz,
    /// The recipient's country name in `language`, or the secretariat.
    pub country_name: &'a str,
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

fn how_to_answer(lang: Language) -> &'static str {
    pick(
        lang,
        "Para responder, conteste a este mensaje escribiendo en la primera línea SIN OBJECIÓN, OBJECIÓN o COMENTARIOS, seguido de su texto. Puede cambiar su respuesta contestando de nuevo antes del plazo.",
        "To answer, reply to this message with NO OBJECTION, OBJECTION or COMMENTS on the first line, followed by your text. You may change your answer by replying again before the deadline.",
        "Pour répondre, répondez à ce message en écrivant sur la première ligne PAS D'OBJECTION, OBJECTION ou COMMENTAIRES, suivi de votre texte. Vous pouvez modifier votre réponse en répondant de nouveau avant l'échéance.",
    )
}

/// Renders one notice about consultation `c` for one recipient.
pub fn render(
    kind: NoticeKind,
    c: &Consultation,
    round: Option<u32>,
    audience: &Audience<'_>,
) -> Rendered {
    let l = audience.language;
    let reference = &c.reference;
    let title = &c.title;
    let record = round.and_then(|n| c.rounds.iter().find(|r| r.number == n));
    let deadline = record
        .map(|r| format_deadline(r.deadline, audience.time_zone, l))
        .unwrap_or_default();
    let version = c.current_version();
    let (topic, body) = match kind {
        NoticeKind::TroikaRequest => (
            pick(l, "Solicitud de retroalimentación de la Troika", "Troika: request for feedback", "Troïka : demande d'avis"),
            format!(
                "{}\n\n{}\n\n{}",
                pick(
                    l,
                    "La Presidencia Pro Tempore somete a la Troika la siguiente propuesta de curso de acción para su retroalimentación preliminar. Responda APROBAR o CAMBIOS con sus observaciones.",
                    "The Presidency pro tempore submits the following proposed course of action to the Troika for preliminary feedback. Reply APPROVE or CHANGES with your remarks.",
                    "La Présidence pro tempore soumet à la Troïka la proposition de ligne d'action suivante pour un avis préliminaire. Répondez APPROUVER ou MODIFICATIONS avec vos remarques.",
                ),
                version_heading(l, version.number),
                version.text
            ),
        ),
        NoticeKind::ChangesRequested => (
            pick(l, "La Troika solicita cambios", "The Troika requests changes", "La Troïka demande des modifications"),
            format!(
                "{}\n\n{}",
                pick(
                    l,
                    "Un miembro de la Troika ha solicitado cambios. Prepare una nueva versión y sométala de nuevo a la Troika.",
                    "A Troika member has requested changes. Prepare a new version and submit it to the Troika again.",
                    "Un membre de la Troïka a demandé des modifications. Préparez une nouvelle version et soumettez-la de nouveau à la Troïka.",
                ),
                troika_comments(c)
            ),
        ),
        NoticeKind::RoundInvitation => {
            let diff = record
                .and_then(|r| (r.number > 1).then(|| c.diff_of_version(r.version)).flatten())
                .map(|d| format!("\n\n{}\n\n{d}", pick(l, "Cambios respecto de la versión anterior:", "Changes from the previous version:", "Modifications par rapport à la version précédente :")))
                .unwrap_or_default();
            (
                pick(l, "Consulta a los Países Miembros", "Consultation of Member Countries", "Consultation des pays membres"),
                format!(
                    "{}\n\n{}: {deadline}\n\n{}\n\n{}\n\n{}{diff}",
                    pick(
                        l,
                        "Se somete a consideración de los Países Miembros el siguiente texto.",
                        "The following text is submitted to the Member Countries for consideration.",
                        "Le texte suivant est soumis à l'examen des pays membres.",
                    ),
                    pick(l, "Plazo", "Deadline", "Échéance"),
                    how_to_answer(l),
                    version_heading(l, version.number),
                    version.text
                ),
            )
        }
        NoticeKind::RevisionDue => (
            pick(l, "Ronda cerrada: revisión del texto", "Round closed: revise the text", "Tour clos : révision du texte"),
            format!(
                "{}\n\n{}",
                pick(
                    l,
                    "La ronda de consulta ha cerrado. Publique la versión revisada (o indique «sin cambios») para abrir la siguiente ronda.",
                    "The consultation round has closed. Publish the revised version (or state \"no changes\") to open the next round.",
                    "Le tour de consultation est clos. Publiez la version révisée (ou indiquez « sans modification ») pour ouvrir le tour suivant.",
                ),
                answers_summary(c, round, l)
            ),
        ),
        NoticeKind::Reminder => (
            pick(l, "Recordatorio", "Reminder", "Rappel"),
            format!(
                "{}\n\n{}: {deadline}\n\n{}",
                pick(
                    l,
                    "Aún no hemos recibido la respuesta de su país a esta consulta.",
                    "We have not yet received your country's answer to this consultation.",
                    "Nous n'avons pas encore reçu la réponse de votre pays à cette consultation.",
                ),
                pick(l, "Plazo", "Deadline", "Échéance"),
                how_to_answer(l)
            ),
        ),
        NoticeKind::DeadlineExtended => {
            let reason = record
                .and_then(|r| r.extensions.last())
                .map(|e| e.reason.clone())
                .unwrap_or_default();
            (
                pick(l, "Plazo prorrogado", "Deadline extended", "Échéance prolongée"),
                format!(
                    "{}: {deadline}\n{}: {reason}",
                    pick(l, "Nuevo plazo", "New deadline", "Nouvelle échéance"),
                    pick(l, "Motivo", "Reason", "Motif")
                ),
            )
        }
        NoticeKind::Withdrawn => (
            pick(l, "Consulta retirada", "Consultation withdrawn", "Consultation retirée"),
            format!(
                "{}\n{}: {}",
                pick(
                    l,
                    "La Presidencia Pro Tempore ha retirado esta consulta. No se requiere respuesta.",
                    "The Presidency pro tempore has withdrawn this consultation. No answer is needed.",
                    "La Présidence pro tempore a retiré cette consultation. Aucune réponse n'est requise.",
                ),
                pick(l, "Motivo", "Reason", "Motif"),
                c.withdrawal.as_ref().map_or("", |w| w.reason.as_str())
            ),
        ),
        NoticeKind::Outcome => {
            let adopted = c.outcome.as_ref().is_some_and(|o| o.adopted);
            (
                if adopted {
                    pick(l, "Texto adoptado", "Text adopted", "Texte adopté")
                } else {
                    pick(l, "Texto no adoptado", "Text not adopted", "Texte non adopté")
                },
                format!(
                    "{}\n\n{}",
                    if adopted {
                        pick(
                            l,
                            "La consulta ha concluido con el consenso de los Países Miembros. La Presidencia Pro Tempore implementará la acción acordada e informará de los resultados.",
                            "The consultation has concluded with the consensus of the Member Countries. The Presidency pro tempore will implement the agreed action and report the results.",
                            "La consultation s'est conclue par le consensus des pays membres. La Présidence pro tempore mettra en œuvre l'action convenue et en communiquera les résultats.",
                        )
                    } else {
                        pick(
                            l,
                            "La consulta ha concluido sin consenso: se mantiene al menos una objeción.",
                            "The consultation has concluded without consensus: at least one objection stands.",
                            "La consultation s'est conclue sans consensus : au moins une objection est maintenue.",
                        )
                    },
                    answers_summary(c, round, l)
                ),
            )
        }
        NoticeKind::ResultsReport => (
            pick(l, "Informe de resultados", "Results report", "Rapport sur les résultats"),
            c.report.as_ref().map_or_else(String::new, |r| r.text.clone()),
        ),
        NoticeKind::ReplyConfirmation => {
            let answer = record.and_then(|r| r.answers.values().max_by_key(|a| a.received_at));
            (
                pick(l, "Respuesta registrada", "Answer recorded", "Réponse enregistrée"),
                format!(
                    "{}: {}\n\n{}: {deadline}",
                    pick(l, "Hemos registrado la respuesta de su país", "We have recorded your country's answer", "Nous avons enregistré la réponse de votre pays"),
                    answer.map_or("", |a| a.position.as_str()),
                    pick(l, "Puede cambiarla respondiendo de nuevo antes del plazo", "You may change it by replying again before the deadline", "Vous pouvez la modifier en répondant de nouveau avant l'échéance"),
                ),
            )
        }
        NoticeKind::LateReply => (
            pick(l, "Respuesta recibida fuera de plazo", "Answer received after the deadline", "Réponse reçue après l'échéance"),
            pick(
                l,
                "Su respuesta llegó después del cierre de la ronda. Queda registrada, pero no cambia el resultado.",
                "Your answer arrived after the round closed. It is recorded, but it does not change the outcome.",
                "Votre réponse est arrivée après la clôture du tour. Elle est enregistrée, mais ne modifie pas le résultat.",
            )
            .to_string(),
        ),
    };
    Rendered {
        subject: format!("[{reference}] {topic}: {title}"),
        body: format!(
            "{}: {reference} — {title}\n{}: {}\n\n{body}\n",
            pick(l, "Consulta", "Consultation", "Consultation"),
            pick(l, "Para", "To", "À"),
            audience.country_name
        ),
    }
}

fn version_heading(l: Language, n: u32) -> String {
    format!("--- {} {n} ---", pick(l, "Versión", "Version", "Version"))
}

fn troika_comments(c: &Consultation) -> String {
    c.troika_reviews
        .last()
        .map(|r| {
            r.answers
                .iter()
                .filter(|(_, a)| !a.approve)
                .map(|(country, a)| format!("{country}: {}", a.comments.as_deref().unwrap_or("")))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn answers_summary(c: &Consultation, round: Option<u32>, l: Language) -> String {
    let Some(r) = round.and_then(|n| c.rounds.iter().find(|r| r.number == n)) else {
        return String::new();
    };
    c.participants
        .iter()
        .map(|country| {
            let pos = r.answers.get(country).map_or(
                pick(l, "sin respuesta", "no answer", "pas de réponse"),
                |a| a.position.as_str(),
            );
            format!("  {country}: {pos}")
        })
        .collect::<Vec<_>>()
        .join("\n")
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
