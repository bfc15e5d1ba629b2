//! The position reader by property: consent is never inferred from doubt.
//!
//! A reply is generated from a consent sentence in Spanish, English or French (one
//! the reader alone takes as a plain no objection), filler around it (greetings,
//! thanks, courtesy formulas of notes verbales), and random capitals and accents. A
//! marker phrase — a negation of support, a condition or a proposed edit (the issue's
//! lists), or a reservation or a question about the substance — is then put at a
//! random place between two words. Whatever the place, the reply must not
//! read as a plain `no_objection`. The same reply without the marker must read as
//! one, so that the property is about the marker and not about a generator that
//! never makes consent. `PROPTEST_CASES` asks for more cases than the 256 of every
//! `cargo test`.

use proptest::prelude::*;
use puebla::domain::consultation::Position;
use puebla::mail::inbound::position::{read, Reading};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

const CONSENT: &[&str] = &[
    "The Government of Belize has no objection to the draft declaration.",
    "We have no objection.",
    "No objection from Mexico.",
    "Canada supports the text.",
    "The United States joins the consensus.",
    "We do not object to the draft.",
    "Costa Rica concurs with the text.",
    "We can go along with the text.",
    "We have no comments on the draft.",
    "El Gobierno de Honduras no tiene objeción al proyecto.",
    "Sin objeción.",
    "Nada que objetar.",
    "Guatemala apoya el proyecto de declaración.",
    "Panamá se suma al consenso.",
    "No tenemos inconveniente con el texto.",
    "El Salvador no formula observaciones.",
    "Estamos de acuerdo con el texto.",
    "Le Canada n'a pas d'objection au projet.",
    "Aucune objection.",
    "Rien à signaler.",
    "Le Canada appuie le projet.",
    "Le Canada se joint au consensus.",
    "Nous ne nous opposons pas au texte.",
];

const FILLER: &[&str] = &[
    "Dear colleagues,",
    "Thank you for your message.",
    "Best regards.",
    "Please accept the assurances of our highest consideration.",
    "Estimados colegas:",
    "Gracias por su mensaje.",
    "La Embajada saluda atentamente a la Presidencia Pro Tempore.",
    "Saludos cordiales.",
    "Bonjour,",
    "Merci de votre message.",
    "Le Canada remercie la présidence pour son travail.",
    "Cordialement.",
];

/// Negations of support or consent, as the issue lists them.
const NEGATIONS: &[&str] = &[
    "not in a position to support",
    "not in a position to",
    "cannot support",
    "unable to",
    "unable to join the consensus",
    "no está en condiciones de",
    "no está en condiciones de acompañar",
    "no puede acompañar",
    "no puede apoyar",
    "no puede sumarse",
    "n'est pas en mesure de",
    "n'est pas en mesure de se joindre au consensus",
    "ne peut pas appuyer",
];

/// Conditions, completed (or not) by what they ask.
const CONDITIONS: &[&str] = &[
    "subject to",
    "provided that",
    "on condition that",
    "siempre que",
    "a condición de",
    "sujeto a",
    "sous réserve de",
    "à condition que",
    // French elides "que" before a vowel.
    "à condition qu'il",
    "pourvu qu'aucun",
    "pour autant qu'elle",
];

const COMPLETIONS: &[&str] = &[
    "",
    "paragraph 3 is deleted",
    "se elimine el párrafo 3",
    "la suppression du paragraphe 3",
    "confirmation from capital",
];

/// Reservations and questions about the substance: not in the lists of
/// markers for this property, but under the same rule. (Objections are not: put
/// right after a negation, "no" + "rompe el silencio" is consent, as written.)
const OTHERS: &[&str] = &[
    "without prejudice to its national legislation",
    "se reserva el derecho de formular una declaración interpretativa",
    "sin perjuicio de la legislación nacional",
    "sans préjudice de la législation nationale",
    "interpretive statement",
    "nous nous dissocions du paragraphe 3",
    "does paragraph 3 cover refugees?",
    "¿incluye el párrafo 3 a los refugiados?",
    "le paragraphe 3 couvre-t-il les réfugiés ?",
];

