//! Loads the body's data file (`kind = "body"`): members, observers, presidency rotation.

use std::collections::{BTreeMap, BTreeSet};

use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;

use super::{DataErrors, SourceFile};
use crate::domain::body::{Body, Member, Observer};
use crate::domain::{CountryCode, Language};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBody {
    format: Spanned<u32>,
    #[allow(dead_code)]
    kind: String,
    code: Spanned<String>,
    name: String,
    secretariat_time_zone: Spanned<String>,
    members: Vec<RawMember>,
    #[serde(default)]
    observer_countries: Vec<RawObserver>,
    #[serde(default)]
    observer_organizations: Vec<RawObserver>,
    #[serde(default)]
    presidency: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    code: Spanned<String>,
    names: BTreeMap<Spanned<String>, String>,
    time_zone: Spanned<String>,
    languages: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObserver {
    code: String,
    name: String,
    since: Option<i32>,
}

fn time_zone(
    src: &SourceFile,
    value: &Spanned<String>,
    field: &str,
    errors: &mut DataErrors,
) -> Option<Tz> {
    match value.get_ref().parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            errors.0.push(src.error_at(
                value.span(),
                field,
                format!(
                    "`{}` is not an IANA time zone such as America/Tegucigalpa",
                    value.get_ref()
                ),
            ));
            None
        }
    }
}

/// Parses and validates a body file, reporting every problem found.
pub fn load_body(src: &SourceFile) -> Result<Body, DataErrors> {
    let raw: RawBody = src.parse_toml()?;
    let mut errors = DataErrors::default();
    if *raw.format.get_ref() != 1 {
        errors
            .0
            .push(src.error_at(raw.format.span(), "format", "only format 1 is understood"));
    }
    let code = raw.code.get_ref().trim().to_string();
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        errors
            .0
            .push(src.error_at(raw.code.span(), "code", "must be letters only, e.g. RCM"));
    }
    let secretariat_time_zone = time_zone(
        src,
        &raw.secretariat_time_zone,
        "secretariat_time_zone",
        &mut errors,
    );

    let mut members = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, m) in raw.members.iter().enumerate() {
        let field = |f: &str| format!("members[{i}].{f}");
        let code = match CountryCode::parse(m.code.get_ref()) {
            Ok(c) => c,
            Err(e) => {
                errors
                    .0
                    .push(src.error_at(m.code.span(), &field("code"), e.to_string()));
                continue;
            }
        };
        if !seen.insert(code) {
            errors.0.push(src.error_at(
                m.code.span(),
                &field("code"),
                format!("{code} is listed twice"),
            ));
        }
        let tz = time_zone(src, &m.time_zone, &field("time_zone"), &mut errors);
        let mut names = BTreeMap::new();
        for (lang, name) in &m.names {
            match lang.get_ref().parse::<Language>() {
                Ok(l) => {
                    names.insert(l, name.clone());
                }
                Err(e) => errors
                    .0
                    .push(src.error_at(lang.span(), &field("names"), e.to_string())),
            }
        }
        if !names.contains_key(&Language::En) {
            errors.0.push(src.error_at(
                m.code.span(),
                &field("names"),
                "an English name (`en`) is required",
            ));
        }
        let mut languages = Vec::new();
        for l in m.languages.get_ref() {
            match l.parse::<Language>() {
                Ok(l) => languages.push(l),
                Err(e) => errors.0.push(src.error_at(
                    m.languages.span(),
                    &field("languages"),
                    e.to_string(),
                )),
            }
        }
        if m.languages.get_ref().is_empty() {
            errors.0.push(src.error_at(
                m.languages.span(),
                &field("languages"),
                "at least one language is required",
            ));
        }
        if let Some(time_zone) = tz {
            members.push(Member {
                code,
                names,
                time_zone,
                languages,
            });
        }
    }
    if raw.members.is_empty() {
        errors
            .0
            .push(src.error("members", "a body needs at least one member"));
    }

    let mut presidency = BTreeMap::new();
    for (year, country) in &raw.presidency {
        let field = format!("presidency.{}", year.get_ref());
        let Ok(y) = year.get_ref().parse::<i32>() else {
            errors
                .0
                .push(src.error_at(year.span(), &field, "the key must be a year such as 2016"));
            continue;
        };
        match CountryCode::parse(country.get_ref()) {
            Ok(c) if seen.contains(&c) => {
                presidency.insert(y, c);
            }
            Ok(c) => errors.0.push(src.error_at(
                country.span(),
                &field,
                format!("{c} is not a Member Country; only members hold the presidency"),
            )),
            Err(e) => errors
                .0
                .push(src.error_at(country.span(), &field, e.to_string())),
        }
    }

    let observer = |o: &RawObserver| Observer {
        code: o.code.clone(),
        name: o.name.clone(),
        since: o.since,
    };
    if !errors.0.is_empty() {
        return Err(errors);
    }
    Ok(Body {
        code: code.to_ascii_uppercase(),
        name: raw.name,
        secretariat_time_zone: secretariat_time_zone.expect("checked above"),
        members,
        observer_countries: raw.observer_countries.iter().map(observer).collect(),
        observer_organizations: raw.observer_organizations.iter().map(observer).collect(),
        presidency,
    })
}
