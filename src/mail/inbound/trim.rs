//! The focal point's own words: quoted history and signatures removed.
//!
//! Works line by line on the text body. Outlook quotes without `>`, so its header
//! block ("From:/Sent:/To:/Subject:" and the Spanish and French forms) or an
//! "Original Message" separator ends the reply; Gmail, Apple Mail and Thunderbird
//! write an attribution line ("On ... wrote:") above `>`-quoted lines, which are
//! removed wherever they are, so a bottom-posted answer survives.

use super::fold;

/// The reply text and what was removed from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trimmed {
    pub text: String,
    /// Everything removed (quotes, headers, signatures), in order, for the record.
    pub trimmed: String,
}

/// Splits a text body into the author's words and the rest.
pub fn trim(body: &str) -> Trimmed {
    let body = body.replace("\r\n", "\n").replace('\r', "\n");
    // A run of blank lines counts as two at most: `tidy` shows one, the tests below
    // need no more, and a message of a million blank lines is not a million lines.
    let mut lines: Vec<&str> = Vec::new();
    let mut blank_run = 0;
    for line in body.lines() {
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run > 2 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        lines.push(line);
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut removed: Vec<&str> = Vec::new();

    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        // A blank line starts nothing and is kept (`tidy` folds runs of them): it is
        // passed over without the tests below, which fold the line several times.
        if line.trim().is_empty() {
            kept.push(line);
            i += 1;
            continue;
        }
        if starts_history(&lines, i) {
            removed.extend(&lines[i..]);
            break;
        }
        if let Some(n) = attribution_len(&lines, i) {
            // Followed by `>` lines: drop the attribution and let the loop drop the
            // quote; otherwise (an HTML quote flattened to text) the rest is history.
            let next = lines[i + n..].iter().find(|l| !l.trim().is_empty());
            if next.is_some_and(|l| l.trim_start().starts_with('>')) {
                removed.extend(&lines[i..i + n]);
                i += n;
                continue;
            }
            removed.extend(&lines[i..]);
            break;
        }
        if line.trim_start().starts_with('>') {
            removed.push(line);
        } else {
            kept.push(line);
        }
        i += 1;
    }

    // Signatures: cut the kept text at the first signature marker that follows
    // some text of the author's own.
    // Whether any earlier line has text is carried along, not searched for again
    // at every line: a message of blank lines stays linear.
    let mut cut = None;
    let mut has_text_before = false;
    for (j, line) in kept.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if is_signature_separator(line) || is_mobile_signature(line) || is_disclaimer(line) {
            cut = Some(j);
            break;
        }
        if has_text_before && is_sign_off(line) {
            cut = Some(j);
            break;
        }
        has_text_before |= !line.trim().is_empty();
    }
    let mut sig: Vec<&str> = Vec::new();
    if let Some(c) = cut {
        sig = kept.split_off(c);
    }
    sig.extend(removed);

    Trimmed {
        text: tidy(&kept),
        trimmed: tidy(&sig),
    }
}

fn tidy(lines: &[&str]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for line in lines.iter().map(|l| l.trim_end()) {
        if line.trim().is_empty() && out.last().is_none_or(|l| l.trim().is_empty()) {
            continue;
        }
        out.push(line);
    }
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    out.join("\n")
}

/// A header-block key at the start of a line, in any of the three languages,
/// bold markers (`*From:*`) and the French space before the colon allowed.
fn header_key(line: &str) -> Option<&'static str> {
    let f = fold(line.trim().trim_start_matches('*'));
    let (key, rest) = f.split_once(':')?;
    let key = key.trim().trim_end_matches('*').trim();
    // The value must follow on the same line (or be empty for a wrapped value).
    let _ = rest;
    const FROM: [&str; 3] = ["from", "de", "von"];
    const OTHER: [&str; 12] = [
        "sent", "date", "to", "subject", "cc", "enviado", "fecha", "para", "asunto", "envoye", "a",
        "objet",
    ];
    if FROM.contains(&key) {
        Some("from")
    } else if OTHER.contains(&key) {
        Some("other")
    } else {
        None
    }
}

/// True when line `i` starts quoted history that runs to the end of the message.
fn starts_history(lines: &[&str], i: usize) -> bool {
    let line = lines[i].trim();
    let f = fold(line);
    // "-----Original Message-----" and translations; forwarded-message separators.
    if line.starts_with("--") && line.len() > 6 {
        let words = f.trim_matches(|c: char| c == '-' || c == ' ');
        const SEPARATORS: [&str; 9] = [
            "original message",
            "mensaje original",
            "message d'origine",
            "message original",
            "forwarded message",
            "mensaje reenviado",
            "message transfere",
            "reply message",
            "mensaje de respuesta",
        ];
        if SEPARATORS.contains(&words) {
            return true;
        }
    }
    // Outlook's divider: a long row of underscores.
    if line.len() >= 10 && line.chars().all(|c| c == '_') {
        return true;
    }
    // "From: ..." followed closely by two more header keys (Sent/To/Subject, ...).
    if header_key(line) == Some("from") {
        let others = lines[i + 1..]
            .iter()
            .take(6)
            .filter(|l| header_key(l) == Some("other"))
            .count();
        return others >= 2;
    }
    false
}

