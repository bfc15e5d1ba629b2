//! The dashboard's languages and words. The words live in
//! `templates/dashboard/strings.toml` (compiled in): one table per phrase with its
//! Spanish and English side by side, so that a translator edits a file, not the
//! program. The table is parsed once and checked with the pages (`check`): every
//! phrase must have every language.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::Value;

use crate::domain::Language;

const SOURCE: &str = include_str!("../../../templates/dashboard/strings.toml");
const FILE: &str = "templates/dashboard/strings.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    Es,
}

impl Lang {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().get(..2)? {
            "en" => Some(Lang::En),
            "es" => Some(Lang::Es),
            _ => None,
        }
    }

    pub(crate) fn language(self) -> Language {
        match self {
            Lang::En => Language::En,
            Lang::Es => Language::Es,
        }
    }

    pub(crate) fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Es,
            Lang::Es => Lang::En,
        }
    }
}

impl Lang {
    pub(crate) const ALL: [Lang; 2] = [Lang::Es, Lang::En];
}

/// Each phrase in each language of [`Lang::ALL`], in that order.
type Table = BTreeMap<String, [String; 2]>;

/// The phrases, parsed once; an error names the phrase at fault.
static STRINGS: LazyLock<Result<Table, String>> = LazyLock::new(|| parse(SOURCE));

fn parse(source: &str) -> Result<Table, String> {
    let doc: toml::Table = toml::from_str(source).map_err(|e| format!("{FILE}: {e}"))?;
    let mut out = Table::new();
    for (key, value) in doc {
        let phrase = value
            .as_table()
            .ok_or_else(|| format!("{FILE}: `{key}` must be a table of es and en"))?;
        let mut texts: [String; 2] = Default::default();
        for lang in Lang::ALL {
            texts[index(lang)] = phrase
                .get(lang.code())
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{FILE}: `{key}` has no `{}` text", lang.code()))?
                .to_string();
        }
        if let Some(extra) = phrase
            .keys()
            .find(|k| Lang::ALL.iter().all(|l| l.code() != k.as_str()))
        {
            return Err(format!(
                "{FILE}: `{key}` has `{extra}`, which is not es or en"
            ));
        }
        out.insert(key, texts);
    }
    Ok(out)
}

fn index(lang: Lang) -> usize {
    match lang {
        Lang::Es => 0,
        Lang::En => 1,
    }
}

/// Checks that the phrases parse, each in every language (`check_templates`, tests).
pub(crate) fn check() -> Result<(), String> {
    STRINGS.as_ref().map(|_| ()).map_err(Clone::clone)
}

fn lookup(lang: Lang, key: &str) -> Option<&'static str> {
    let table = STRINGS.as_ref().ok()?;
    table.get(key).map(|texts| texts[index(lang)].as_str())
}

/// The phrase `key` in `lang`; the key itself when it is missing (the tests render
/// every page and check every label, so a missing phrase is found there).
pub(crate) fn tr(lang: Lang, key: &str) -> String {
    lookup(lang, key).unwrap_or(key).to_string()
}

/// A label for `prefix_name` (a stage, a state), or the raw name when it has none.
pub(crate) fn label(lang: Lang, prefix: &str, name: &str) -> String {
    let key = format!("{prefix}_{name}");
    lookup(lang, &key).map_or_else(|| name.to_string(), str::to_string)
}

/// Every phrase in `lang`, for the pages' `t` variable.
pub(crate) fn strings(lang: Lang) -> Value {
    match STRINGS.as_ref() {
        Ok(table) => Value::Object(
            table
                .iter()
                .map(|(k, texts)| (k.clone(), Value::String(texts[index(lang)].clone())))
                .collect(),
        ),
        Err(_) => Value::Object(Default::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phrase_has_every_language() {
        check().unwrap();
        assert!(STRINGS.as_ref().unwrap().len() > 150);
        for lang in Lang::ALL {
            assert!(!tr(lang, "app_title").is_empty());
        }
        assert_eq!(tr(Lang::Es, "nav_consultations"), "Consultas");
        assert_eq!(tr(Lang::En, "nav_consultations"), "Consultations");
        // A missing phrase, a missing language or a stray one is refused by name.
        let missing = parse("[a]\nes = \"x\"\n").unwrap_err();
        assert!(missing.contains("`a` has no `en`"), "{missing}");
        let stray = parse("[a]\nes = \"x\"\nen = \"y\"\nfr = \"z\"\n").unwrap_err();
        assert!(stray.contains("`fr`"), "{stray}");
        let empty = parse("[a]\nes = \"\"\nen = \"y\"\n").unwrap_err();
        assert!(empty.contains("`a` has no `es`"), "{empty}");
    }

    #[test]
    fn languages_come_from_the_query_cookie_or_header() {
        assert_eq!(Lang::parse("es-HN"), Some(Lang::Es));
        assert_eq!(Lang::parse("en"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::parse("e"), None);
    }
}
