//! The consultation's text, Markdown, as HTML for the answer page.
//!
//! The text is the PPT's; it reaches a focal point's browser, so nothing in it may
//! act as markup of its own: pulldown-cmark parses CommonMark (with tables and
//! strikethrough), and before its HTML writer runs, every raw HTML block or inline
//! tag becomes plain text (escaped by the writer like any text), a link survives
//! only to `http:`, `https:` or `mailto:` (anything else, `javascript:` among them,
//! keeps its words and loses its link), and an image becomes its description. The
//! page's content security policy forbids scripts anyway; this keeps the text from
//! even looking like something it is not. Headings move two levels down (`#` is an
//! `<h3>`), under the page's own title and the text's heading, so that a screen
//! reader's outline stays in order.

use pulldown_cmark::{html, CowStr, Event, HeadingLevel, LinkType, Options, Parser, Tag, TagEnd};

/// `text` as safe HTML (see the module documentation).
pub fn to_html(text: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    // For each open link: whether it was kept, so that its end is kept with it.
    let mut links: Vec<bool> = Vec::new();
    let events = Parser::new_ext(text, options).filter_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        // A block of raw HTML is shown as a paragraph of its text.
        Event::Start(Tag::HtmlBlock) => Some(Event::Start(Tag::Paragraph)),
        Event::End(TagEnd::HtmlBlock) => Some(Event::End(TagEnd::Paragraph)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let keep = link_type == LinkType::Email || safe_url(&dest_url);
            links.push(keep);
            keep.then_some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::End(TagEnd::Link) => links.pop().unwrap_or(false).then_some(event),
        Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => Some(Event::Start(Tag::Heading {
            level: below_page_headings(level),
            id,
            classes,
            attrs,
        })),
        Event::End(TagEnd::Heading(level)) => {
            Some(Event::End(TagEnd::Heading(below_page_headings(level))))
        }
        // The image's description (its alt text, the events inside) stays as text.
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        other => Some(other),
    });
    let mut out = String::with_capacity(text.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

/// `#` → `<h3>`, `##` → `<h4>`, deeper → `<h5>`, `<h6>`.
fn below_page_headings(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H3,
        HeadingLevel::H2 => HeadingLevel::H4,
        HeadingLevel::H3 => HeadingLevel::H5,
        HeadingLevel::H4 | HeadingLevel::H5 | HeadingLevel::H6 => HeadingLevel::H6,
    }
}

fn safe_url(url: &CowStr<'_>) -> bool {
    let url = url.trim_start().to_ascii_lowercase();
    ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn markdown_renders_as_structure() {
        let html = to_html(
            "# Acuerdo\n\nLa **Conferencia** acuerda:\n\n1. Adoptar.\n2. Difundir.\n\n\
             | A | B |\n|---|---|\n| 1 | 2 |\n\nVer <https://rcm.example/doc> y [el sitio](https://rcm.example).\n",
        );
        assert!(html.contains("<h3>Acuerdo</h3>"), "{html}");
        assert!(html.contains("<strong>Conferencia</strong>"), "{html}");
        assert!(
            html.contains("<ol>") && html.contains("<li>Difundir.</li>"),
            "{html}"
        );
        assert!(
            html.contains("<table>") && html.contains("<td>2</td>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"https://rcm.example/doc\">"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"https://rcm.example\">el sitio</a>"),
            "{html}"
        );
    }

    #[test]
    fn raw_html_is_text_and_only_web_and_mail_links_survive() {
        let html = to_html(
            "<script>alert(1)</script>\n\nText <img src=x onerror=alert(2)> and <b>bold</b>.\n\n\
             [click](javascript:alert(3)) [data](data:text/html,hi) [ok](mailto:ts@rcm.example) \
             <ts@rcm.example>\n\n![a chart](https://evil.example/x.png)\n\n\
             [quoted](\"onmouseover=alert(4))\n",
        );
        for dangerous in [
            "<script",
            "<img",
            "<b>",
            "javascript:",
            "data:text",
            "onerror=alert(2)>",
        ] {
            assert!(!html.contains(dangerous), "`{dangerous}` in {html}");
        }
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"), "{html}");
        assert!(
            html.contains("click") && html.contains("data"),
            "the words stay: {html}"
        );
        assert!(
            html.contains("<a href=\"mailto:ts@rcm.example\">ok</a>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"mailto:ts@rcm.example\">ts@rcm.example</a>"),
            "{html}"
        );
        assert!(
            html.contains("a chart") && !html.contains("evil.example"),
            "{html}"
        );
        assert!(!html.contains("onmouseover=alert(4)\""), "{html}");
    }
}
