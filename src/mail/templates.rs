//! Notice templates: handlebars files in `templates/<lang>/`, one set per notice.
//!
//! Each notice `<name>` has three files per language: `<name>.subject.hbs`,
//! `<name>.txt.hbs` (the text part) and `<name>.html.hbs` (the HTML part). Files whose
//! name starts with `_` are partials, used as `{{> es/_answer}}` (text partials from
//! text parts, HTML partials from HTML parts).
//!
//! Two registries keep the two kinds of output apart: the HTML one escapes every
//! `{{value}}`, the text one escapes nothing, so a title with `&` reads `&` in the text
//! part and `&amp;` in the HTML source. Both run in strict mode, and `if`/`unless` are
//! replaced by versions that refuse a variable that does not exist, so a misspelt name
//! is an error found by `puebla check` rather than a blank in a minister's inbox.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, JsonTruthy, Output, RenderContext,
    RenderErrorReason, Renderable,
};
use serde::Serialize;

use crate::domain::Language;
use crate::workflow::{DataError, DataErrors};

/// The three parts of a rendered notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, whitespace collapsed.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The parts every notice has, with the file suffix of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Subject,
    Text,
    Html,
}

impl Part {
    const ALL: [Part; 3] = [Part::Subject, Part::Text, Part::Html];

    fn suffix(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Text => "txt",
            Part::Html => "html",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("no template `{name}` in language {lang} (expected {file})")]
    Missing {
        name: String,
        lang: Language,
        file: PathBuf,
    },
    #[error("{file}: {message}", file = file.display())]
    Failed { file: PathBuf, message: String },
}

impl RenderError {
    /// The template file at fault.
    pub fn file(&self) -> &Path {
        match self {
            RenderError::Missing { file, .. } | RenderError::Failed { file, .. } => file,
        }
    }
}

/// Every notice template, parsed.
pub struct Templates {
    dir: PathBuf,
    /// Subjects, text parts and text partials; nothing is escaped.
    text: Handlebars<'static>,
    /// HTML parts and HTML partials; every `{{value}}` is escaped.
    html: Handlebars<'static>,
    /// Registered name → the file it came from, to name files in errors.
    files: BTreeMap<String, PathBuf>,
    /// `(language, notice name)` pairs with at least one part.
    notices: BTreeSet<(Language, String)>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("dir", &self.dir)
            .field("files", &self.files.len())
            .finish()
    }
}

fn registry(escape: fn(&str) -> String) -> Handlebars<'static> {
    let mut r = Handlebars::new();
    r.set_strict_mode(true);
    r.register_escape_fn(escape);
    r.register_helper("if", Box::new(StrictIf { positive: true }));
    r.register_helper("unless", Box::new(StrictIf { positive: false }));
    r
}

fn html_registry() -> Handlebars<'static> {
    let mut r = registry(escape_html);
    r.register_helper("lines", Box::new(lines_helper));
    r.register_helper("diff", Box::new(diff_helper));
    r
}

/// The string value of a helper's first parameter (null reads as empty); a missing
/// variable is an error, as everywhere in these templates.
fn string_param(h: &Helper<'_>, name: &'static str) -> Result<String, handlebars::RenderError> {
    let param = h
        .param(0)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex(name, 0))?;
    if param.is_value_missing() {
        let path = param.relative_path().cloned().unwrap_or_else(|| "?".into());
        return Err(RenderErrorReason::MissingVariable(Some(path)).into());
    }
    Ok(match param.value() {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// `{{lines text}}`: user text, escaped, with its line breaks kept as `<br>` (which
/// every mail client honours, unlike `white-space: pre-wrap`).
fn lines_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let text = string_param(h, "lines")?;
    let html = text
        .trim_end()
        .lines()
        .map(escape_html)
        .collect::<Vec<_>>()
        .join("<br>\n");
    out.write(&html)?;
    Ok(())
}

/// `{{diff diff}}`: a unified diff as escaped lines, additions and removals marked by
/// their `+`/`-` and also by colour and strike-through.
fn diff_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let diff = string_param(h, "diff")?;
    for line in diff.lines() {
        let style = if line.starts_with("+++") || line.starts_with("---") || line.starts_with("@@")
        {
            "color:#555555;"
        } else if line.starts_with('+') {
            "background-color:#e6f4ea;color:#0b5323;"
        } else if line.starts_with('-') {
            "background-color:#fce8e6;color:#8a1c12;text-decoration:line-through;"
        } else {
            ""
        };
        out.write(&format!(
            "<div style=\"margin:0;{style}\">{}</div>\n",
            if line.trim().is_empty() {
                "&nbsp;".to_string()
            } else {
                escape_html(line)
            }
        ))?;
    }
    Ok(())
}

/// Escapes what matters in element content and quoted attributes, and nothing else,
/// so that the `=` and `&` of a mailto link stay readable in the source.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `if`/`unless` that fail on a variable that does not exist (null is fine: it is
/// false), which the built-in helpers let pass even in strict mode.
struct StrictIf {
    positive: bool,
}

