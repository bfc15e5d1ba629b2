//! Reads a position from the reply text (never from the quoted notice).
//!
//! Consent is never inferred from doubt. The reply's own words are split into
//! words and sentences once and read left to right against the phrases of
//! `lexicon.rs`, each of a class: consent ("support", "apoyamos", "se joint au
//! consensus"), objection ("object", "rompe el silencio"), concern, comments and
//! changes, reservation, condition, proposed edit, hedge, question, deferral,
//! acknowledgement. A negation ("no", "not", "sin", "ne … pas", "cannot", "not in a
//! position to", "no está en condiciones de") reaches the first such word within a
//! few words of the same clause and turns it around: a negated objection is consent
//! ("nada que objetar"), negated consent an objection ("cannot support"). What the
//! reply cannot do is never consent ("not in a position to object" is a doubt).
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
//! The reading is linear in the length of the text: one pass to split it, one pass
//! over the words that tries the phrases starting at each word (a bounded number),
//! and a pass over what was found.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::LazyLock;

use crate::domain::consultation::Position;

use super::fold;
use super::lexicon::{Class, Negation, PHRASES};
use super::parse::Attachment;

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

/// What the reply's words say, each as the span of the first words found that say
/// it (byte offsets in the reply text).
#[derive(Debug, Default)]
struct Evidence {
    assent: Option<Range<usize>>,
    dissent: Option<Range<usize>>,
    /// "cannot …", "not in a position to object": a refusal or an inability that is
    /// not a plain objection.
    doubt: Option<Range<usize>>,
    condition: Option<Range<usize>>,
    reservation: Option<Range<usize>>,
    edit: Option<Range<usize>>,
    hedge: Option<Range<usize>>,
    question: Option<Range<usize>>,
    deferral: Option<Range<usize>>,
    acknowledgement: Option<Range<usize>>,
}

/// What one phrase (with the negation that reached it) contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Assent,
    Dissent,
    Doubt,
    Condition,
    /// Counts as a condition only in a sentence that consents.
    WeakCondition,
    Reservation,
    Edit,
    /// Counts as an edit unless its sentence looks back ("taken into account") or
    /// forward ("will follow").
    EditNoun,
    Hedge,
    Question,
    Deferral,
    Acknowledgement,
    Retrospective,
}

impl Evidence {
    fn gather(text: &str) -> Evidence {
        let tokens = tokenize(text);
        let mut scanner = Scanner {
            tokens: &tokens,
            found: Vec::new(),
            scope: None,
            particle_until: None,
            or_reopens: None,
            ability_ends: None,
        };
        scanner.run();

        // Sentence-bound signals are settled once every sentence's content is known.
        // Signals come in text order, so the sentence lists are sorted.
        let sentences_with = |want: &[Signal]| -> Vec<u32> {
            let mut v: Vec<u32> = scanner
                .found
                .iter()
                .filter(|f| want.contains(&f.signal))
                .map(|f| f.sentence)
                .collect();
            v.dedup();
            v
        };
        let consenting = sentences_with(&[Signal::Assent]);
        let looking_away = sentences_with(&[Signal::Retrospective, Signal::Deferral]);

        let mut e = Evidence::default();
        for f in &scanner.found {
            let slot = match f.signal {
                Signal::Assent => &mut e.assent,
                Signal::Dissent => &mut e.dissent,
                Signal::Doubt => &mut e.doubt,
                Signal::Condition => &mut e.condition,
                Signal::WeakCondition if consenting.binary_search(&f.sentence).is_ok() => {
                    &mut e.condition
                }
                Signal::WeakCondition => continue,
                Signal::Reservation => &mut e.reservation,
                Signal::Edit => &mut e.edit,
                Signal::EditNoun if looking_away.binary_search(&f.sentence).is_err() => &mut e.edit,
                Signal::EditNoun => continue,
                Signal::Hedge => &mut e.hedge,
                Signal::Question => &mut e.question,
                Signal::Deferral => &mut e.deferral,
                Signal::Acknowledgement => &mut e.acknowledgement,
                Signal::Retrospective => continue,
            };
            // A question is best quoted up to its question mark.
            let better = f.signal == Signal::Question
                && text[f.span.clone()].ends_with('?')
                && slot
                    .as_ref()
                    .is_some_and(|s| !text[s.clone()].ends_with('?'));
            if slot.is_none() || better {
                *slot = Some(f.span.clone());
            }
        }
        e
    }
}

// ---------------------------------------------------------------------- words

#[derive(Debug)]
enum Token {
    Word {
        /// Byte offsets in the reply text.
        span: Range<usize>,
        /// The word folded (lowercase, no accents); "sí" (yes) keeps its accent so
        /// that it is not "si" (if).
        folded: String,
        numeric: bool,
        sentence: u32,
    },
    /// A comma, colon, parenthesis or dash: ends a negation's reach.
    Clause,
    /// A full stop, semicolon, "!", "?" or a blank line ends sentence `sentence`. A
    /// question carries its span ("¿…?", or the sentence up to its "?").
    Sentence {
        sentence: u32,
        question: Option<Range<usize>>,
    },
}

