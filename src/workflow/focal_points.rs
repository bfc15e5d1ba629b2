//! Reads a focal point list for `puebla focal-points import`: TOML or CSV.

use serde::Deserialize;
use toml::Spanned;

use super::{DataError, DataErrors, SourceFile};
use crate::domain::body::Body;
use crate::domain::focal_point::FocalPointEmail;
use crate::domain::{CountryCode, Language};

/// One validated row of an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FocalPointEntry {
    pub country: CountryCode,
    pub name: String,
    pub email: FocalPointEmail,
    pub language: Language,
    pub active: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    focal_point: Vec<Spanned<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    country: String,
    name: String,
    email: String,
    language: Option<String>,
    active: Option<bool>,
}

/// Parses `src` as TOML (`[[focal_point]]` tables) or, for a `.csv` file, as CSV
/// with the header `country,name,email,language,active`.
pub fn parse_focal_points(
    src: &SourceFile,
    body: &Body,
) -> Result<Vec<FocalPointEntry>, DataErrors> {
    let is_csv = src
        .path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let rows: Vec<(usize, RawEntry)> = if is_csv {
        parse_csv(src)?
    } else {
        let raw: RawFile = src.parse_toml()?;
        raw.focal_point
            .into_iter()
            .map(|e| (src.line_col(e.span().start).0, e.into_inner()))
            .collect()
    };
    let mut errors = DataErrors::default();
    let mut out = Vec::new();
    for (line, row) in rows {
        let err = |field: &str, message: String| DataError {
            file: src.path.clone(),
            line,
            column: 1,
            field: field.to_string(),
            message,
        };
        let country = match CountryCode::parse(&row.country) {
            Ok(c) if body.is_member(c) => Some(c),
            Ok(c) => {
                errors.0.push(err(
                    "country",
                    format!("{c} is not a Member Country; observers have no focal points here"),
                ));
                None
            }
            Err(e) => {
                errors.0.push(err("country", e.to_string()));
                None
            }
        };
        let email = FocalPointEmail::parse(&row.email)
            .map_err(|e| errors.0.push(err("email", e.to_string())))
            .ok();
        let language = match row.language.as_deref().filter(|l| !l.trim().is_empty()) {
            Some(l) => l
                .parse::<Language>()
                .map_err(|e| errors.0.push(err("language", e.to_string())))
                .ok(),
            None => country
                .and_then(|c| body.member(c).ok())
                .map(|m| m.default_language()),
        };
        let name = crate::domain::input::name("name", &row.name)
            .map_err(|e| errors.0.push(err("name", e.problem)))
            .ok();
        if let (Some(country), Some(email), Some(language), Some(name)) =
            (country, email, language, name)
        {
            out.push(FocalPointEntry {
                country,
                name,
                email,
                language,
                active: row.active.unwrap_or(true),
            });
        }
    }
    if errors.0.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn parse_csv(src: &SourceFile) -> Result<Vec<(usize, RawEntry)>, DataErrors> {
    let mut lines = src
        .text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let Some((_, header)) = lines.next() else {
        return Ok(vec![]);
    };
    let header: Vec<String> = split_csv(header)
        .into_iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(c), Some(n), Some(e)) = (col("country"), col("name"), col("email")) else {
        return Err(src
            .error(
                "header",
                "the first line must name the columns country,name,email[,language,active]",
            )
            .into());
    };
    let (l, a) = (col("language"), col("active"));
    let mut errors = DataErrors::default();
    let mut rows = Vec::new();
    for (i, line) in lines {
        let cells = split_csv(line);
        let get = |idx: Option<usize>| idx.and_then(|i| cells.get(i)).map(|s| s.trim().to_string());
        let active = match get(a).as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("true") | Some("yes") | Some("1") => Some(true),
            Some("false") | Some("no") | Some("0") => Some(false),
            Some(other) => {
                errors.0.push(DataError {
                    file: src.path.clone(),
                    line: i + 1,
                    column: 1,
                    field: "active".into(),
                    message: format!("`{other}` is not true or false"),
                });
                continue;
            }
        };
        rows.push((
            i + 1,
            RawEntry {
                country: get(Some(c)).unwrap_or_default(),
                name: get(Some(n)).unwrap_or_default(),
                email: get(Some(e)).unwrap_or_default(),
                language: get(l),
                active,
            },
        ));
    }
    if errors.0.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// Splits one CSV line, honouring double quotes and doubled quotes inside them.
fn split_csv(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match (ch, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(std::mem::take(&mut cell)),
            (ch, _) => cell.push(ch),
        }
    }
    cells.push(cell);
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_honour_quotes() {
        assert_eq!(
            split_csv(r#"HN,"Pérez, Ana","a@example.org""#),
            vec!["HN", "Pérez, Ana", "a@example.org"]
        );
        assert_eq!(
            split_csv(r#"a,"say ""hi""",c"#),
            vec!["a", "say \"hi\"", "c"]
        );
    }
}