/// Proposed edits: (verb, "with"), filled with two of `WORDING`.
const EDITS: &[(&str, &str)] = &[
    ("replace", "with"),
    ("sustituir", "por"),
    ("remplacer", "par"),
];

const WORDING: &[&str] = &[
    "\"shall\"",
    "\"should\"",
    "«migrantes»",
    "«personas migrantes»",
    "paragraph 2",
    "el párrafo 4",
    "« doit »",
    "« devrait »",
];

fn pick(list: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    prop::sample::select(list)
}

fn marker() -> impl Strategy<Value = String> {
    prop_oneof![
        pick(NEGATIONS).prop_map(str::to_string),
        (pick(CONDITIONS), pick(COMPLETIONS)).prop_map(|(c, rest)| format!("{c} {rest}")),
        (prop::sample::select(EDITS), pick(WORDING), pick(WORDING))
            .prop_map(|((verb, with), a, b)| format!("{verb} {a} {with} {b}")),
        pick(OTHERS).prop_map(str::to_string),
    ]
}

/// The reply without the marker: filler, the consent sentence, filler, each joined
/// by a space, a line break or a blank line.
fn reply() -> impl Strategy<Value = Vec<String>> {
    (
        prop::collection::vec(pick(FILLER), 0..3),
        pick(CONSENT),
        prop::collection::vec(pick(FILLER), 0..3),
        prop::collection::vec(pick(&[" ", "\n", "\n\n"]), 8),
    )
        .prop_map(|(before, consent, after, joins)| {
            let sentences: Vec<&str> = before
                .into_iter()
                .chain(std::iter::once(consent))
                .chain(after)
                .collect();
            let mut words = Vec::new();
            for (n, sentence) in sentences.iter().enumerate() {
                let mut it = sentence.split(' ').peekable();
                while let Some(w) = it.next() {
                    let join = if it.peek().is_some() {
                        " "
                    } else {
                        joins[n % joins.len()]
                    };
                    words.push(format!("{w}{join}"));
                }
            }
            words
        })
}

/// Random capitals, and accents added to or taken off vowels.
fn disguise(text: &str, noise: &[u8]) -> String {
    text.chars()
        .zip(noise.iter().cycle())
        .map(|(c, &n)| {
            let c = match n % 7 {
                0 => accent(c),
                1 => plain(c),
                _ => c,
            };
            if n & 0x80 != 0 {
                c.to_uppercase().collect::<String>()
            } else {
                c.to_lowercase().collect::<String>()
            }
        })
        .collect()
}

fn accent(c: char) -> char {
    match c {
        'a' => 'á',
        'e' => 'é',
        'i' => 'í',
        'o' => 'ó',
        'u' => 'ú',
        'A' => 'À',
        'E' => 'È',
        'O' => 'Ô',
        c => c,
    }
}

fn plain(c: char) -> char {
    match c {
        'á' | 'à' => 'a',
        'é' | 'è' | 'ê' => 'e',
        'í' => 'i',
        'ó' | 'ô' => 'o',
        'ú' => 'u',
        c => c,
    }
}

fn plain_no_objection(r: &Reading) -> bool {
    r.position == Position::NoObjection && !r.ambiguous
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn a_negation_condition_or_edit_anywhere_is_never_a_plain_no_objection(
        words in reply(),
        marker in marker(),
        at in any::<prop::sample::Index>(),
        noise in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let without: String = words.concat();
        let without = disguise(&without, &noise);
        let r = read(&without, &[]);
        prop_assert!(
            plain_no_objection(&r),
            "the reply without the marker must be consent: {without:?} was read as {:?} ({})",
            r.position, r.reason
        );

        let at = at.index(words.len() + 1);
        let mut with = words;
        with.insert(at, format!("{marker} "));
        let with = disguise(&with.concat(), &noise);
        let r = read(&with, &[]);
        prop_assert!(
            !plain_no_objection(&r),
            "{with:?} was read as a plain no objection ({})",
            r.reason
        );
    }
}