/// Splits the reply into words and clause and sentence breaks, in one pass. A single
/// line break is a space (mail clients wrap lines mid-sentence); a blank line ends a
/// sentence. Apostrophes and hyphens split words ("n'a", "non-objection").
fn tokenize(text: &str) -> Vec<Token> {
    let mut t = Tokenizer {
        tokens: Vec::new(),
        sentence: 0,
        sentence_start: None,
        open_question: None,
    };
    let mut word_start: Option<usize> = None;
    let mut newlines = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c == '\n' {
            newlines += 1;
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if newlines >= 2 {
            t.end_sentence(at, None);
        }
        newlines = 0;
        if c.is_alphanumeric() {
            word_start.get_or_insert(at);
            t.sentence_start.get_or_insert(at);
            if chars.peek().is_some_and(|(_, n)| n.is_alphanumeric()) {
                continue;
            }
            let start = word_start.take().unwrap_or(at);
            let span = start..at + c.len_utf8();
            let word = &text[span.clone()];
            let folded = if word.to_lowercase() == "sí" {
                "sí".to_string()
            } else {
                fold(word)
            };
            t.tokens.push(Token::Word {
                numeric: word.starts_with(|d: char| d.is_ascii_digit()),
                span,
                folded,
                sentence: t.sentence,
            });
            continue;
        }
        match c {
            '?' => {
                // Not in a URL's query ("?id=") or a word ("Panam?"): then it is
                // followed by a letter or a sign.
                let ends = chars
                    .peek()
                    .is_none_or(|(_, n)| n.is_whitespace() || "\"'”»)?!".contains(*n));
                if ends {
                    let from = t.open_question.or(t.sentence_start).unwrap_or(at);
                    t.end_sentence(at + 1, Some(from..at + 1));
                }
            }
            '¿' => {
                t.open_question.get_or_insert(at);
                t.tokens.push(Token::Clause);
            }
            '.' => {
                // "3.2" and "1.000" are numbers, not sentence ends.
                let in_number = text[..at].ends_with(|d: char| d.is_ascii_digit())
                    && chars.peek().is_some_and(|(_, n)| n.is_ascii_digit());
                if !in_number {
                    t.end_sentence(at, None);
                }
            }
            '!' | ';' => t.end_sentence(at, None),
            ',' | ':' | '(' | ')' | '[' | ']' | '–' | '—' => t.tokens.push(Token::Clause),
            _ => {}
        }
    }
    t.end_sentence(text.len(), None);
    t.tokens
}

struct Tokenizer {
    tokens: Vec<Token>,
    sentence: u32,
    sentence_start: Option<usize>,
    /// A "¿" waiting for its "?".
    open_question: Option<usize>,
}

impl Tokenizer {
    /// Ends the current sentence at byte `at`. A "¿" left open still asks something:
    /// its question runs to the end of the sentence.
    fn end_sentence(&mut self, at: usize, question: Option<Range<usize>>) {
        let question = question.or_else(|| self.open_question.map(|from| from..at));
        self.open_question = None;
        if self.sentence_start.is_none() && question.is_none() {
            // Nothing since the last break: a run of "..." or blank lines.
            return;
        }
        self.tokens.push(Token::Sentence {
            sentence: self.sentence,
            question,
        });
        self.sentence += 1;
        self.sentence_start = None;
    }
}

// ---------------------------------------------------------------------- phrases

#[derive(Debug)]
enum Pattern {
    Exact(&'static str),
    Stem(&'static str),
}

impl Pattern {
    fn parse(word: &'static str) -> Pattern {
        match word.strip_suffix('*') {
            Some(stem) => Pattern::Stem(stem),
            None => Pattern::Exact(word),
        }
    }

    fn matches(&self, word: &str) -> bool {
        match self {
            Pattern::Exact(w) => *w == word,
            Pattern::Stem(s) => word.starts_with(s),
        }
    }
}

struct Entry {
    words: Vec<Pattern>,
    class: Class,
}

/// The lexicon by first word: exact words in one map, stems in another keyed by
/// their first `STEM_KEY` characters, each list longest phrase first.
struct Lexicon {
    entries: Vec<Entry>,
    exact: HashMap<&'static str, Vec<usize>>,
    stems: HashMap<&'static str, Vec<usize>>,
}

const STEM_KEY: usize = 4;

static LEXICON: LazyLock<Lexicon> = LazyLock::new(|| {
    let entries: Vec<Entry> = PHRASES
        .iter()
        .map(|(phrase, class)| Entry {
            words: phrase.split(' ').map(Pattern::parse).collect(),
            class: *class,
        })
        .collect();
    let mut exact: HashMap<&'static str, Vec<usize>> = HashMap::new();
    let mut stems: HashMap<&'static str, Vec<usize>> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        match entry.words[0] {
            Pattern::Exact(w) => exact.entry(w).or_default().push(i),
            Pattern::Stem(s) => stems.entry(&s[..STEM_KEY]).or_default().push(i),
        }
    }
    for list in exact.values_mut().chain(stems.values_mut()) {
        // Stable: at equal length the phrase listed first wins.
        list.sort_by_key(|&i| std::cmp::Reverse(entries[i].words.len()));
    }
    Lexicon {
        entries,
        exact,
        stems,
    }
});