impl HelperDef for StrictIf {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let name = if self.positive { "if" } else { "unless" };
        let param = h
            .param(0)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex(name, 0))?;
        if param.is_value_missing() {
            let path = param.relative_path().cloned().unwrap_or_else(|| "?".into());
            return Err(RenderErrorReason::MissingVariable(Some(path)).into());
        }
        let value = param.value().is_truthy(false) == self.positive;
        match if value { h.template() } else { h.inverse() } {
            Some(t) => t.render(r, ctx, rc, out),
            None => Ok(()),
        }
    }
}

pub(crate) fn data_error(
    file: &Path,
    line: usize,
    column: usize,
    message: impl Into<String>,
) -> DataError {
    DataError {
        file: file.to_path_buf(),
        line,
        column,
        field: String::new(),
        message: message.into(),
    }
}

impl Templates {
    /// Parses every `*.hbs` file under `dir/<lang>/`; every problem is reported.
    pub fn load(dir: &Path) -> Result<Templates, DataErrors> {
        let mut errors = DataErrors::default();
        let mut t = Templates {
            dir: dir.to_path_buf(),
            text: registry(handlebars::no_escape),
            html: html_registry(),
            files: BTreeMap::new(),
            notices: BTreeSet::new(),
        };
        if !dir.is_dir() {
            return Err(data_error(
                dir,
                0,
                0,
                "the templates folder does not exist (set `templates_dir` or PUEBLA_TEMPLATES)",
            )
            .into());
        }
        for lang in Language::ALL {
            let sub = dir.join(lang.as_str());
            let entries = match std::fs::read_dir(&sub) {
                Ok(e) => e,
                Err(e) => {
                    errors.0.push(data_error(
                        &sub,
                        0,
                        0,
                        format!("cannot read the templates of language {lang}: {e}"),
                    ));
                    continue;
                }
            };
            let mut paths: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "hbs"))
                .collect();
            paths.sort();
            for path in paths {
                if let Err(e) = t.register(lang, &path) {
                    errors.0.push(e);
                }
            }
        }
        if errors.0.is_empty() {
            Ok(t)
        } else {
            Err(errors)
        }
    }

    fn register(&mut self, lang: Language, path: &Path) -> Result<(), DataError> {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| data_error(path, 0, 0, "the file name is not UTF-8"))?;
        let stem = file_name.trim_end_matches(".hbs");
        let Some((name, suffix)) = stem.rsplit_once('.') else {
            return Err(data_error(
                path,
                0,
                0,
                "expected <name>.subject.hbs, <name>.txt.hbs or <name>.html.hbs",
            ));
        };
        let part = Part::ALL
            .into_iter()
            .find(|p| p.suffix() == suffix)
            .ok_or_else(|| {
                data_error(
                    path,
                    0,
                    0,
                    format!("unknown part `{suffix}`: expected subject, txt or html"),
                )
            })?;
        let source = std::fs::read_to_string(path)
            .map_err(|e| data_error(path, 0, 0, format!("cannot read the file: {e}")))?;
        let partial = name.starts_with('_');
        let key = if partial {
            format!("{lang}/{name}")
        } else {
            format!("{lang}/{name}.{suffix}")
        };
        let registry = match part {
            Part::Html => &mut self.html,
            Part::Subject | Part::Text => &mut self.text,
        };
        registry
            .register_template_string(&key, &source)
            .map_err(|e| {
                let (line, column) = e.pos().unwrap_or((0, 0));
                data_error(path, line, column, e.reason().to_string())
            })?;
        // Partials share a name between the registries; the files map keeps both.
        let file_key = format!("{}:{key}", part.suffix());
        self.files.insert(file_key, path.to_path_buf());
        if !partial {
            self.notices.insert((lang, name.to_string()));
        }
        Ok(())
    }

    /// The folder the templates came from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a part of a notice lives in (whether or not it exists).
    fn path_of(&self, name: &str, lang: Language, part: Part) -> PathBuf {
        self.dir
            .join(lang.as_str())
            .join(format!("{name}.{}.hbs", part.suffix()))
    }

    /// Whether `name` has all its parts in every language.
    pub fn has(&self, name: &str) -> bool {
        Language::ALL.into_iter().all(|lang| {
            Part::ALL.into_iter().all(|part| {
                self.files
                    .contains_key(&format!("{s}:{lang}/{name}.{s}", s = part.suffix()))
            })
        })
    }

    fn render_part<T: Serialize>(
        &self,
        name: &str,
        lang: Language,
        part: Part,
        data: &T,
    ) -> Result<String, RenderError> {
        let key = format!("{lang}/{name}.{}", part.suffix());
        let registry = match part {
            Part::Html => &self.html,
            Part::Subject | Part::Text => &self.text,
        };
        if !self.files.contains_key(&format!("{}:{key}", part.suffix())) {
            return Err(RenderError::Missing {
                name: name.to_string(),
                lang,
                file: self.path_of(name, lang, part),
            });
        }
        registry.render(&key, data).map_err(|e| {
            // The error may come from a partial: name the file it is in.
            let at = e.template_name.clone().unwrap_or_else(|| key.clone());
            let file = self
                .files
                .get(&format!("{}:{at}", part.suffix()))
                .or_else(|| self.files.get(&format!("{}:{at}", Part::Text.suffix())))
                .cloned()
                .unwrap_or_else(|| self.path_of(name, lang, part));
            let place = match (e.line_no, e.column_no) {
                (Some(l), Some(c)) => format!("line {l}, column {c}: "),
                _ => String::new(),
            };
            RenderError::Failed {
                file,
                message: format!("{place}{}", e.reason()),
            }
        })
    }

    /// Renders the three parts of `name` with any serializable data (for notices that
    /// are not about one consultation, such as a digest).
    pub fn render_with<T: Serialize>(
        &self,
        name: &str,
        lang: Language,
        data: &T,
    ) -> Result<Rendered, RenderError> {
        let subject = self.render_part(name, lang, Part::Subject, data)?;
        Ok(Rendered {
            subject: one_line(&subject),
            text: self.render_part(name, lang, Part::Text, data)?,
            html: self.render_part(name, lang, Part::Html, data)?,
        })
    }

    /// Renders `name` in `lang`, the subject first: the text and HTML parts are
    /// rendered with the data `with_subject` makes of `data` and the rendered subject
    /// (a notice's mailto links reply to its subject).
    pub fn render_with_subject<T: Serialize, U: Serialize>(
        &self,
        name: &str,
        lang: Language,
        data: &T,
        with_subject: impl FnOnce(&str) -> U,
    ) -> Result<Rendered, RenderError> {
        let subject = one_line(&self.render_part(name, lang, Part::Subject, data)?);
        let data = with_subject(&subject);
        Ok(Rendered {
            text: self.render_part(name, lang, Part::Text, &data)?,
            html: self.render_part(name, lang, Part::Html, &data)?,
            subject,
        })
    }

    /// How many notice templates (name × language) were loaded.
    pub fn len(&self) -> usize {
        self.notices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.notices.is_empty()
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Percent-encodes a mailto header value (RFC 6068): everything but the unreserved
/// characters, so that spaces, accents and line breaks survive every mail client.
pub fn mailto_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A mailto link to `address` that keeps `subject` and puts `first_line` first in the body.
pub fn mailto(address: &str, subject: &str, first_line: &str) -> String {
    format!(
        "mailto:{address}?subject={}&body={}",
        mailto_encode(subject),
        mailto_encode(&format!("{first_line}\r\n\r\n"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailto_links_are_percent_encoded() {
        assert_eq!(
            mailto("c+AB@x.org", "Re: [RCM-1] Día", "SIN OBJECIÓN"),
            "mailto:c+AB@x.org?subject=Re%3A%20%5BRCM-1%5D%20D%C3%ADa&body=SIN%20OBJECI%C3%93N%0D%0A%0D%0A"
        );
    }

    #[test]
    fn partials_and_layouts_resolve_by_language() {
        let dir = tempfile::tempdir().unwrap();
        let es = dir.path().join("es");
        std::fs::create_dir_all(&es).unwrap();
        std::fs::write(es.join("_layout.html.hbs"), "<p>{{> @partial-block}}</p>").unwrap();
        std::fs::write(
            es.join("x.html.hbs"),
            "{{#> es/_layout}}{{title}}{{/es/_layout}}",
        )
        .unwrap();
        std::fs::write(es.join("x.txt.hbs"), "{{title}}").unwrap();
        std::fs::write(es.join("x.subject.hbs"), "[{{title}}]\n").unwrap();
        for l in ["en", "fr"] {
            std::fs::create_dir_all(dir.path().join(l)).unwrap();
        }
        let t = Templates::load(dir.path()).unwrap();
        let r = t
            .render_with("x", Language::Es, &serde_json::json!({"title": "a & <b>"}))
            .unwrap();
        assert_eq!(r.subject, "[a & <b>]");
        assert_eq!(r.text, "a & <b>");
        assert_eq!(r.html, "<p>a &amp; &lt;b&gt;</p>");
        let err = t
            .render_with("x", Language::Es, &serde_json::json!({}))
            .unwrap_err();
        assert!(err.to_string().contains("x.subject.hbs"), "{err}");
    }

    #[test]
    fn strict_if_refuses_a_missing_variable_but_accepts_null() {
        let mut r = registry(handlebars::no_escape);
        r.register_template_string("t", "{{#if a}}yes{{else}}no{{/if}}")
            .unwrap();
        assert_eq!(
            r.render("t", &serde_json::json!({"a": null})).unwrap(),
            "no"
        );
        assert!(r.render("t", &serde_json::json!({})).is_err());
    }
}
