//! Reads a position from the reply text (never from the quoted notice).
//!
//! Consent is never inferred from doubt. `wording.rs` reads the reply's own words
//! against the phrases of `lexicon.rs` (consent, objection, concern, comments and
//! changes, reservation, condition, proposed edit, hedge, question, deferral,
//! acknowledgement), negation taken into account: a negated objection is consent
//! ("nada que objetar"), negated consent an objection ("cannot support"), and what
//! the reply cannot do is never consent ("not in a position to object" is a doubt).
//!
//! Then one decision, in this order:
//! - the first-line keyword OBJECTION is an objection; COMMENTS is comments;
//! - consent and objection together are a doubt (comments, ambiguous);
//! - an objection is an objection, and "cannot …" without one is a doubt;
//! - a condition or a reservation anywhere makes comments, `conditional`;
//! - a proposed edit (or an editable document attached) makes comments;
//! - consent (the keyword NO OBJECTION, or consent wording) is `no_objection` only
//!   when nothing above is present and it is not qualified by a hedge, a question or
//!   a promise of more to come (those make it a doubt);
//! - anything else is a doubt: comments, ambiguous, for the PPT to review.
//!
//! The reading is linear in the length of the text (see `wording.rs`).

use std::ops::Range;

use crate::domain::consultation::Position;

use super::fold;
use super::parse::Attachment;
use super::wording::Evidence;

/// The position read from one reply, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub position: Position,
    /// Set when the position is a default rather than something the reply says.
    pub ambiguous: bool,
    /// Set when the reply's comments or consent come with a condition or a
    /// reservation ("subject to", "siempre que", "sous réserve de", "se reserva"):
    /// such an answer must not let a text be adopted automatically. Only ever set
    /// with `Position::Comments`.
    pub conditional: bool,
    /// A sentence for `puebla mail inspect` and the PPT: which words decided it.
    pub reason: String,
}

/// First-line keywords (folded), longest first so "no objection" beats "objection".
const KEYWORDS: [(&str, Position); 18] = [
    ("pas d'objections", Position::NoObjection),
    ("pas d'objection", Position::NoObjection),
    ("pas d objection", Position::NoObjection),
    ("aucune objection", Position::NoObjection),
    ("ninguna objecion", Position::NoObjection),
    ("sin objeciones", Position::NoObjection),
    ("sin objecion", Position::NoObjection),
    ("no objections", Position::NoObjection),
    ("no objection", Position::NoObjection),
    ("non objection", Position::NoObjection),
    ("objections", Position::Objection),
    ("objection", Position::Objection),
    ("objeciones", Position::Objection),
    ("objecion", Position::Objection),
    ("commentaires", Position::Comments),
    ("comentarios", Position::Comments),
    ("comments", Position::Comments),
    ("observaciones", Position::Comments),
];

