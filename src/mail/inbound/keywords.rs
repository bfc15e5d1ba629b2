//! First-line words that are not positions: a Troika member's APROBAR / CAMBIOS
//! (and their English and French forms), and the answer to a confirmation request
//! (CONFIRMO / CONFIRM / CONFIRME, or a denial). Pure: no IO.
//!
//! These are instructions the notices give word for word, so the reading is strict:
//! the keyword must be the whole first line of the reply's own text (case, accents,
//! emphasis marks and final punctuation aside). Anything else is never guessed.

use super::fold;

/// Accepted on the first line of a Troika member's reply: the proposal may go out.
pub const TROIKA_APPROVE: [&str; 3] = ["APROBAR", "APPROVE", "APPROUVER"];
/// Accepted on the first line of a Troika member's reply: changes are requested.
pub const TROIKA_CHANGES: [&str; 3] = ["CAMBIOS", "CHANGES", "MODIFICATIONS"];
/// Accepted as the whole first line of a reply to a confirmation request.
pub const CONFIRM: [&str; 3] = ["CONFIRMO", "CONFIRM", "CONFIRME"];

/// First lines that deny having sent the held message (folded, prefixes).
const DENY: [&str; 12] = [
    "no confirmo",
    "no lo confirmo",
    "no envie",
    "no he enviado",
    "no confirm",
    "do not confirm",
    "don't confirm",
    "i do not confirm",
    "i did not send",
    "ne confirme pas",
    "je ne confirme pas",
    "je n'ai pas envoye",
];

/// A Troika member's feedback read from the first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TroikaWords {
    pub approve: bool,
    /// The rest of the reply (after the keyword), if any.
    pub comments: Option<String>,
}

/// What a reply to a confirmation request says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmationWords {
    /// The keyword alone on the first line: the held message is confirmed.
    Confirm,
    /// "NO CONFIRMO", "I did not send it", ...: the held message was not theirs.
    Deny,
    /// A first line that starts like a confirmation but is not the keyword alone
    /// ("Confirmo, pero ...", "Confirmamos"):
    /// neither a plain confirmation nor a fresh answer, so a person reads it.
    Unclear,
    /// Anything else: a fresh answer.
    Other,
}

/// The first non-blank line of `text` and everything after it.
fn first_line(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if text.is_empty() {
        return None;
    }
    Some(match text.split_once('\n') {
        Some((line, rest)) => (line.trim(), rest),
        None => (text.trim(), ""),
    })
}

/// A first line folded (lower case, no accents) without emphasis marks, quotes or
/// final punctuation: `**Aprobar.**` → `aprobar`.
fn bare(line: &str) -> String {
    let decoration =
        |c: char| c.is_whitespace() || "*_\"'«»“”‘’`~>".contains(c) || ".!:;,".contains(c);
    fold(line).trim_matches(decoration).to_string()
}

fn rest_of(rest: &str) -> Option<String> {
    Some(rest.trim().to_string()).filter(|r| !r.is_empty())
}

/// Reads a Troika member's reply. `Err` says why it was not read (for a person).
pub fn troika(text: &str) -> Result<TroikaWords, String> {
    let expected = format!(
        "a Troika reply needs {} or {} on its first line",
        TROIKA_APPROVE.join("/"),
        TROIKA_CHANGES.join("/")
    );
    let Some((line, rest)) = first_line(text) else {
        return Err(format!("the reply is empty: {expected}"));
    };
    let word = bare(line);
    let is = |words: &[&str]| words.iter().any(|w| fold(w) == word);
    if is(&TROIKA_APPROVE) {
        return Ok(TroikaWords {
            approve: true,
            comments: rest_of(rest),
        });
    }
    if is(&TROIKA_CHANGES) {
        return Ok(TroikaWords {
            approve: false,
            comments: rest_of(rest),
        });
    }
    // CAMBIOS: followed by the changes on the same line is still a request for
    // changes; APROBAR followed by anything on its line is not read (it may be a
    // condition), nor is any other first line.
    let start = line.trim_start_matches(|c: char| "*_\"'«“ ".contains(c));
    for w in TROIKA_CHANGES {
        // The keywords are ASCII, so a byte prefix compared without case is exact.
        let Some(after) = start
            .get(..w.len())
            .filter(|head| head.eq_ignore_ascii_case(w))
            .map(|_| &start[w.len()..])
        else {
            continue;
        };
        if after.starts_with(|c: char| ":-–—.,;".contains(c)) {
            let same_line = after
                .trim_start_matches(|c: char| ":-–—.,; *_".contains(c))
                .trim();
            let comments = format!("{same_line}\n{}", rest.trim());
            return Ok(TroikaWords {
                approve: false,
                comments: rest_of(&comments),
            });
        }
    }
    let shown: String = line.chars().take(80).collect();
    Err(format!("{expected}; its first line is \"{shown}\""))
}