impl Lexicon {
    /// The longest phrase starting at `tokens[at]` (a word), as (class, words).
    fn longest_at(&self, tokens: &[Token], at: usize) -> Option<(Class, usize)> {
        let Token::Word { folded, .. } = &tokens[at] else {
            return None;
        };
        let key = folded
            .char_indices()
            .nth(STEM_KEY)
            .map(|(i, _)| &folded[..i])
            .filter(|k| k.len() == STEM_KEY);
        let fits = |&&i: &&usize| self.fits(&self.entries[i], tokens, at);
        let exact = self
            .exact
            .get(folded.as_str())
            .and_then(|l| l.iter().find(fits));
        let stem = key
            .and_then(|k| self.stems.get(k))
            .and_then(|l| l.iter().find(fits));
        let best = match (exact, stem) {
            (Some(&a), Some(&b)) => {
                if self.entries[b].words.len() > self.entries[a].words.len() {
                    b
                } else {
                    a
                }
            }
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => return None,
        };
        let entry = &self.entries[best];
        Some((entry.class, entry.words.len()))
    }

    /// Whether the phrase's words are the words from `at` on, with no break between.
    fn fits(&self, entry: &Entry, tokens: &[Token], at: usize) -> bool {
        entry.words.iter().enumerate().all(|(k, pattern)| {
            matches!(tokens.get(at + k), Some(Token::Word { folded, .. }) if pattern.matches(folded))
        })
    }
}

// ---------------------------------------------------------------------- negation

/// A negation waiting for the word it applies to.
#[derive(Debug, Clone)]
struct Scope {
    kind: Negation,
    /// Where the negation starts in the text, for the reason.
    from: usize,
    /// The token of the latest negator or ability word: the reach counts from it.
    last: usize,
    /// The negation is a French "ne" (its "pas" comes after the verb).
    has_ne: bool,
    /// Only "ne" so far: a "que" makes it "only" ("ne peut que se féliciter").
    ne_only: bool,
}

/// How many words a negation reaches: far for consent (negated consent is an
/// objection, the cautious reading), near for the rest (a negated objection is
/// consent, so it must be close: "no objection", "n'a pas d'objection").
fn reach(class: Class) -> usize {
    match class {
        Class::Assent => 8,
        _ => 5,
    }
}

struct Found {
    signal: Signal,
    span: Range<usize>,
    sentence: u32,
}

struct Scanner<'a> {
    tokens: &'a [Token],
    found: Vec<Found>,
    scope: Option<Scope>,
    /// After a "ne" is used, the "pas" that closes it up to this token is skipped.
    particle_until: Option<usize>,
    /// After a negation is used, an "or" at this token carries it on.
    or_reopens: Option<(usize, Scope)>,
    /// The token after the latest ability word: a negator there is an inability
    /// ("can't", "could not").
    ability_ends: Option<usize>,
}

