//! HTML bodies → text: enough for replies, not a browser.
//!
//! Tags are dropped, entities decoded, block elements become line breaks, and the
//! quoted history that mail clients wrap in `<blockquote>` or put below a reply
//! divider is split off first, so it never reaches the position reader.

/// Markers (lowercase) where a client's quoted history starts. An attribute
/// marker is cut at the start of the tag that carries it.
const QUOTE_MARKERS: [&str; 10] = [
    "<blockquote",
    "id=\"divrplyfwdmsg\"",
    "id=\"appendonsend\"",
    "class=\"gmail_quote",
    "class=\"gmail_attr\"",
    "class=\"moz-cite-prefix\"",
    "id=\"mail-editor-reference-message-container\"",
    "border-top:solid #e1e1e1",
    "border-top:solid #b5c4df",
    "border-top: solid #e1e1e1",
];

/// Splits an HTML body into the author's own part and the quoted part.
pub fn split_quoted(html: &str) -> (&str, &str) {
    let lower = html.to_ascii_lowercase();
    let mut cut: Option<usize> = None;
    for marker in QUOTE_MARKERS {
        if let Some(pos) = lower.find(marker) {
            let start = if marker.starts_with('<') {
                pos
            } else {
                lower[..pos].rfind('<').unwrap_or(pos)
            };
            cut = Some(cut.map_or(start, |c: usize| c.min(start)));
        }
    }
    // `<hr>` dividers (Outlook web puts one above the quoted header block).
    if let Some(pos) = lower.find("<hr") {
        let rest = &lower[pos..];
        if rest.starts_with("<hr ") || rest.starts_with("<hr>") || rest.starts_with("<hr/") {
            cut = Some(cut.map_or(pos, |c| c.min(pos)));
        }
    }
    match cut {
        // Byte offsets in the ASCII-lowercased copy are offsets in the original.
        Some(c) if html.is_char_boundary(c) => (&html[..c], &html[c..]),
        _ => (html, ""),
    }
}

const BLOCK_TAGS: [&str; 20] = [
    "p",
    "div",
    "br",
    "li",
    "tr",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "hr",
    "ul",
    "ol",
    "pre",
    "section",
    "article",
    "td",
];

