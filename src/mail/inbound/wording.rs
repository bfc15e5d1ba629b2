//! The reply's wording read into evidence: which words consent, object, doubt, set
//! conditions or reservations, or propose edits, once negation is taken into account.
//!
//! Three steps, each one pass: `tokenize` splits the text into words (folded:
//! lowercase, no accents) and clause and sentence breaks; the `Scanner` tries, at
//! each word, the phrases of `lexicon.rs` that start with it (longest first, a
//! bounded number) and carries negations to the word they reach; `Evidence::gather`
//! keeps the first words of each kind, settling the signals that depend on their
//! sentence ("if" only conditions consent in its own sentence; "comments" that were
//! "taken into account" or "will follow" are not proposed edits). The cost is linear
//! in the length of the text.
//!
//! Negation: a negator ("no", "not", "sin", "ne … pas", "aucune") reaches the first
//! negation-sensitive phrase within a few words of the same clause and is used up by
//! it. Negated consent is an objection; a negated objection, concern, comment or
//! reservation is consent. An ability word ("can", "in a position", "en condiciones",
//! "en mesure") makes the negation an inability: what the reply cannot do is an
//! objection when it is consent ("cannot support") and a doubt otherwise ("cannot
//! object", or "not in a position to" left hanging). A withdrawal ("withdraws",
//! "retira", "lève") takes back what follows ("withdraws its objection").

use std::collections::HashMap;
use std::ops::Range;
use std::sync::LazyLock;

use super::fold;
use super::lexicon::{phrases, Class, Negation};

/// What the reply's words say, each as the span of the first words found that say
/// it (byte offsets in the reply text).
#[derive(Debug, Default)]
pub(super) struct Evidence {
    pub(super) assent: Option<Range<usize>>,
    pub(super) dissent: Option<Range<usize>>,
    /// "cannot …", "not in a position to object": a refusal or an inability that is
    /// not a plain objection.
    pub(super) doubt: Option<Range<usize>>,
    pub(super) condition: Option<Range<usize>>,
    pub(super) reservation: Option<Range<usize>>,
    pub(super) edit: Option<Range<usize>>,
    pub(super) hedge: Option<Range<usize>>,
    pub(super) question: Option<Range<usize>>,
    pub(super) deferral: Option<Range<usize>>,
    pub(super) acknowledgement: Option<Range<usize>>,
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
    /// Consent in the conditional mood: a hedge in a sentence that consents.
    Tentative,
    /// A concern: a hedge unless its sentence looks back ("our concerns have been
    /// addressed").
    Concern,
    Question,
    Deferral,
    Acknowledgement,
    Retrospective,
}