/// Reads the position of a reply from its trimmed text and its attachments.
pub fn read(text: &str, attachments: &[Attachment]) -> Reading {
    let keyword = first_line_keyword(text);
    let found = Evidence::gather(text);
    let said = |span: &Range<usize>| quote(text, span);
    let review = "; recorded as comments for the PPT to review";
    // The condition or reservation that makes comments conditional, described.
    let condition = match (&found.condition, &found.reservation) {
        (Some(span), _) => Some(format!("a condition ({})", said(span))),
        (None, Some(span)) => Some(format!("a reservation ({})", said(span))),
        (None, None) => None,
    };
    let conditional = condition.is_some();
    // An objection, or what the reply says it cannot do ("cannot …" in doubt).
    let against = match (&found.dissent, &found.doubt) {
        (Some(span), _) => Some(("objects", said(span))),
        (None, Some(span)) => Some(("says what it cannot do", said(span))),
        (None, None) => None,
    };

    match &keyword {
        Some((Position::Objection, word)) => {
            return Reading::new(
                Position::Objection,
                false,
                false,
                format!("the first line says \"{word}\""),
            );
        }
        Some((Position::Comments, word)) => {
            let mut reason = format!("the first line says \"{word}\"");
            if let Some((what, words)) = &against {
                reason.push_str(&format!(
                    ", but the reply also {what} ({words}): the PPT should check whether it objects"
                ));
            }
            if let Some(condition) = &condition {
                reason.push_str(&format!("; the comments carry {condition}"));
            }
            return Reading::new(Position::Comments, against.is_some(), conditional, reason);
        }
        _ => {}
    }

    // Consent: the keyword the notice asks for, else consent wording. `and` goes on
    // from it: "the reply consents ("…") but sets a condition (…)".
    let consent = match (&keyword, &found.assent) {
        (Some((_, word)), _) => Some(Consent::Keyword(word.clone())),
        (None, Some(span)) => Some(Consent::Wording(said(span))),
        (None, None) => None,
    };
    let and = |conjunction: &str, rest: &str| match &consent {
        Some(consent) => consent.and(conjunction, rest),
        None => format!("the reply {rest}"),
    };

    if let (Some(_), Some((what, words))) = (&consent, &against) {
        return Reading::new(
            Position::Comments,
            true,
            conditional,
            format!("{}{review}", and("but", &format!("also {what} ({words})"))),
        );
    }
    if let Some(span) = &found.dissent {
        return Reading::new(
            Position::Objection,
            false,
            false,
            format!("the reply objects ({})", said(span)),
        );
    }
    if let Some(span) = &found.doubt {
        return Reading::new(
            Position::Comments,
            true,
            conditional,
            format!(
                "the reply says what it cannot do ({}) without saying that it consents{review}",
                said(span)
            ),
        );
    }
    if let Some(condition) = &condition {
        let reason = match &consent {
            Some(_) => and(
                "but",
                &format!("sets {condition}: conditional comments, not a plain no objection"),
            ),
            None => format!("the reply sets {condition}: conditional comments"),
        };
        return Reading::new(Position::Comments, false, true, reason);
    }
    if let Some(span) = &found.edit {
        let reason = and("and", &format!("proposes edits ({})", said(span)));
        return Reading::new(Position::Comments, false, false, reason);
    }
    if let Some(doc) = attachments.iter().find(|a| is_editable(a)) {
        let reason = and(
            "and",
            &format!(
                "attaches a document ({}), taken as proposed edits",
                doc.name.as_deref().unwrap_or(&doc.content_type)
            ),
        );
        return Reading::new(Position::Comments, false, false, reason);
    }
    // What qualifies consent, or stands in its place: (with consent, without).
    let qualifier = [
        (&found.question, ("asks a question", "asks a question")),
        (&found.hedge, ("qualifies it", "voices a doubt")),
        (
            &found.deferral,
            ("says more is to come", "says more is to come"),
        ),
    ]
    .into_iter()
    .find_map(|(span, what)| span.as_ref().map(|s| (what, said(s))));
    match (&consent, qualifier) {
        (Some(_), Some(((what, _), words))) => {
            let reason = and("but", &format!("{what} ({words})"));
            return Reading::new(Position::Comments, true, false, format!("{reason}{review}"));
        }
        (Some(consent), None) => {
            return Reading::new(Position::NoObjection, false, false, consent.describe());
        }
        (None, Some(((_, what), words))) => {
            return Reading::new(
                Position::Comments,
                true,
                false,
                format!("the reply {what} ({words}) without saying whether it consents{review}"),
            );
        }
        (None, None) => {}
    }
    if let Some(span) = &found.acknowledgement {
        return Reading::new(
            Position::Comments,
            true,
            false,
            format!("only an acknowledgement ({}){review}", said(span)),
        );
    }
    if let Some(doc) = attachments.iter().find(|a| a.is_document()) {
        return Reading::new(
            Position::Comments,
            true,
            false,
            format!(
                "a document is attached ({}), whose content is not read, and the text takes no position{review}",
                doc.name.as_deref().unwrap_or(&doc.content_type)
            ),
        );
    }
    let reason = if text.trim().is_empty() {
        format!("the reply has no text of its own{review}")
    } else {
        format!("no position could be read{review}")
    };
    Reading::new(Position::Comments, true, false, reason)
}

impl Reading {
    fn new(position: Position, ambiguous: bool, conditional: bool, reason: String) -> Reading {
        Reading {
            position,
            ambiguous,
            conditional: conditional && position == Position::Comments,
            reason,
        }
    }
}

/// Where a reply's consent was read.
enum Consent {
    /// The first-line keyword, as written.
    Keyword(String),
    /// Consent wording, quoted.
    Wording(String),
}

impl Consent {
    fn describe(&self) -> String {
        match self {
            Consent::Keyword(word) => format!("the first line says \"{word}\""),
            Consent::Wording(words) => format!("the reply consents ({words})"),
        }
    }

    /// The consent, then what else the reply does.
    fn and(&self, conjunction: &str, rest: &str) -> String {
        match self {
            Consent::Keyword(_) => format!("{}, {conjunction} the reply {rest}", self.describe()),
            Consent::Wording(_) => format!("{} {conjunction} {rest}", self.describe()),
        }
    }
}

