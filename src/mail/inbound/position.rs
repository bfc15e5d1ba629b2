//! Reads a position from the reply text (never from the quoted notice).
//!
//! The keyword the notice asks for on the first line wins; otherwise the wording
//! decides, word by word, with negation: an objection word after "no", "not",
//! "sin", "pas", ... is a no-objection; a support word after one is an objection.
//! Anything unclear is recorded as comments and flagged for the PPT.

use crate::domain::consultation::Position;

use super::fold;
use super::parse::Attachment;

/// The position read from one reply, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub position: Position,
    /// Set when the position is a default rather than something the reply says.
    pub ambiguous: bool,
    /// A sentence for `puebla mail inspect` and the PPT.
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

/// Words that negate what follows within a few words.
const NEGATORS: [&str; 24] = [
    "no", "not", "cannot", "cant", "t", "never", "unable", "without", "none", "nor", "sin", "ni",
    "nunca", "ninguna", "ninguno", "ningun", "ne", "n", "pas", "aucune", "aucun", "sans", "jamais",
    "non",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// "objection", "object", "objetamos", "s'oppose": negated, a no-objection.
    ObjectionWord,
    /// "support", "apoyamos", "de acuerdo", "appuyer": negated, an objection.
    SupportWord,
    /// An objection whatever precedes it ("break silence").
    Objection,
    /// "comments", "sugerimos", "modifications": negated ("no comments"), a no-objection.
    CommentWord,
    /// "acuso recibo", "noted", "bien reçu": says nothing about the text.
    Acknowledgement,
}