impl Evidence {
    pub(super) fn gather(text: &str) -> Evidence {
        let tokens = tokenize(text);
        let mut scanner = Scanner::new(&tokens);
        scanner.run();

        // Sentence-bound signals are settled once every sentence's content is known:
        // one pass marks the sentences, one reads the signals.
        const CONSENTS: u8 = 1;
        const LOOKS_BACK: u8 = 2;
        const LOOKS_AHEAD: u8 = 4;
        let sentences = scanner
            .found
            .iter()
            .map(|f| f.sentence as usize + 1)
            .max()
            .unwrap_or(0);
        let mut marks = vec![0u8; sentences];
        for f in &scanner.found {
            marks[f.sentence as usize] |= match f.signal {
                Signal::Assent | Signal::Tentative => CONSENTS,
                Signal::Retrospective => LOOKS_BACK,
                Signal::Deferral => LOOKS_AHEAD,
                _ => 0,
            };
        }
        let marked = |f: &Found, mark: u8| marks[f.sentence as usize] & mark != 0;

        let mut e = Evidence::default();
        for f in &scanner.found {
            let slot = match f.signal {
                Signal::Assent => &mut e.assent,
                Signal::Dissent => &mut e.dissent,
                Signal::Doubt => &mut e.doubt,
                Signal::Condition => &mut e.condition,
                Signal::WeakCondition if marked(f, CONSENTS) => &mut e.condition,
                Signal::WeakCondition => continue,
                Signal::Reservation => &mut e.reservation,
                Signal::Edit => &mut e.edit,
                Signal::EditNoun if !marked(f, LOOKS_BACK | LOOKS_AHEAD) => &mut e.edit,
                Signal::EditNoun => continue,
                Signal::Hedge | Signal::Tentative => &mut e.hedge,
                Signal::Concern if !marked(f, LOOKS_BACK) => &mut e.hedge,
                Signal::Concern => continue,
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

/// French elides "que" before a vowel ("pour autant qu'aucune", "lorsqu'il"): the
/// elided word is read as the whole one, so that every phrase the lexicon writes with
/// "que" is found in both forms.
fn unelide(folded: String) -> String {
    match folded.as_str() {
        "qu" | "lorsqu" | "puisqu" | "quoiqu" | "jusqu" => folded + "e",
        _ => folded,
    }
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
            let folded = if matches!(word, "sí" | "Sí" | "SÍ" | "sÍ") {
                "sí".to_string()
            } else {
                unelide(fold(word))
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
    let entries: Vec<Entry> = phrases()
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
    /// Only a negator that can be a whole answer ("no", "non", "rien") so far.
    answer: bool,
    /// A subject pronoun came after the negation: it belongs to another verb.
    crossed: bool,
}

/// How many words a negation reaches: far for consent (negated consent is an
/// objection, the cautious reading), near for the rest (a negated objection is
/// consent, so it must be close: "no objection", "n'a pas d'objection").
fn reach(class: Class) -> usize {
    match class {
        Class::Assent | Class::Adoption => 8,
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

impl<'a> Scanner<'a> {
    fn new(tokens: &'a [Token]) -> Scanner<'a> {
        Scanner {
            tokens,
            found: Vec::new(),
            scope: None,
            particle_until: None,
            or_reopens: None,
            ability_ends: None,
        }
    }

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
            Class::Negator(_) | Class::Answer | Class::Ne if numeric_next => {}
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
            Class::Answer => {
                let opens = self.scope.is_none();
                self.negate(Negation::Plain, at, last, span, false);
                if let (true, Some(scope)) = (opens, &mut self.scope) {
                    scope.answer = true;
                }
            }
            Class::Subject | Class::SubjectOrObject => {
                if let Some(scope) = &mut self.scope {
                    if scope.answer && scope.last + 1 == at {
                        // "No we object": the "no" was an answer of its own.
                        self.scope = None;
                    } else if class == Class::Subject || !scope.has_ne {
                        scope.crossed = true;
                    }
                }
            }
            Class::Ability => {
                if let Some(scope) = &mut self.scope {
                    if scope.kind == Negation::Plain {
                        scope.kind = Negation::Inability;
                    }
                    scope.last = last;
                    scope.answer = false;
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
            | Class::ReservationNoun
            | Class::Adoption => {
                let negation = match self.scope.take() {
                    Some(scope) if at - scope.last <= reach(class) => Some(scope),
                    other => {
                        self.scope = other;
                        self.close_scope();
                        None
                    }
                };
                if class == Class::Adoption && negation.is_none() {
                    // A mention of adoption says nothing by itself.
                    return;
                }
                let signal = match &negation {
                    // Past a subject, a negation is another verb's: consent read
                    // through it is doubtful, refusal still a refusal.
                    Some(scope) if scope.crossed && class != Class::Assent => Signal::Doubt,
                    _ => resolve(class, negation.as_ref().map(|s| s.kind)),
                };
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
            Class::Tentative => {
                self.close_scope();
                self.push(Signal::Tentative, span, sentence);
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
                scope.answer = false;
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
                    answer: false,
                    crossed: false,
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
        (Class::Adoption, Some(Plain | Withdrawal)) => Signal::Dissent,
        (_, Some(Inability)) => Signal::Doubt,
        (Class::Dissent, None) => Signal::Dissent,
        (Class::Concern, None) => Signal::Concern,
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

    /// The signals of a text, in order, as (signal, words as written).
    fn signals(text: &str) -> Vec<(Signal, &str)> {
        let tokens = tokenize(text);
        let mut scanner = Scanner::new(&tokens);
        scanner.run();
        scanner
            .found
            .iter()
            .map(|f| (f.signal, &text[f.span.clone()]))
            .collect()
    }

    #[test]
    fn a_negation_reaches_the_first_word_it_can_turn() {
        use Signal::*;
        assert_eq!(
            signals("no tiene objeción"),
            [(Assent, "no tiene objeción")]
        );
        assert_eq!(
            signals("cannot support or endorse"),
            [
                (Dissent, "cannot support"),
                (Dissent, "cannot support or endorse")
            ]
        );
        assert_eq!(
            signals("no objection and support"),
            [(Assent, "no objection"), (Assent, "support")]
        );
        // "ne … pas": the "pas" after the verb belongs to the "ne" already used.
        assert_eq!(
            signals("ne s'oppose pas au consensus, appuie"),
            [(Assent, "ne s'oppose"), (Assent, "appuie")]
        );
        // "ne … que" is "only".
        assert_eq!(signals("ne peut que soutenir"), [(Assent, "soutenir")]);
        // A comma ends a negation: "No, we support".
        assert_eq!(signals("No, we support it"), [(Assent, "support")]);
        // A number after "No" is a note's number.
        assert_eq!(signals("Nota No 45 apoya"), [(Assent, "apoya")]);
        // What the reply cannot do, left hanging, is a doubt; a withdrawal, an edit.
        assert_eq!(
            signals("not in a position to respond"),
            [(Doubt, "not in a position")]
        );
        assert_eq!(signals("retirer le paragraphe"), [(Edit, "retirer")]);
        // A "no" that is an answer of its own; a negation past a subject.
        assert_eq!(signals("No we object"), [(Dissent, "object")]);
        assert_eq!(
            signals("not what we object to"),
            [(Doubt, "not what we object")]
        );
        assert_eq!(
            signals("do not think we can support"),
            [(Dissent, "not think we can support")]
        );
        // Two negations of which one is a withdrawal cancel out.
        assert_eq!(signals("no retira su objeción"), [(Dissent, "objeción")]);
    }

    #[test]
    fn sentences_and_questions() {
        let tokens = tokenize("Sí. ¿Cuál es el plazo?\n\nOk? https://example.org/?a=1 3.2");
        let breaks: Vec<String> = tokens
            .iter()
            .filter_map(|t| match t {
                Token::Sentence { sentence, question } => Some(format!("{sentence}:{question:?}")),
                _ => None,
            })
            .collect();
        // Byte offsets: "í", "¿" and "á" take two bytes. The dot in a link ends a
        // sentence, which only shortens what a negation or an "if" can reach.
        assert_eq!(
            breaks,
            [
                "0:None",
                "1:Some(5..25)",
                "2:Some(27..30)",
                "3:None",
                "4:None"
            ]
        );
        let words: Vec<&str> = tokens
            .iter()
            .filter_map(|t| match t {
                Token::Word { folded, .. } => Some(folded.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            words,
            [
                "sí", "cual", "es", "el", "plazo", "ok", "https", "example", "org", "a", "1", "3",
                "2"
            ]
        );
    }

    #[test]
    fn the_lexicon_is_folded_and_unambiguous() {
        let mut seen: HashMap<&str, Class> = HashMap::new();
        for (phrase, class) in phrases() {
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
        for (phrase, class) in phrases() {
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