/// An attachment the sender edits, read as proposed changes: a word processor's
/// document. A PDF is usually a signed note verbale whose content is not read; it
/// decides nothing by itself.
fn is_editable(a: &Attachment) -> bool {
    let name = a.name.as_deref().unwrap_or("").to_ascii_lowercase();
    a.is_document() && !name.ends_with(".pdf") && a.content_type != "application/pdf"
}

/// Some words of the reply, as written, in quotes, on one line, at most 80 characters.
fn quote(text: &str, span: &Range<usize>) -> String {
    // From the start of the written word: "doesn't object", not "t object".
    let start = text[..span.start]
        .char_indices()
        .rev()
        .take(20)
        .take_while(|(_, c)| !c.is_whitespace())
        .last()
        .map_or(span.start, |(i, _)| i);
    let words = text.get(start..span.end).unwrap_or_default();
    let mut out = String::with_capacity(words.len().min(90) + 2);
    out.push('"');
    for (n, word) in words.split_whitespace().enumerate() {
        if out.len() + word.len() > 80 {
            out.push_str(" …");
            break;
        }
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.push('"');
    out
}

/// Greetings skipped when looking for the first-line keyword.
fn is_greeting(folded: &str) -> bool {
    const GREETINGS: [&str; 20] = [
        "dear",
        "hello",
        "hi ",
        "good morning",
        "good afternoon",
        "estimad",
        "apreciad",
        "distinguid",
        "hola",
        "buenos dias",
        "buenas tardes",
        "senor",
        "senora",
        "cher",
        "chere",
        "bonjour",
        "madame",
        "monsieur",
        "mesdames",
        "a la presidencia",
    ];
    GREETINGS.iter().any(|g| folded.starts_with(g)) && folded.len() < 80
}

/// The keyword on the first line of the reply (after a greeting, if any): alone,
/// followed by punctuation, or written in capitals.
fn first_line_keyword(text: &str) -> Option<(Position, String)> {
    let (_, line) = keyword_line(text)?;
    let (position, len) = keyword_at(line)?;
    let line = line.trim_start_matches(|c: char| !c.is_alphanumeric());
    Some((position, line.chars().take(len).collect()))
}

/// The line that may hold the keyword (the first non-empty one, or the one after a
/// greeting), with its index among the text's lines.
fn keyword_line(text: &str) -> Option<(usize, &str)> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let first = lines.next()?;
    if is_greeting(&fold(first.1)) {
        return lines.next();
    }
    Some(first)
}

/// The position a line's leading keyword gives, and the keyword's length in
/// characters (after any leading punctuation).
fn keyword_at(line: &str) -> Option<(Position, usize)> {
    let line = line.trim_start_matches(|c: char| !c.is_alphanumeric());
    let folded = fold(line).replace('-', " ");
    for (kw, position) in KEYWORDS {
        let Some(rest) = folded.strip_prefix(kw) else {
            continue;
        };
        let next = rest.chars().next();
        // French puts a space before a colon: "COMMENTAIRES :".
        let alone_or_punctuated = match rest.trim_start().chars().next() {
            None => true,
            Some(c) => !c.is_alphanumeric(),
        };
        let head: String = line.chars().take(kw.chars().count()).collect();
        let capitals = head.chars().any(char::is_alphabetic)
            && !head.chars().any(char::is_lowercase)
            && !next.is_some_and(char::is_alphanumeric);
        if alone_or_punctuated || capitals {
            return Some((position, kw.chars().count()));
        }
    }
    None
}

/// The reply without the first-line keyword that notices ask for ("SIN OBJECIÓN",
/// "COMMENTS:"), so that a quote of it starts with the sender's own words. A line
/// that held only the keyword is dropped; any other text is kept as written.
pub fn without_keyword(text: &str) -> String {
    let Some((index, line)) = keyword_line(text) else {
        return text.to_string();
    };
    let Some((_, len)) = keyword_at(line) else {
        return text.to_string();
    };
    let rest: String = line
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .chars()
        .skip(len)
        .collect();
    let rest = rest.trim_start_matches(|c: char| c.is_whitespace() || ":.,;-–—!".contains(c));
    let mut out: Vec<&str> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        match (i == index, rest.is_empty()) {
            (true, true) => {}
            (true, false) => out.push(rest),
            (false, _) => out.push(l),
        }
    }
    out.join("\n").trim().to_string()
}

#[cfg(test)]
#[path = "position_tests.rs"]
mod tests;