/// Phrases as folded word sequences. Multi-word phrases are tried before single words.
const LEXICON: &[(&str, Class)] = &[
    // Objection words.
    ("objection", Class::ObjectionWord),
    ("objections", Class::ObjectionWord),
    ("objecion", Class::ObjectionWord),
    ("objeciones", Class::ObjectionWord),
    ("object", Class::ObjectionWord),
    ("objects", Class::ObjectionWord),
    ("objetamos", Class::ObjectionWord),
    ("objeta", Class::ObjectionWord),
    ("objetar", Class::ObjectionWord),
    ("objectons", Class::ObjectionWord),
    ("objecte", Class::ObjectionWord),
    ("objecter", Class::ObjectionWord),
    ("oppose", Class::ObjectionWord),
    ("opposes", Class::ObjectionWord),
    ("opposons", Class::ObjectionWord),
    ("opposer", Class::ObjectionWord),
    ("opone", Class::ObjectionWord),
    ("oponemos", Class::ObjectionWord),
    ("oponer", Class::ObjectionWord),
    ("oponerse", Class::ObjectionWord),
    // Support words.
    ("support", Class::SupportWord),
    ("supports", Class::SupportWord),
    ("concur", Class::SupportWord),
    ("concurs", Class::SupportWord),
    ("agree", Class::SupportWord),
    ("agrees", Class::SupportWord),
    ("agreed", Class::SupportWord),
    ("approved", Class::SupportWord),
    ("endorsed", Class::SupportWord),
    ("aprobado", Class::SupportWord),
    ("aprobada", Class::SupportWord),
    ("approve", Class::SupportWord),
    ("approves", Class::SupportWord),
    ("endorse", Class::SupportWord),
    ("endorses", Class::SupportWord),
    ("accept", Class::SupportWord),
    ("accepts", Class::SupportWord),
    ("join the consensus", Class::SupportWord),
    ("join consensus", Class::SupportWord),
    ("apoyamos", Class::SupportWord),
    ("apoya", Class::SupportWord),
    ("apoyar", Class::SupportWord),
    ("acompanamos", Class::SupportWord),
    ("acompana", Class::SupportWord),
    ("acompanar", Class::SupportWord),
    ("aprobamos", Class::SupportWord),
    ("aprueba", Class::SupportWord),
    ("aprobar", Class::SupportWord),
    ("aceptamos", Class::SupportWord),
    ("acepta", Class::SupportWord),
    ("aceptar", Class::SupportWord),
    ("sumarnos", Class::SupportWord),
    ("sumarse", Class::SupportWord),
    ("nos sumamos", Class::SupportWord),
    ("de acuerdo", Class::SupportWord),
    ("conforme", Class::SupportWord),
    ("conformes", Class::SupportWord),
    ("appuyons", Class::SupportWord),
    ("appuie", Class::SupportWord),
    ("appuyer", Class::SupportWord),
    ("soutenons", Class::SupportWord),
    ("soutient", Class::SupportWord),
    ("soutenir", Class::SupportWord),
    ("approuvons", Class::SupportWord),
    ("approuve", Class::SupportWord),
    ("approuver", Class::SupportWord),
    ("acceptons", Class::SupportWord),
    ("accepte", Class::SupportWord),
    ("accepter", Class::SupportWord),
    ("d accord", Class::SupportWord),
    ("nous joindre au consensus", Class::SupportWord),
    ("se joindre au consensus", Class::SupportWord),
    ("rallier le consensus", Class::SupportWord),
    // Objections whatever comes before.
    ("break silence", Class::Objection),
    ("breaks silence", Class::Objection),
    ("breaking silence", Class::Objection),
    ("break the silence", Class::Objection),
    ("rompe el silencio", Class::Objection),
    ("rompemos el silencio", Class::Objection),
    ("romper el silencio", Class::Objection),
    ("rompre le silence", Class::Objection),
    ("rompons le silence", Class::Objection),
    // Comments.
    ("comments", Class::CommentWord),
    ("comentarios", Class::CommentWord),
    ("comentario", Class::CommentWord),
    ("commentaires", Class::CommentWord),
    ("commentaire", Class::CommentWord),
    ("observaciones", Class::CommentWord),
    ("observations", Class::CommentWord),
    ("suggest", Class::CommentWord),
    ("suggests", Class::CommentWord),
    ("suggestion", Class::CommentWord),
    ("suggestions", Class::CommentWord),
    ("sugerimos", Class::CommentWord),
    ("sugerencia", Class::CommentWord),
    ("sugerencias", Class::CommentWord),
    ("proponemos", Class::CommentWord),
    ("proposons", Class::CommentWord),
    ("we propose", Class::CommentWord),
    ("amendment", Class::CommentWord),
    ("amendments", Class::CommentWord),
    ("enmienda", Class::CommentWord),
    ("enmiendas", Class::CommentWord),
    ("edits", Class::CommentWord),
    ("changes", Class::CommentWord),
    ("cambios", Class::CommentWord),
    ("modifications", Class::CommentWord),
    ("modificacion", Class::CommentWord),
    ("modificaciones", Class::CommentWord),
    ("ajustes", Class::CommentWord),
    // Acknowledgements.
    ("acuso recibo", Class::Acknowledgement),
    ("acusamos recibo", Class::Acknowledgement),
    ("acuse de recibo", Class::Acknowledgement),
    ("acuso de recibo", Class::Acknowledgement),
    ("recibido", Class::Acknowledgement),
    ("received", Class::Acknowledgement),
    ("will revert", Class::Acknowledgement),
    ("get back to you", Class::Acknowledgement),
    ("come back to you", Class::Acknowledgement),
    ("bien recu", Class::Acknowledgement),
    ("accusons reception", Class::Acknowledgement),
    ("accuse reception", Class::Acknowledgement),
    ("accusons bonne reception", Class::Acknowledgement),
    ("noted", Class::Acknowledgement),
    ("tomamos nota", Class::Acknowledgement),
    ("tomo nota", Class::Acknowledgement),
    ("prenons note", Class::Acknowledgement),
    ("pris note", Class::Acknowledgement),
    ("nous reviendrons", Class::Acknowledgement),
    ("responderemos", Class::Acknowledgement),
    ("en consulta", Class::Acknowledgement),
];

