//! The words the position reader knows, by class, in Spanish, English and French.
//!
//! Every pattern is folded (lowercase, no accents) and split into words the way the
//! reader splits a reply: at every character that is not a letter or a digit, so
//! "n'a pas d'objection" is `n a pas d objection`. A word ending in `*` matches any
//! word that starts with it (the stem has at least four letters); stems are used
//! only where a false match errs on the side of caution (edits, conditions,
//! reservations), never for consent, so that consent is always read from a word
//! listed here in full.
//!
//! The lists are data: a new idiom goes into the class it belongs to, and the
//! reader's rules (in `position.rs`) apply to it unchanged. A class is about what a
//! phrase does to a reply, not about its language.

mod assent;
mod conditions;
mod edits;
mod grammar;

/// What a negation does to the word it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Negation {
    /// "no", "not", "sin", "sans", "aucune": negates what follows.
    Plain,
    /// "cannot", "unable", "impossible": negates what follows and says the sender
    /// cannot do it. Reaching an objection word it is a doubt ("cannot object"),
    /// never consent; left unresolved it is a doubt too.
    Inability,
    /// "withdraws", "retira", "lève": takes back what follows ("withdraws its
    /// objection", "retira su apoyo"); left unresolved it removes text (an edit).
    Withdrawal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    // --- The negation machinery ---
    Negator(Negation),
    /// "no", "non", "rien", "aucune": a plain negator that can also be a whole
    /// answer, so that a subject right after it starts a new sentence ("No we
    /// object" is "No. We object").
    Answer,
    /// A subject pronoun: "we", "nosotros", "je". A negation does not reach past it
    /// into another verb's objection ("not what we object to" is no consent).
    Subject,
    /// "nous", "vous": a subject, or the object of a French verb after "ne"
    /// ("ne nous opposons pas").
    SubjectOrObject,
    /// "ne"/"n'": a negator whose "pas" (or "point", "jamais") comes after the verb,
    /// and which "que" turns into "only" ("ne peut que se féliciter").
    Ne,
    /// "pas", "point", "jamais": a negator, but the second half of a "ne" already
    /// used by the word it negated.
    Particle,
    /// "can", "able", "in a position", "en condiciones", "en mesure": turns an open
    /// negation into an inability ("not in a position to support").
    Ability,
    /// "or", "o", "ou": a negation reaches both sides ("cannot support or accept").
    Or,
    /// "and", "y", "et", "because": ends an unused negation.
    Terminator,
    /// Words taken out of play: formulas that contain a listed word but say
    /// nothing about the text ("not only", "would like to", "conforme a").
    Neutral,

    // --- Read through negation ---
    /// Consent: "support", "agree", "apoya", "acompañar", "appuyer", "join the
    /// consensus". Negated, it is an objection.
    Assent,
    /// Objection: "object", "oppose", "reject", "break silence". Negated, it is
    /// consent ("no objection", "nada que objetar", "ne s'oppose pas").
    Dissent,
    /// A concern: "concerns", "doubts", "reparos", "inconveniente". Negated, it is
    /// consent ("no tiene inconveniente"); otherwise a doubt.
    Concern,
    /// Comments and changes: "comments", "observaciones", "modifications".
    /// Negated, it is consent ("sin comentarios"); otherwise proposed edits.
    EditNoun,
    /// "reservation", "reserva", "réserve". Negated, it is consent ("sans
    /// réserve"); otherwise a reservation.
    ReservationNoun,
    /// "adopt", "adoptado", "adoption": negated, an objection ("asks that the text
    /// not be adopted", "que el texto no sea adoptado"); otherwise it says nothing
    /// (a mention of adoption is not consent: "the text adopted in 2019").
    Adoption,

    // --- Not changed by negation ---
    /// Consent idioms that carry their own negation: "rien à signaler", "nada que
    /// agregar", "nothing to add", "sin condiciones".
    AssentIdiom,
    /// "subject to", "siempre que", "sous réserve de", "ad referendum".
    Condition,
    /// "if", "si", "once": a condition when it shares a sentence with consent.
    WeakCondition,
    /// "se reserva", "without prejudice", "déclaration interprétative", "except".
    Reservation,
    /// Proposed edits: "replace", "sustituir", "remplacer", "delete", "we propose".
    Edit,
    /// Qualifiers: "in principle", "however", "aunque", "toutefois".
    Hedge,
    /// Consent in the conditional mood ("could support", "apoyaría"): a hedge,
    /// whose sentence counts as consenting for "if".
    Tentative,
    /// "clarification", "could you": a question without a question mark.
    Question,
    /// "will revert", "en consulta", "nous reviendrons": an answer still to come.
    Deferral,
    /// "received", "acuso recibo", "bien reçu", "noted": says nothing about the text.
    Acknowledgement,
    /// "taken into account", "incorporados", "pris en compte": comments, changes and
    /// concerns in the same sentence are past ones, not new ones.
    Retrospective,
}

/// Every phrase the reader knows, in four parts read in this order. When phrases
/// start at the same word, the longest wins; at equal length, the first listed.
const PHRASES: [&[(&str, Class)]; 4] = [
    grammar::PHRASES,
    assent::PHRASES,
    conditions::PHRASES,
    edits::PHRASES,
];

/// Every phrase the reader knows, in order.
pub(super) fn phrases() -> impl Iterator<Item = &'static (&'static str, Class)> {
    PHRASES.into_iter().flatten()
}