/// The number of lines (1 or 2) of an attribution line starting at `i`:
/// "On <date>, <name> wrote:", "El <fecha>, <nombre> escribió:",
/// "Le <date>, <nom> a écrit :", possibly wrapped over two lines.
fn attribution_len(lines: &[&str], i: usize) -> Option<usize> {
    let first = fold(lines[i].trim());
    let starts = ["on ", "el ", "le ", "am ", "em "]
        .iter()
        .any(|p| first.starts_with(p));
    if !starts {
        return None;
    }
    let ends = |s: &str| {
        let s = s.trim_end();
        [
            "wrote:",
            "escribio:",
            "a ecrit :",
            "a ecrit:",
            "schrieb:",
            "escreveu:",
        ]
        .iter()
        .any(|e| s.ends_with(e))
    };
    let plausible = |s: &str| s.chars().any(|c| c.is_ascii_digit() || c == '@');
    if ends(&first) && plausible(&first) {
        return Some(1);
    }
    let second = lines.get(i + 1).map(|l| fold(l.trim()))?;
    if !second.is_empty() && ends(&second) && (plausible(&first) || plausible(&second)) {
        return Some(2);
    }
    None
}

fn is_signature_separator(line: &str) -> bool {
    line == "-- " || line == "--" || line.trim_end() == "--"
}

fn is_mobile_signature(line: &str) -> bool {
    let f = fold(line.trim());
    const PREFIXES: [&str; 14] = [
        "sent from my ",
        "sent from outlook",
        "sent from mail for",
        "get outlook for ",
        "enviado desde mi ",
        "enviado desde outlook",
        "enviado desde el correo",
        "obtener outlook para ",
        "envoye de mon ",
        "envoye depuis mon ",
        "envoye a partir de outlook",
        "envoye de outlook",
        "telecharger outlook pour ",
        "obtenir outlook pour ",
    ];
    PREFIXES.iter().any(|p| f.starts_with(p)) && f.len() < 80
}

fn is_disclaimer(line: &str) -> bool {
    let f = fold(line.trim());
    const PREFIXES: [&str; 6] = [
        "confidentiality notice",
        "aviso de confidencialidad",
        "avis de confidentialite",
        "this e-mail and any attachments",
        "este correo electronico y sus anexos",
        "ce courriel et ses pieces jointes",
    ];
    PREFIXES.iter().any(|p| f.starts_with(p))
}

fn is_sign_off(line: &str) -> bool {
    let f = fold(line.trim());
    let f = f.trim_end_matches([',', '.', '!', ';', ' ']).trim();
    const SIGN_OFFS: [&str; 40] = [
        "regards",
        "best regards",
        "kind regards",
        "warm regards",
        "best wishes",
        "with best regards",
        "with kind regards",
        "sincerely",
        "yours sincerely",
        "best",
        "thanks",
        "thank you",
        "many thanks",
        "cheers",
        "saludos",
        "saludos cordiales",
        "cordiales saludos",
        "un saludo",
        "un cordial saludo",
        "reciba un cordial saludo",
        "atentamente",
        "muy atentamente",
        "cordialmente",
        "gracias",
        "muchas gracias",
        "quedo atento",
        "quedo atenta",
        "cordialement",
        "bien cordialement",
        "tres cordialement",
        "salutations",
        "meilleures salutations",
        "sinceres salutations",
        "salutations distinguees",
        "bien a vous",
        "respectueusement",
        "merci",
        "merci beaucoup",
        "avec mes salutations",
        "avec mes meilleures salutations",
    ];
    SIGN_OFFS.contains(&f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlook_header_block_in_french_with_spaces_before_colons() {
        let t = trim(
            "Pas d'objection.\n\nDe : RCM Consultations <consultas@rcm-ts.example>\n\
             Envoyé : lundi 2 mars 2026 10:00\nÀ : Point focal <pf@example.gob>\n\
             Objet : [RCM-2026-007] Consultation écrite\n\nRépondez OBJECTION ou COMMENTAIRES.",
        );
        assert_eq!(t.text, "Pas d'objection.");
        assert!(t.trimmed.contains("Répondez OBJECTION"));
    }

    #[test]
    fn spanish_outlook_block_and_signature() {
        let t = trim(
            "Sin objeción.\n\nSaludos cordiales,\nAna Gómez\nCancillería\n\n\
             De: RCM <consultas@rcm-ts.example>\nEnviado: lunes, 2 de marzo de 2026 10:00\n\
             Para: Ana <ana@example.gob>\nAsunto: [RCM-2026-007] Consulta\n\nOBJECIÓN",
        );
        assert_eq!(t.text, "Sin objeción.");
        assert!(t.trimmed.contains("Ana Gómez"));
        assert!(t.trimmed.contains("OBJECIÓN"));
    }

    #[test]
    fn attribution_wrapped_over_two_lines() {
        let t = trim(
            "We have no objection.\n\nOn Mon, 2 Mar 2026 at 10:00, RCM Consultations <\n\
             consultas@rcm-ts.example> wrote:\n\n> Reply OBJECTION if you object.\n",
        );
        assert_eq!(t.text, "We have no objection.");
        assert!(t.trimmed.contains("wrote:"));
        assert!(t.trimmed.contains("> Reply OBJECTION"));
    }

    #[test]
    fn bottom_posted_answer_survives() {
        let t = trim(
            "Le lun. 2 mars 2026 à 10:00, RCM <consultas@rcm-ts.example> a écrit :\n\
             > Répondez PAS D'OBJECTION, OBJECTION ou COMMENTAIRES.\n\nAucune objection.\n",
        );
        assert_eq!(t.text, "Aucune objection.");
    }

    #[test]
    fn original_message_separator_and_mobile_signature() {
        let t = trim("No objection\n\nSent from my iPhone\n\n-----Original Message-----\nFrom: x");
        assert_eq!(t.text, "No objection");
        let t = trim("OBJECIÓN\n\nEnviado desde mi iPhone");
        assert_eq!(t.text, "OBJECIÓN");
        let t = trim("Ok\n-----Mensaje original-----\nDe: x");
        assert_eq!(t.text, "Ok");
    }

    #[test]
    fn a_lone_thanks_is_kept() {
        assert_eq!(trim("Thanks!").text, "Thanks!");
    }
}