/// Reads the position of a reply from its trimmed text and its attachments.
pub fn read(text: &str, attachments: &[Attachment]) -> Reading {
    if let Some((position, keyword)) = first_line_keyword(text) {
        return Reading {
            position,
            ambiguous: false,
            reason: format!("the first line says \"{keyword}\""),
        };
    }
    let hits = scan(text);
    let first = |want: &[(Class, bool)]| {
        hits.iter()
            .find(|h| want.contains(&(h.class, h.negated)))
            .map(|h| h.phrase.clone())
    };

    if let Some(p) = first(&[
        (Class::ObjectionWord, false),
        (Class::SupportWord, true),
        (Class::Objection, false),
        (Class::Objection, true),
    ]) {
        return Reading {
            position: Position::Objection,
            ambiguous: false,
            reason: format!("the reply objects (\"{p}\")"),
        };
    }
    if let Some(doc) = attachments.iter().find(|a| a.is_document()) {
        return Reading {
            position: Position::Comments,
            ambiguous: false,
            reason: format!(
                "a document is attached ({}), taken as proposed edits",
                doc.name.as_deref().unwrap_or(&doc.content_type)
            ),
        };
    }
    if let Some(p) = first(&[(Class::CommentWord, false)]) {
        return Reading {
            position: Position::Comments,
            ambiguous: false,
            reason: format!("the reply makes comments (\"{p}\")"),
        };
    }
    if let Some(p) = first(&[
        (Class::ObjectionWord, true),
        (Class::SupportWord, false),
        (Class::CommentWord, true),
    ]) {
        return Reading {
            position: Position::NoObjection,
            ambiguous: false,
            reason: format!("the reply does not object (\"{p}\")"),
        };
    }
    if let Some(p) = first(&[
        (Class::Acknowledgement, false),
        (Class::Acknowledgement, true),
    ]) {
        return Reading {
            position: Position::Comments,
            ambiguous: true,
            reason: format!(
                "only an acknowledgement (\"{p}\"); recorded as comments for the PPT to review"
            ),
        };
    }
    let reason = if text.trim().is_empty() {
        "the reply has no text of its own; recorded as comments for the PPT to review"
    } else {
        "no position could be read; recorded as comments for the PPT to review"
    };
    Reading {
        position: Position::Comments,
        ambiguous: true,
        reason: reason.into(),
    }
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

struct Hit {
    class: Class,
    negated: bool,
    phrase: String,
}

/// Finds lexicon phrases clause by clause, noting whether a negator precedes each
/// within three words of the same clause.
fn scan(text: &str) -> Vec<Hit> {
    let folded = fold(text);
    let mut hits = Vec::new();
    let mut lexicon: Vec<(Vec<&str>, Class)> = LEXICON
        .iter()
        .map(|(p, c)| (p.split(' ').collect(), *c))
        .collect();
    lexicon.sort_by_key(|(words, _)| std::cmp::Reverse(words.len()));

    for clause in folded.split(['.', ';', '!', '?', '\n', ',', ':', '(', ')']) {
        let words: Vec<&str> = clause
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let mut i = 0;
        while i < words.len() {
            let found = lexicon
                .iter()
                .find(|(p, _)| words.len() - i >= p.len() && words[i..i + p.len()] == p[..]);
            match found {
                Some((p, class)) => {
                    let from = i.saturating_sub(3);
                    let negated = words[from..i].iter().any(|w| NEGATORS.contains(w));
                    let start = if negated { from } else { i };
                    hits.push(Hit {
                        class: *class,
                        negated,
                        phrase: words[start..i + p.len()].join(" "),
                    });
                    i += p.len();
                }
                None => i += 1,
            }
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(text: &str) -> (Position, bool) {
        let r = read(text, &[]);
        (r.position, r.ambiguous)
    }

    #[test]
    fn negation_makes_no_objection() {
        for t in [
            "No tenemos objeciones.",
            "El Gobierno de Honduras no tiene objeción al texto.",
            "Mexico does not object to the draft.",
            "We have no objection to the declaration.",
            "Nous n'avons pas d'objection.",
            "Le Canada n’a aucune objection.",
            "Sin objeción por parte de Guatemala.",
            "Panama doesn't object.",
        ] {
            assert_eq!(pos(t), (Position::NoObjection, false), "{t}");
        }
    }

    #[test]
    fn negated_support_is_an_objection() {
        for t in [
            "Lamentablemente no podemos acompañar el consenso.",
            "We cannot support paragraph 4.",
            "We do not agree with paragraph 4.",
            "Le Canada ne peut pas appuyer ce texte.",
            "Nous nous opposons au paragraphe 3.",
            "Objetamos el párrafo 5.",
            "We object to the new wording.",
            "No estamos de acuerdo con el párrafo 2.",
        ] {
            assert_eq!(pos(t), (Position::Objection, false), "{t}");
        }
    }

    #[test]
    fn support_is_no_objection() {
        for t in [
            "We support the text.",
            "Apoyamos la declaración.",
            "Estamos de acuerdo.",
            "Costa Rica concurs.",
            "Nous sommes d'accord avec le texte.",
            "Agreed.",
            "Aprobado por Panamá.",
        ] {
            assert_eq!(pos(t), (Position::NoObjection, false), "{t}");
        }
    }

    #[test]
    fn first_line_keyword_beats_wording() {
        assert_eq!(
            pos("OBJECTION\n\nWe have no objection to paragraphs 1 to 3, but not to 4."),
            (Position::Objection, false)
        );
        assert_eq!(
            pos("NO OBJECTION.\nWe cannot support any further delay, please adopt it."),
            (Position::NoObjection, false)
        );
        assert_eq!(pos("Sin objecion"), (Position::NoObjection, false));
        assert_eq!(
            pos("Commentaires :\nNous n'avons pas d'objection au fond."),
            (Position::Comments, false)
        );
        assert_eq!(pos("PAS D’OBJECTION"), (Position::NoObjection, false));
        assert_eq!(pos("Non-objection."), (Position::NoObjection, false));
        assert_eq!(
            pos("Estimados colegas:\nOBJECIÓN: el párrafo 3 no es aceptable."),
            (Position::Objection, false)
        );
        assert_eq!(
            pos("Comentarios: sugerimos cambiar el párrafo 2."),
            (Position::Comments, false)
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
    fn acknowledgements_and_silence_are_ambiguous_comments() {
        assert_eq!(pos("Acuso recibo."), (Position::Comments, true));
        assert_eq!(pos("Received, will revert."), (Position::Comments, true));
        assert_eq!(pos("Bien reçu, merci."), (Position::Comments, true));
        assert_eq!(pos("Noted, thanks."), (Position::Comments, true));
        assert_eq!(pos(""), (Position::Comments, true));
        assert_eq!(pos("See you in Tegucigalpa."), (Position::Comments, true));
    }

    #[test]
    fn a_document_is_comments_unless_an_objection() {
        let doc = Attachment {
            name: Some("edits.docx".into()),
            content_type: "application/octet-stream".into(),
            size: 1,
            sha256: String::new(),
        };
        let r = read(
            "Please find our proposals attached.",
            std::slice::from_ref(&doc),
        );
        assert_eq!((r.position, r.ambiguous), (Position::Comments, false));
        let r = read("We cannot support the text; see attached.", &[doc]);
        assert_eq!(r.position, Position::Objection);
    }

    #[test]
    fn no_comments_is_no_objection() {
        assert_eq!(pos("Sin comentarios."), (Position::NoObjection, false));
        assert_eq!(
            pos("No objection and no further comments."),
            (Position::NoObjection, false)
        );
    }
}
