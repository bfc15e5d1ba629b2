//! The answer page's words, read from `templates/answer/strings.toml` (compiled in):
//! one table per phrase with its Spanish, English and French side by side, so that
//! a translator edits a file, not the program.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::Value;

use crate::domain::Language;

const SOURCE: &str = include_str!("../../../templates/answer/strings.toml");

type Table = BTreeMap<String, [String; 3]>;

/// The phrases, parsed once; an error names the phrase at fault.
static STRINGS: LazyLock<Result<Table, String>> = LazyLock::new(|| parse(SOURCE));

fn parse(source: &str) -> Result<Table, String> {
    let doc: toml::Table =
        toml::from_str(source).map_err(|e| format!("templates/answer/strings.toml: {e}"))?;
    let mut out = Table::new();
    for (key, value) in doc {
        let phrase = value.as_table().ok_or_else(|| {
            format!("templates/answer/strings.toml: `{key}` must be a table of es, en and fr")
        })?;
        let mut three: [String; 3] = Default::default();
        for lang in Language::ALL {
            three[index(lang)] = phrase
                .get(lang.as_str())
                .and_then(|v| v.as_str())
                .ok_or_else(|| {
                    format!("templates/answer/strings.toml: `{key}` has no `{lang}` text")
                })?
                .to_string();
        }
        if let Some(extra) = phrase
            .keys()
            .find(|k| Language::ALL.iter().all(|l| l.as_str() != k.as_str()))
        {
            return Err(format!(
                "templates/answer/strings.toml: `{key}` has `{extra}`, which is not es, en or fr"
            ));
        }
        out.insert(key, three);
    }
    Ok(out)
}

fn index(lang: Language) -> usize {
    match lang {
        Language::Es => 0,
        Language::En => 1,
        Language::Fr => 2,
    }
}

/// Checks that the phrases parse, each in the three languages (`puebla check`, tests).
pub fn check() -> Result<(), String> {
    STRINGS.as_ref().map(|_| ()).map_err(Clone::clone)
}

/// The phrase `key` in `lang`; the key itself when it is missing (the tests render
/// every page, so a missing phrase is found there, never shown blank).
pub fn t(lang: Language, key: &str) -> String {
    match STRINGS.as_ref() {
        Ok(table) => table
            .get(key)
            .map_or_else(|| key.to_string(), |three| three[index(lang)].clone()),
        Err(_) => key.to_string(),
    }
}

/// The phrase `key` in `lang` with each `{name}` replaced by its value.
pub fn fill(lang: Language, key: &str, values: &[(&str, &str)]) -> String {
    let mut s = t(lang, key);
    for (name, value) in values {
        s = s.replace(&format!("{{{name}}}"), value);
    }
    s
}

/// Every phrase in `lang`, for the templates (`{{t.key}}`).
pub fn all(lang: Language) -> Value {
    match STRINGS.as_ref() {
        Ok(table) => Value::Object(
            table
                .iter()
                .map(|(k, three)| (k.clone(), Value::String(three[index(lang)].clone())))
                .collect(),
        ),
        Err(_) => Value::Object(Default::default()),
    }
}

/// A size as a person reads it in `lang`: `7,4 MB`, `120 KB`, `512 bytes`.
pub fn size(lang: Language, bytes: usize) -> String {
    const KB: f64 = 1024.0;
    let b = bytes as f64;
    let (key, n) = if b >= KB * KB {
        ("size_mb", format!("{:.1}", b / (KB * KB)))
    } else if b >= KB {
        ("size_kb", format!("{:.0}", (b / KB).ceil()))
    } else {
        ("size_bytes", bytes.to_string())
    };
    let n = match lang {
        Language::Es | Language::Fr => n.replace('.', ","),
        Language::En => n,
    };
    fill(lang, key, &[("n", &n)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phrase_has_the_three_languages_and_the_same_placeholders() {
        check().unwrap();
        let table = STRINGS.as_ref().unwrap();
        assert!(table.len() > 50, "{}", table.len());
        let names = |s: &str| -> Vec<String> {
            let mut v: Vec<String> = s
                .split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_string()))
                .collect();
            v.sort();
            v
        };
        for (key, three) in table {
            for text in three {
                assert!(!text.trim().is_empty(), "{key}");
            }
            assert_eq!(names(&three[0]), names(&three[1]), "{key}: es and en");
            assert_eq!(names(&three[0]), names(&three[2]), "{key}: es and fr");
        }
    }

    #[test]
    fn a_phrase_without_one_language_is_refused_by_name() {
        let e = parse("[greeting]\nes = \"Hola\"\nen = \"Hello\"\n").unwrap_err();
        assert!(e.contains("`greeting` has no `fr`"), "{e}");
        let e = parse("[greeting]\nes = \"a\"\nen = \"b\"\nfr = \"c\"\npt = \"d\"\n").unwrap_err();
        assert!(e.contains("`pt`"), "{e}");
    }

    #[test]
    fn placeholders_are_filled_and_sizes_read_in_each_language() {
        assert_eq!(
            fill(
                Language::En,
                "closed_round",
                &[("round", "2"), ("date", "today")]
            ),
            "Round 2 closed on today. This page no longer takes answers for it."
        );
        assert_eq!(size(Language::En, 7_800_000), "7.4 MB");
        assert_eq!(size(Language::Fr, 7_800_000), "7,4 Mo");
        assert_eq!(size(Language::Es, 2048), "2 KB");
        assert_eq!(size(Language::Fr, 12), "12 octets");
        assert_eq!(t(Language::Fr, "lang_name"), "Français");
    }
}