/// Converts HTML to text: block elements give line breaks, whitespace collapses as
/// a browser would, `<style>`, `<script>`, `<head>` and comments vanish.
pub fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        push_text(&mut out, &rest[..lt]);
        rest = &rest[lt..];
        if rest.starts_with("<!--") {
            rest = match rest.find("-->") {
                Some(end) => &rest[end + 3..],
                None => "",
            };
            continue;
        }
        let Some(gt) = rest.find('>') else {
            // An unclosed tag: the rest is not text anyone wrote.
            rest = "";
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if !closing && matches!(name.as_str(), "style" | "script" | "head" | "title") {
            // Searched without lowercasing the rest of the document: a copy per
            // block made a message of many `<style>` blocks quadratic.
            let close = format!("</{name}");
            rest = match find_ignore_case(rest, &close) {
                Some(end) => {
                    let after = &rest[end..];
                    match after.find('>') {
                        Some(g) => &after[g + 1..],
                        None => "",
                    }
                }
                None => "",
            };
            continue;
        }
        if BLOCK_TAGS.contains(&name.as_str()) {
            // `<br>` always breaks; other blocks break unless a line just ended,
            // so `</div><p>` is one break and `<p>&nbsp;</p>` a blank line.
            if name == "td" {
                out.push(' ');
            } else if name == "br" || !out.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    push_text(&mut out, rest);
    tidy(&out)
}

/// The byte offset of the first occurrence of `needle` (ASCII, lowercase) in
/// `haystack`, ignoring ASCII case. The needle is a short tag name, so this is
/// linear in the haystack.
fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    if n.is_empty() || h.len() < n.len() {
        return None;
    }
    (0..=h.len() - n.len()).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Appends a text run, decoding entities and collapsing source whitespace.
fn push_text(out: &mut String, text: &str) {
    let decoded = decode_entities(text);
    for c in decoded.chars() {
        if c == '\u{a0}' {
            out.push(' ');
        } else if c.is_whitespace() {
            if !out.ends_with(' ') && !out.ends_with('\n') && !out.is_empty() {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

/// Trims each line and keeps at most one blank line in a row.
fn tidy(s: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in s.lines().map(str::trim) {
        if line.is_empty() && lines.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest
            .char_indices()
            .take(12)
            .find(|&(_, c)| c == ';')
            .map(|(i, _)| i);
        let decoded = end.and_then(|e| entity(&rest[1..e]).map(|c| (c, e)));
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code);
    }
    let c = match name {
        "nbsp" => '\u{a0}',
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "rsquo" => '’',
        "lsquo" => '‘',
        "rdquo" => '”',
        "ldquo" => '“',
        "laquo" => '«',
        "raquo" => '»',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "eacute" => 'é',
        "Eacute" => 'É',
        "egrave" => 'è',
        "Egrave" => 'È',
        "ecirc" => 'ê',
        "euml" => 'ë',
        "aacute" => 'á',
        "Aacute" => 'Á',
        "agrave" => 'à',
        "Agrave" => 'À',
        "acirc" => 'â',
        "iacute" => 'í',
        "Iacute" => 'Í',
        "icirc" => 'î',
        "iuml" => 'ï',
        "oacute" => 'ó',
        "Oacute" => 'Ó',
        "ocirc" => 'ô',
        "uacute" => 'ú',
        "Uacute" => 'Ú',
        "ugrave" => 'ù',
        "ucirc" => 'û',
        "uuml" => 'ü',
        "ntilde" => 'ñ',
        "Ntilde" => 'Ñ',
        "ccedil" => 'ç',
        "Ccedil" => 'Ç',
        "iexcl" => '¡',
        "iquest" => '¿',
        "oelig" => 'œ',
        "ordm" => 'º',
        "ordf" => 'ª',
        "deg" => '°',
        "copy" => '©',
        "reg" => '®',
        _ => return None,
    };
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_become_lines_and_entities_decode() {
        let t = to_text(
            "<html><head><style>p{margin:0}</style></head><body><div>Sin objeci&oacute;n.</div>\
             <p>Saludos&nbsp;cordiales,<br>Ana</p><!-- [if mso] --></body></html>",
        );
        assert_eq!(t, "Sin objeción.\nSaludos cordiales,\nAna");
    }

    #[test]
    fn blockquote_and_outlook_divider_are_quoted() {
        let (own, quoted) =
            split_quoted("<p>No objection.</p><blockquote type=\"cite\">OBJECTION</blockquote>");
        assert_eq!(to_text(own), "No objection.");
        assert_eq!(to_text(quoted), "OBJECTION");
        let (own, quoted) = split_quoted(
            "<div>Pas d'objection.</div><div id=\"divRplyFwdMsg\"><b>De :</b> RCM</div>",
        );
        assert_eq!(to_text(own), "Pas d'objection.");
        assert!(to_text(quoted).starts_with("De :"));
    }

    #[test]
    fn style_blocks_close_in_any_case() {
        assert_eq!(
            to_text("<STYLE>p{}</Style><p>Ok</p><script>x</SCRIPT>done"),
            "Ok\ndone"
        );
        assert_eq!(find_ignore_case("ab</STYLE>", "</style"), Some(2));
        assert_eq!(find_ignore_case("</st", "</style"), None);
        assert_eq!(find_ignore_case("", "</style"), None);
    }

    #[test]
    fn broken_html_does_not_panic() {
        for s in [
            "<",
            "<div",
            "&#xZZ;",
            "&#99999999;",
            "<style>",
            "<!--",
            "é<é>&é;",
        ] {
            let (a, b) = split_quoted(s);
            let _ = to_text(a);
            let _ = to_text(b);
        }
    }
}