/// Reads a reply to a confirmation request.
pub fn confirmation(text: &str) -> ConfirmationWords {
    let Some((line, _)) = first_line(text) else {
        return ConfirmationWords::Other;
    };
    let word = bare(line);
    if CONFIRM.iter().any(|w| fold(w) == word) {
        return ConfirmationWords::Confirm;
    }
    if word == "no" || word == "non" || DENY.iter().any(|d| word.starts_with(d)) {
        return ConfirmationWords::Deny;
    }
    // "Confirmo, pero ...", "Confirmamos", "Confirmed.": meant as a confirmation,
    // perhaps with a condition; not read as one, nor as a fresh answer.
    if word.starts_with("confirm") {
        return ConfirmationWords::Unclear;
    }
    ConfirmationWords::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn troika_keywords_in_three_languages() {
        for (text, approve) in [
            ("APROBAR", true),
            ("Aprobar.", true),
            ("**APPROVE**\n\nThanks.", true),
            ("approuver", true),
            ("CAMBIOS\nSustituir «junio» por «julio».", false),
            ("Changes: please say which month.", false),
            ("MODIFICATIONS", false),
        ] {
            let r = troika(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.approve, approve, "{text}");
        }
        assert_eq!(
            troika("CAMBIOS\n\nSustituir «junio» por «julio».")
                .unwrap()
                .comments
                .as_deref(),
            Some("Sustituir «junio» por «julio».")
        );
        assert_eq!(
            troika("Changes: please say which month.\nAnd the year.")
                .unwrap()
                .comments
                .as_deref(),
            Some("please say which month.\nAnd the year.")
        );
        assert_eq!(troika("APROBAR").unwrap().comments, None);
    }

    #[test]
    fn anything_else_is_left_for_a_person() {
        for text in [
            "",
            "No aprobar",
            "Aprobamos el texto",
            "APPROVE, subject to the changes below",
            "SIN OBJECIÓN",
            "approved",
            "Changesets attached",
            "Estimados colegas:\nAPROBAR",
        ] {
            let e = troika(text).expect_err(text);
            assert!(e.contains("APROBAR/APPROVE/APPROUVER"), "{e}");
        }
    }

    #[test]
    fn a_confirmation_is_the_keyword_alone() {
        for text in ["CONFIRMO", "Confirm.", "confirmé", "CONFIRME\n\nMerci"] {
            assert_eq!(confirmation(text), ConfirmationWords::Confirm, "{text}");
        }
        for text in [
            "NO CONFIRMO",
            "No lo confirmo, no envié ese mensaje.",
            "I do not confirm",
            "Je ne confirme pas.",
            "No.",
        ] {
            assert_eq!(confirmation(text), ConfirmationWords::Deny, "{text}");
        }
        for text in [
            "Confirmo la objeción",
            "CONFIRMO, pero con un cambio",
            "Confirm - thanks",
            "Confirmamos",
            "Confirmed.",
        ] {
            assert_eq!(confirmation(text), ConfirmationWords::Unclear, "{text}");
        }
        for text in ["", "OBJECIÓN", "Sin objeción.", "Ya lo confirmé"] {
            assert_eq!(confirmation(text), ConfirmationWords::Other, "{text}");
        }
    }
}