impl Scanner<'_> {
    fn run(&mut self) {
        let tokens = self.tokens;
        let mut at = 0;
        while at < tokens.len() {
            let (span, sentence, numeric_next) = match &tokens[at] {
                Token::Word { span, sentence, .. } => (
                    span.clone(),
                    *sentence,
                    matches!(tokens.get(at + 1), Some(Token::Word { numeric: true, .. })),
                ),
                Token::Clause => {
                    self.close_scope();
                    self.or_reopens = None;
                    at += 1;
                    continue;
                }
                Token::Sentence { sentence, question } => {
                    self.close_scope();
                    self.or_reopens = None;
                    self.particle_until = None;
                    if let Some(q) = question {
                        self.push(Signal::Question, q.clone(), *sentence);
                    }
                    at += 1;
                    continue;
                }
            };
            // A negation that reached nothing within the longest reach lapses.
            if self
                .scope
                .as_ref()
                .is_some_and(|s| at - s.last > reach(Class::Assent))
            {
                self.close_scope();
            }
            let Some((class, len)) = LEXICON.longest_at(tokens, at) else {
                if self.scope.as_ref().is_some_and(|s| s.ne_only)
                    && matches!(&tokens[at], Token::Word { folded, .. } if folded == "que" || folded == "qu")
                {
                    self.scope = None;
                }
                at += 1;
                continue;
            };
            let last = at + len - 1;
            let span = span.start..self.word_span(last).end;
            self.step(class, at, last, span, sentence, numeric_next);
            at = last + 1;
        }
        self.close_scope();
    }

    fn step(
        &mut self,
        class: Class,
        at: usize,
        last: usize,
        span: Range<usize>,
        sentence: u32,
        numeric_next: bool,
    ) {
        let or_reopens = self.or_reopens.take();
        match class {
            // "No. 45", "n° 3": a number, not a negation.
            Class::Negator(_) | Class::Ne if numeric_next => {}
            Class::Particle if self.particle_until.is_some_and(|until| at <= until) => {
                self.particle_until = None;
            }
            Class::Negator(Negation::Withdrawal) if self.scope.is_some() => {
                // "does not withdraw its objection": the two negations cancel.
                self.scope = None;
            }
            Class::Negator(kind) => self.negate(kind, at, last, span, false),
            Class::Particle => self.negate(Negation::Plain, at, last, span, false),
            Class::Ne => self.negate(Negation::Plain, at, last, span, true),
            Class::Ability => {
                if let Some(scope) = &mut self.scope {
                    if scope.kind == Negation::Plain {
                        scope.kind = Negation::Inability;
                    }
                    scope.last = last;
                }
                self.ability_ends = Some(last + 1);
            }
            Class::Or => {
                if let Some((expected, scope)) = or_reopens {
                    if expected == at && self.scope.is_none() {
                        self.scope = Some(Scope { last, ..scope });
                    }
                }
            }
            Class::Terminator => self.close_scope(),
            Class::Neutral => {}
            Class::Assent
            | Class::Dissent
            | Class::Concern
            | Class::EditNoun
            | Class::ReservationNoun => {
                let negation = match self.scope.take() {
                    Some(scope) if at - scope.last <= reach(class) => Some(scope),
                    other => {
                        self.scope = other;
                        self.close_scope();
                        None
                    }
                };
                let signal = resolve(class, negation.as_ref().map(|s| s.kind));
                let span = match &negation {
                    Some(scope) => scope.from..span.end,
                    None => span,
                };
                self.push(signal, span, sentence);
                if let Some(scope) = negation {
                    if scope.has_ne {
                        self.particle_until = Some(last + 3);
                    }
                    self.or_reopens = Some((last + 1, scope));
                }
            }
            Class::AssentIdiom => self.push(Signal::Assent, span, sentence),
            Class::Condition => self.push(Signal::Condition, span, sentence),
            Class::WeakCondition => self.push(Signal::WeakCondition, span, sentence),
            Class::Reservation => self.push(Signal::Reservation, span, sentence),
            Class::Edit => self.push(Signal::Edit, span, sentence),
            Class::Hedge => {
                self.close_scope();
                self.push(Signal::Hedge, span, sentence);
            }
            Class::Question => self.push(Signal::Question, span, sentence),
            Class::Deferral => self.push(Signal::Deferral, span, sentence),
            Class::Acknowledgement => self.push(Signal::Acknowledgement, span, sentence),
            Class::Retrospective => self.push(Signal::Retrospective, span, sentence),
        }
    }

    /// Opens a negation, or extends the open one ("ne … pas", "no … ninguna").
    fn negate(&mut self, kind: Negation, at: usize, last: usize, span: Range<usize>, ne: bool) {
        match &mut self.scope {
            Some(scope) => {
                scope.last = last;
                scope.ne_only &= ne;
                scope.has_ne |= ne;
                if kind == Negation::Inability && scope.kind == Negation::Plain {
                    scope.kind = Negation::Inability;
                }
            }
            None => {
                let kind = if kind == Negation::Plain && self.ability_ends == Some(at) {
                    Negation::Inability
                } else {
                    kind
                };
                self.scope = Some(Scope {
                    kind,
                    from: span.start,
                    last,
                    has_ne: ne,
                    ne_only: ne,
                });
            }
        }
    }

    /// Ends the open negation. One that reached nothing still says something when it
    /// was an inability ("we are not in a position to …": a doubt) or a withdrawal
    /// ("retirer le paragraphe 3": an edit).
    fn close_scope(&mut self) {
        let Some(scope) = self.scope.take() else {
            return;
        };
        let signal = match scope.kind {
            Negation::Plain => return,
            Negation::Inability => Signal::Doubt,
            Negation::Withdrawal => Signal::Edit,
        };
        let span = scope.from..self.word_span(scope.last).end;
        let sentence = match &self.tokens[scope.last] {
            Token::Word { sentence, .. } => *sentence,
            _ => 0,
        };
        self.push(signal, span, sentence);
    }

    fn push(&mut self, signal: Signal, span: Range<usize>, sentence: u32) {
        self.found.push(Found {
            signal,
            span,
            sentence,
        });
    }

    fn word_span(&self, at: usize) -> Range<usize> {
        match &self.tokens[at] {
            Token::Word { span, .. } => span.clone(),
            _ => 0..0,
        }
    }
}

