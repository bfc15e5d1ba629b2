//! Loading and validating the data files in `workflows/` into domain types.
//!
//! Every error names the file, the line and column, and the field, so that the TS
//! can fix a data file without reading Rust.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use crate::domain::body::Body;
use crate::domain::calendar::Calendars;
use crate::domain::procedure::Procedure;

pub mod body;
#[cfg(test)]
mod calendar_tests;
pub mod calendars;
pub mod focal_points;
pub mod procedure;

/// One problem in one data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is not tied to a place in the file.
    pub line: usize,
    pub column: usize,
    /// The field in dotted form, e.g. `rounds[1].working_days`; empty for the whole file.
    pub field: String,
    pub message: String,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for DataError {}

/// All the problems found in a set of files; loading reports every one, not just the first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataErrors(pub Vec<DataError>);

impl fmt::Display for DataErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DataErrors {}

impl From<DataError> for DataErrors {
    fn from(e: DataError) -> Self {
        DataErrors(vec![e])
    }
}

/// The text of one data file, kept so that byte spans can be turned into lines.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message: format!("cannot read the file: {e}"),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            text,
        })
    }

    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    /// An error at `span` (from a `toml::Spanned` value) about `field`.
    pub fn error_at(
        &self,
        span: Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> DataError {
        let (line, column) = self.line_col(span.start);
        DataError {
            file: self.path.clone(),
            line,
            column,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// An error about the whole file or a field that has no place (e.g. a missing one).
    pub fn error(&self, field: &str, message: impl Into<String>) -> DataError {
        DataError {
            file: self.path.clone(),
            line: 0,
            column: 0,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Deserializes the file as TOML; a syntax or shape error keeps toml's position and message.
    /// Every string value must be one line (see [`SourceFile::one_line_strings`]).
    pub fn parse_toml<T: DeserializeOwned>(&self) -> Result<T, DataError> {
        let value = toml::from_str(&self.text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| self.line_col(s.start));
            DataError {
                file: self.path.clone(),
                line,
                column,
                field: String::new(),
                message: e.message().trim().to_string(),
            }
        })?;
        self.one_line_strings()?;
        Ok(value)
    }

    /// Refuses a string value with a control character in it (a `\n` or `\u0000`
    /// escape, a multi-line string): what data files hold — names, labels, addresses,
    /// settings — is one line, and may end up in a mail header. The error names the
    /// field, and the line when the value is found written in the usual form.
    fn one_line_strings(&self) -> Result<(), DataError> {
        fn walk(value: &toml::Value, path: String, found: &mut Option<(String, String)>) {
            if found.is_some() {
                return;
            }
            match value {
                toml::Value::String(s) if crate::domain::input::header_problem(s).is_some() => {
                    *found = Some((path, s.clone()));
                }
                toml::Value::Array(items) => {
                    for (i, v) in items.iter().enumerate() {
                        walk(v, format!("{path}[{i}]"), found);
                    }
                }
                toml::Value::Table(t) => {
                    for (k, v) in t {
                        let p = if path.is_empty() {
                            k.clone()
                        } else {
                            format!("{path}.{k}")
                        };
                        walk(v, p, found);
                    }
                }
                _ => {}
            }
        }
        let Ok(table) = self.text.parse::<toml::Table>() else {
            return Ok(());
        };
        let mut found = None;
        walk(&toml::Value::Table(table), String::new(), &mut found);
        let Some((field, value)) = found else {
            return Ok(());
        };
        let problem = crate::domain::input::header_problem(&value).unwrap_or_default();
        let message = format!("{problem}; a value here must be one line of text");
        // Where the value is, when it is written as a basic string with the usual
        // escapes (`"Día\nBcc"`); otherwise the field alone says which it is.
        let mut written = String::from("\"");
        for c in value.chars() {
            match c {
                '"' => written.push_str("\\\""),
                '\\' => written.push_str("\\\\"),
                '\n' => written.push_str("\\n"),
                '\t' => written.push_str("\\t"),
                '\r' => written.push_str("\\r"),
                c if c.is_control() => written.push_str(&format!("\\u{:04X}", c as u32)),
                c => written.push(c),
            }
        }
        written.push('"');
        Err(match self.text.find(&written) {
            Some(at) => self.error_at(at..at, &field, message),
            None => self.error(&field, message),
        })
    }
}

/// Everything in a `workflows/` folder: the body, its procedures and the calendars.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub dir: PathBuf,
    pub body: Body,
    pub procedures: BTreeMap<String, Procedure>,
    pub calendars: Calendars,
}

impl Catalog {
    pub fn procedure(&self, id: &str) -> Option<&Procedure> {
        self.procedures.get(id)
    }
}

#[derive(serde::Deserialize)]
struct Kind {
    kind: Option<String>,
}

/// Loads and validates every data file in `dir`; all problems are reported together.
pub fn load_catalog(dir: &Path) -> Result<Catalog, DataErrors> {
    let mut errors = DataErrors::default();
    let entries = std::fs::read_dir(dir).map_err(|e| DataError {
        file: dir.to_path_buf(),
        line: 0,
        column: 0,
        field: String::new(),
        message: format!("cannot read the workflows folder: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();

    let mut bodies = Vec::new();
    let mut procedures = BTreeMap::new();
    // Files that declared a kind but failed to load: no "missing" error on top of theirs.
    let (mut body_declared, mut procedure_declared) = (false, false);
    for path in files {
        let src = match SourceFile::read(&path) {
            Ok(s) => s,
            Err(e) => {
                errors.0.push(e);
                continue;
            }
        };
        let kind = match src.parse_toml::<Kind>() {
            Ok(k) => k.kind,
            Err(e) => {
                errors.0.push(e);
                continue;
            }
        };
        match kind.as_deref() {
            Some("body") => match body::load_body(&src).inspect_err(|_| body_declared = true) {
                Ok(b) => bodies.push((path.clone(), b)),
                Err(e) => errors.0.extend(e.0),
            },
            Some("procedure") => {
                match procedure::load_procedure(&src).inspect_err(|_| procedure_declared = true) {
                    Ok(p) => {
                        procedures.insert(p.id.clone(), p);
                    }
                    Err(e) => errors.0.extend(e.0),
                }
            }
            Some(other) => errors.0.push(src.error(
                "kind",
                format!("unknown kind `{other}`; expected \"body\" or \"procedure\""),
            )),
            None => errors.0.push(src.error(
                "kind",
                "missing: every data file says `kind = \"body\"` or `kind = \"procedure\"`",
            )),
        }
    }
    if bodies.len() > 1 {
        for (path, _) in &bodies[1..] {
            errors.0.push(DataError {
                file: path.clone(),
                line: 0,
                column: 0,
                field: "kind".into(),
                message: format!("a second body file; the first is {}", bodies[0].0.display()),
            });
        }
    }
    if procedures.is_empty() && !procedure_declared {
        errors.0.push(DataError {
            file: dir.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message: "no procedure file (kind = \"procedure\") found".into(),
        });
    }
    let calendars = load_member_calendars(dir, bodies.first().map(|(_, b)| b), &mut errors);
    let Some((_, body)) = bodies.into_iter().next() else {
        if body_declared {
            return Err(errors);
        }
        errors.0.push(DataError {
            file: dir.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message: "no body file (kind = \"body\") found".into(),
        });
        return Err(errors);
    };
    if !errors.0.is_empty() {
        return Err(errors);
    }
    Ok(Catalog {
        dir: dir.to_path_buf(),
        body,
        procedures,
        calendars,
    })
}

/// The calendars in `dir/calendars`; every Member Country must have one.
fn load_member_calendars(dir: &Path, body: Option<&Body>, errors: &mut DataErrors) -> Calendars {
    let cal_dir = dir.join("calendars");
    let calendars = match calendars::load_calendars(&cal_dir) {
        Ok(c) => c,
        Err(e) => {
            errors.0.extend(e.0);
            return Calendars::default();
        }
    };
    for member in body.map(Body::member_codes).unwrap_or_default() {
        if calendars.get(member).is_none() {
            errors.0.push(DataError {
                file: cal_dir.clone(),
                line: 0,
                column: 0,
                field: String::new(),
                message: format!("no holiday calendar for Member Country {member}"),
            });
        }
    }
    calendars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        days: toml::Spanned<u32>,
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let src = SourceFile::new("w/x.toml", "name = \"a\"\ndays = \"five\"\n");
        let err = src.parse_toml::<Sample>().unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(err.to_string().starts_with("w/x.toml:2:"), "{err}");
    }

    #[test]
    fn spans_become_lines_and_fields() {
        let src = SourceFile::new("w/x.toml", "name = \"a\"\n\ndays = 0\n");
        let s: Sample = src.parse_toml().unwrap();
        let err = src.error_at(s.days.span(), "days", "must be at least 1");
        assert_eq!(
            err.to_string(),
            "w/x.toml:3:8: field `days`: must be at least 1"
        );
    }

    #[test]
    fn a_value_with_a_control_character_is_refused_naming_field_and_line() {
        let src = SourceFile::new("w/x.toml", "days = 5\nname = \"Día\\nBcc: x\"\n");
        let err = src.parse_toml::<Sample>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "w/x.toml:2:8: field `name`: contains a line break (U+000A) at character 4; \
             a value here must be one line of text"
        );
        let src = SourceFile::new(
            "w/h.toml",
            "[[holiday]]\nname = \"\"\"\nNew Year\\u0000\"\"\"\n",
        );
        let err = src.parse_toml::<toml::Table>().unwrap_err();
        assert_eq!(err.field, "holiday[0].name", "{err}");
        assert!(err.message.contains("NUL"), "{err}");
        // A tab in a comment or between values is no value: the file loads.
        let src = SourceFile::new("w/x.toml", "name = \"a\"\t# note\ndays = 1\n");
        assert!(src.parse_toml::<Sample>().is_ok());
    }

    #[test]
    fn a_broken_file_is_not_also_reported_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.toml"), "kind = \"body\"\nformat = 1\n").unwrap();
        std::fs::write(
            dir.path().join("p.toml"),
            "kind = \"procedure\"\nformat = 1\n",
        )
        .unwrap();
        let errors = load_catalog(dir.path()).unwrap_err().to_string();
        assert!(errors.contains("b.toml"), "{errors}");
        assert!(errors.contains("p.toml"), "{errors}");
        assert!(!errors.contains("no body file"), "{errors}");
        assert!(!errors.contains("no procedure file"), "{errors}");
    }
}