/// What a phrase of a negation-sensitive class says, given the negation that
/// reached it.
fn resolve(class: Class, negation: Option<Negation>) -> Signal {
    use Negation::*;
    match (class, negation) {
        (Class::Assent, None) => Signal::Assent,
        (Class::Assent, Some(_)) => Signal::Dissent,
        (_, Some(Inability)) => Signal::Doubt,
        (Class::Dissent, None) => Signal::Dissent,
        (Class::Concern, None) => Signal::Hedge,
        (Class::EditNoun, None) => Signal::EditNoun,
        (Class::ReservationNoun, None) => Signal::Reservation,
        (_, Some(Plain | Withdrawal)) => Signal::Assent,
        // Only the classes above are read through negation.
        (_, None) => Signal::Hedge,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a reply must read as: (position, ambiguous, conditional).
    type Want = (Position, bool, bool);
    const NO_OBJECTION: Want = (Position::NoObjection, false, false);
    const OBJECTION: Want = (Position::Objection, false, false);
    const COMMENTS: Want = (Position::Comments, false, false);
    const CONDITIONAL: Want = (Position::Comments, false, true);
    const DOUBT: Want = (Position::Comments, true, false);

    fn got(text: &str) -> Want {
        let r = read(text, &[]);
        (r.position, r.ambiguous, r.conditional)
    }

    /// Checks a table; on failure names the text, what came out and the reason.
    fn check(want: Want, texts: &[&str]) {
        for text in texts {
            let r = read(text, &[]);
            assert_eq!(
                (r.position, r.ambiguous, r.conditional),
                want,
                "{text:?} was read as {:?} ({})",
                (r.position, r.ambiguous, r.conditional),
                r.reason
            );
        }
    }

    #[test]
    fn negated_or_impossible_support_is_an_objection() {
        check(
            OBJECTION,
            &[
                // en
                "We are not in a position to support the draft.",
                "The United States cannot support paragraph 4.",
                "We can't support this text.",
                "Unfortunately, we are unable to join the consensus.",
                "We do not agree with paragraph 4.",
                "Canada is not prepared to accept the annex.",
                "It is difficult for us to accept paragraph 2.",
                "We cannot go along with the new wording.",
                "Belize withdraws its support for the draft.",
                // es
                "No está en condiciones de acompañar el proyecto.",
                "Lamentablemente, Nicaragua no puede acompañar el consenso.",
                "Guatemala no puede apoyar el proyecto en su forma actual.",
                "Honduras no puede sumarse al consenso.",
                "No estamos de acuerdo con el párrafo 2.",
                "Nicaragua no está conforme con el párrafo 3.",
                "Honduras retira su apoyo al proyecto.",
                // fr
                "Le Canada n'est pas en mesure de se joindre au consensus.",
                "Le gouvernement du Canada ne peut pas appuyer le paragraphe 5.",
                "Nous ne sommes pas en mesure d'appuyer ce texte.",
                "Nous ne pouvons ni appuyer ni accepter ce texte.",
                "Le Canada n'appuie pas le projet.",
                "Nous ne sommes pas d'accord.",
            ],
        );
    }

    #[test]
    fn objection_wording_is_an_objection() {
        check(
            OBJECTION,
            &[
                "We object to the new wording.",
                "Panama objects.",
                "The United States breaks silence.",
                "We disagree with paragraph 2.",
                "Paragraph 4 is unacceptable.",
                "Objetamos el párrafo 5.",
                "Guatemala rompe el silencio.",
                "El Salvador rechaza el texto.",
                "El párrafo 3 es inaceptable.",
                "Nous nous opposons au paragraphe 3.",
                "Le Canada rompt le silence.",
                "Nous rejetons le paragraphe 3.",
            ],
        );
    }

    #[test]
    fn negated_objection_and_consent_idioms_are_no_objection() {
        check(
            NO_OBJECTION,
            &[
                // en
                "We have no objection to the declaration.",
                "Mexico does not object to the draft.",
                "Panama doesn't object.",
                "We do not have any objections.",
                "The United States does not break silence.",
                "The United States will not stand in the way of consensus.",
                "We support the text.",
                "Costa Rica concurs.",
                "Agreed.",
                "Mexico joins the consensus.",
                "We can go along with the text.",
                "We support the text without reservation.",
                "Belize has no further comments.",
                "Nothing to add.",
                "Belize withdraws its objection and joins the consensus.",
                "Canada lifts its reservation.",
                "The Embassy of Belize presents its compliments to the Presidency Pro Tempore \
                 and has the honour to inform that the Government of Belize has no objection.",
                // es
                "No tenemos objeciones.",
                "El Gobierno de Honduras no tiene objeción al texto.",
                "Sin objeción por parte de Guatemala.",
                "Nada que objetar.",
                "Honduras no tiene inconveniente.",
                "No vemos inconveniente alguno.",
                "Honduras no se opone a la adopción del texto.",
                "Apoyamos la declaración.",
                "Estamos de acuerdo.",
                "Aprobado por Panamá.",
                "Panamá se suma al consenso.",
                "Apoyamos el proyecto sin cambios.",
                "Apoyamos el texto sin reservas.",
                "Sin comentarios.",
                "No tenemos comentarios que agregar.",
                "Nada que agregar.",
                "La Embajada de Costa Rica tiene a bien informar que el Gobierno de Costa Rica \
                 no formula observaciones al proyecto.",
                "De acuerdo con lo establecido en el procedimiento, Honduras no tiene objeción.",
                "Sí, estamos de acuerdo.",
                // fr
                "Nous n'avons pas d'objection.",
                "Le Canada n’a aucune objection.",
                "Aucune objection.",
                "Le Canada ne s'oppose pas à l'adoption du projet.",
                "Nous ne voyons pas d'objection.",
                "Rien à signaler.",
                "Rien à ajouter de notre part.",
                "Nous sommes d'accord avec le texte.",
                "Le Canada se joint au consensus.",
                "Le Canada appuie le projet sans réserve.",
                "Nous n'avons pas de commentaires à formuler.",
                "Le Canada lève sa réserve sur le paragraphe 3.",
                "Le Canada ne peut que se féliciter de ce texte et l'appuie.",
            ],
        );
    }

    #[test]
    fn a_condition_makes_conditional_comments() {
        check(
            CONDITIONAL,
            &[
                // en
                "No objection, subject to the deletion of paragraph 3.",
                "NO OBJECTION, subject to confirmation from capital.",
                "We support the text provided that paragraph 3 is kept.",
                "Guatemala does not object, provided the Spanish version is aligned.",
                "We can join the consensus on condition that the annex is removed.",
                "No objection ad referendum.",
                "We support the text if paragraph 3 is deleted.",
                "We agree as long as the deadline is kept.",
                // es
                "Sin objeción, siempre que se mantenga el párrafo 4.",
                "SIN OBJECIÓN\n\nGuatemala acompaña siempre y cuando se incluya el párrafo 3.",
                "Honduras apoya el texto a condición de que se elimine el párrafo 2.",
                "Apoyamos, sujeto a la aprobación de la Cancillería.",
                "Apoyamos, si se elimina el párrafo 3.",
                "No tenemos objeción en el entendido de que el texto no es vinculante.",
                // fr
                "Pas d'objection, sous réserve de la suppression du paragraphe 2.",
                "Le Canada appuie le texte à condition que le paragraphe 3 soit supprimé.",
                "Nous n'avons pas d'objection, étant entendu que le texte n'est pas contraignant.",
            ],
        );
    }

    #[test]
    fn a_reservation_makes_conditional_comments() {
        check(
            CONDITIONAL,
            &[
                "Without prejudice to its national legislation, Canada joins the consensus.",
                "Canada dissociates itself from paragraph 7 but joins the consensus.",
                "Nicaragua reserves its position on paragraph 5.",
                "We join the consensus and will make an interpretive statement.",
                "Honduras has no objection to the text but not to paragraph 4.",
                "No objection, except for paragraph 6.",
                "El Salvador se reserva el derecho de presentar una declaración interpretativa.",
                "Sin perjuicio de su legislación nacional, México acompaña el consenso.",
                "Honduras tiene reservas sobre el párrafo 2.",
                "Apoyamos el texto, salvo el párrafo 3.",
                "Le Canada se joint au consensus sans préjudice de sa position nationale.",
                "Le Canada se dissocie du paragraphe 7.",
                "Nous appuyons le texte avec réserves.",
            ],
        );
    }

    #[test]
    fn a_proposed_edit_is_comments_not_conditional() {
        check(
            COMMENTS,
            &[
                // en
                "Please replace 'shall' with 'should' in paragraph 2.",
                "We would prefer to delete paragraph 3.",
                "Please insert 'regular' before 'migration'.",
                "Add a reference to children in paragraph 4.",
                "We propose a new paragraph on data protection.",
                "No objection; we suggest adding a reference to children.",
                "COMMENTS\n\nParagraph 3: replace \"shall\" by \"should\".",
                // es
                "Sugerimos sustituir «migrantes» por «personas migrantes».",
                "Proponemos eliminar el párrafo 3.",
                "Sin objeción. Sin embargo, sugerimos revisar la traducción.",
                "Comentarios: sugerimos cambiar el párrafo 2.",
                "Agradeceríamos que se incluya una referencia a la niñez.",
                // fr
                "Nous proposons de remplacer « doit » par « devrait ».",
                "Nous souhaiterions que le paragraphe 3 soit supprimé.",
                "Il conviendrait de préciser le paragraphe 3.",
                "Nous n'avons pas d'objection. Toutefois, il conviendrait d'ajouter une référence.",
            ],
        );
    }

    #[test]
    fn what_the_reader_is_not_sure_of_is_ambiguous() {
        check(
            DOUBT,
            &[
                // questions
                "Could you please send the Spanish version of the annex?",
                "No objection. Is the deadline Friday?",
                "¿Podrían enviar la versión en inglés?",
                "Pourriez-vous nous envoyer la version anglaise ?",
                // acknowledgements and deferrals
                "Acuso recibo.",
                "Received, will revert.",
                "Bien reçu, merci.",
                "Noted, thanks.",
                "OK",
                "We will send our comments by Friday.",
                "No objection; comments to follow.",
                "Estamos consultando con la capital.",
                // hedges and concerns
                "We support the text in principle but need to consult with capital.",
                "We have concerns about paragraph 3.",
                "Honduras se abstiene.",
                "Apoyamos en principio.",
                "Nous appuyons le texte, mais nous avons des doutes sur le paragraphe 3.",
                // mixed signals
                "We support the text. However, paragraph 4 is not acceptable to us.",
                "We have no objections to paragraphs 1-3, but cannot accept paragraph 4.",
                "NO OBJECTION.\nWe cannot support any further delay, please adopt it.",
                // what the reply cannot do, without an objection
                "We are not in a position to object.",
                "No estamos en condiciones de responder en el plazo.",
                "Le Canada n'est pas en mesure de répondre.",
                // nothing
                "",
                "See you in Tegucigalpa.",
                "Yes",
                "Gracias por su apoyo. Quedamos atentos.",
            ],
        );
    }

    #[test]
    fn the_first_line_keyword_decides_unless_the_text_qualifies_it() {
        check(
            OBJECTION,
            &[
                "OBJECTION\n\nWe have no objection to paragraphs 1 to 3, but not to 4.",
                "Estimados colegas:\nOBJECIÓN: el párrafo 3 no es aceptable.",
                "OBJECTION\nunless paragraph 4 is deleted.",
            ],
        );
        check(
            NO_OBJECTION,
            &[
                "Sin objecion",
                "PAS D’OBJECTION",
                "Non-objection.",
                "SIN OBJECIÓN\nHonduras agradece a la PPT.",
            ],
        );
        check(
            COMMENTS,
            &[
                "Commentaires :\nNous n'avons pas d'objection au fond.",
                "Comentarios: sugerimos cambiar el párrafo 2.",
            ],
        );
        // The sender chose COMMENTS, but wrote an objection: the PPT must look.
        assert_eq!(
            got("COMMENTS\nWe cannot support paragraph 4."),
            (Position::Comments, true, false)
        );
        assert_eq!(
            got("COMENTARIOS\nApoyamos siempre que se mantenga el párrafo 3."),
            CONDITIONAL
        );
    }

    #[test]
    fn the_keyword_is_taken_out_of_a_quote() {
        assert_eq!(
            without_keyword("SIN OBJECIÓN\nHonduras agradece a la PPT."),
            "Honduras agradece a la PPT."
        );
        assert_eq!(
            without_keyword("Estimados:\n\nCOMMENTAIRES : voir ci-dessous.\nMerci"),
            "Estimados:\n\nvoir ci-dessous.\nMerci"
        );
        assert_eq!(without_keyword("NO OBJECTION."), "");
        assert_eq!(
            without_keyword("Objection withdrawn; we now support it."),
            "Objection withdrawn; we now support it."
        );
        assert_eq!(
            without_keyword("No tenemos objeciones."),
            "No tenemos objeciones."
        );
    }

    #[test]
    fn a_lowercase_sentence_is_not_a_keyword() {
        assert_eq!(
            first_line_keyword("Objection withdrawn; we now support it."),
            None
        );
        assert_eq!(
            first_line_keyword("Comments from the PPT were taken into account."),
            None
        );
        assert!(first_line_keyword("COMMENTS below").is_some());
    }

    #[test]
    fn formulas_that_name_consent_words_say_nothing() {
        // Thanks for someone's support are not support of the text.
        check(
            DOUBT,
            &[
                "Thank you for your support.",
                "Gracias por su apoyo.",
                "Merci pour votre appui.",
            ],
        );
        // "de acuerdo con lo ..." is "according to", not "we agree".
        check(
            OBJECTION,
            &["De acuerdo con las instrucciones recibidas, Nicaragua no puede acompañar el texto."],
        );
        // Courtesy around a plain answer leaves it plain.
        check(
            NO_OBJECTION,
            &[
                "We would like to thank the PPT for its work and confirm that we have no objection.",
                "No objection. Please do not hesitate to contact me if you have any questions.",
                "Sin otro particular, Guatemala no tiene objeciones.",
                "Honduras apoya el proyecto. Quedo a sus órdenes para cualquier duda.",
                "Nota No. 45: Honduras apoya el proyecto.",
            ],
        );
        // Comments that were taken into account are not new comments.
        check(
            NO_OBJECTION,
            &[
                "We thank the PPT for incorporating our comments and join the consensus.",
                "Agradecemos a la PPT por haber incorporado nuestros comentarios; apoyamos el texto.",
                "Le Canada remercie la PPT d'avoir pris en compte ses commentaires et appuie le texte.",
            ],
        );
    }

    #[test]
    fn a_wrapped_line_does_not_break_a_negation() {
        assert_eq!(
            got("Le gouvernement du Canada ne peut pas\nappuyer le paragraphe 5."),
            OBJECTION
        );
        assert_eq!(got("Honduras no tiene\nobjeciones."), NO_OBJECTION);
        // A blank line ends the sentence: "if" below does not qualify the consent.
        assert_eq!(
            got("We support the text.\n\nIf you need anything, write to us"),
            NO_OBJECTION
        );
    }

    #[test]
    fn a_question_mark_in_a_link_or_a_number_is_no_question() {
        assert_eq!(
            got("We support the text (see https://example.org/page?id=3)."),
            NO_OBJECTION
        );
        assert_eq!(got("We support version 3.2 of the text."), NO_OBJECTION);
    }

    #[test]
    fn accented_si_is_yes_and_plain_si_is_if() {
        assert_eq!(got("Honduras sí apoya el texto."), NO_OBJECTION);
        assert_eq!(
            got("Honduras apoya el texto si se elimina el párrafo 3."),
            CONDITIONAL
        );
    }

    #[test]
    fn a_document_is_comments_unless_an_objection_and_a_pdf_decides_nothing() {
        let doc = |name: &str, content_type: &str| Attachment {
            name: Some(name.into()),
            content_type: content_type.into(),
            size: 1,
            sha256: String::new(),
        };
        let docx = doc("edits.docx", "application/octet-stream");
        let r = read(
            "Please find our proposals attached.",
            std::slice::from_ref(&docx),
        );
        assert_eq!((r.position, r.ambiguous), (Position::Comments, false));
        let r = read("Adjunto nota.", std::slice::from_ref(&docx));
        assert_eq!((r.position, r.ambiguous), (Position::Comments, false));
        assert!(r.reason.contains("edits.docx"), "{}", r.reason);
        let r = read(
            "We cannot support the text; see attached.",
            std::slice::from_ref(&docx),
        );
        assert_eq!(r.position, Position::Objection);

        // A signed note verbale as a PDF: the text decides; alone, it is a doubt.
        let pdf = doc("nota-verbal.pdf", "application/pdf");
        let r = read("No objection.", std::slice::from_ref(&pdf));
        assert_eq!((r.position, r.ambiguous), (Position::NoObjection, false));
        let r = read("Please find attached our note.", std::slice::from_ref(&pdf));
        assert_eq!((r.position, r.ambiguous), (Position::Comments, true));
        assert!(r.reason.contains("nota-verbal.pdf"), "{}", r.reason);
    }

    #[test]
    fn the_reason_quotes_the_deciding_words_as_written() {
        let reason = |t: &str| read(t, &[]).reason;
        assert_eq!(
            reason("Mexico doesn't object to the draft."),
            "the reply consents (\"doesn't object\")"
        );
        assert_eq!(
            reason("Lamentablemente, Nicaragua no puede acompañar el consenso."),
            "the reply objects (\"no puede acompañar\")"
        );
        assert_eq!(
            reason("NO OBJECTION, subject to confirmation."),
            "the first line says \"NO OBJECTION\", but the reply sets a condition \
             (\"subject to\"): conditional comments, not a plain no objection"
        );
        assert_eq!(
            reason("Nous proposons de remplacer « doit » par « devrait »."),
            "the reply proposes edits (\"proposons\")"
        );
        assert!(
            reason("Could you send the annex? Thanks").contains("\"Could you send the annex?\"")
        );
        assert!(reason("Sin objeción. ¿Cuál es el plazo?").contains("\"¿Cuál es el plazo?\""));
    }

    #[test]
    fn conditional_is_only_ever_set_on_comments() {
        for text in [
            "OBJECTION unless paragraph 4 is deleted.",
            "We cannot support the text unless paragraph 4 is deleted.",
        ] {
            let r = read(text, &[]);
            assert_eq!(r.position, Position::Objection, "{text}");
            assert!(!r.conditional, "{text}");
        }
    }

    #[test]
    fn the_lexicon_is_folded_and_unambiguous() {
        let mut seen: HashMap<&str, Class> = HashMap::new();
        for (phrase, class) in PHRASES {
            let plain = phrase.replace('*', "");
            assert_eq!(fold(&plain), plain, "{phrase} is not folded");
            assert!(
                phrase.split(' ').all(|w| !w.is_empty()
                    && w.trim_end_matches('*')
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric())),
                "{phrase}: words are split as the reader splits them"
            );
            for word in phrase.split(' ') {
                if let Some(stem) = word.strip_suffix('*') {
                    assert!(
                        stem.len() >= STEM_KEY,
                        "{phrase}: a stem needs {STEM_KEY} letters"
                    );
                }
            }
            if let Some(other) = seen.insert(phrase, *class) {
                panic!("{phrase} is listed twice ({other:?}, {class:?})");
            }
        }
        // Every phrase is found where it stands alone.
        for (phrase, class) in PHRASES {
            let text = phrase.replace('*', "");
            let tokens = tokenize(&text);
            let words = tokens
                .iter()
                .filter(|t| matches!(t, Token::Word { .. }))
                .count();
            let found = LEXICON.longest_at(&tokens, 0);
            assert_eq!(found, Some((*class, words)), "{phrase}");
        }
    }
}
