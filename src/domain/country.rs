use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An ISO 3166-1 alpha-2 country code such as `HN`, always upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode([u8; 2]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a country code: expected two letters such as HN or MX")]
pub struct InvalidCountryCode(pub String);

impl CountryCode {
    pub fn parse(s: &str) -> Result<Self, InvalidCountryCode> {
        let t = s.trim();
        let b = t.as_bytes();
        if b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic) {
            Ok(Self([b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()]))
        } else {
            Err(InvalidCountryCode(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl FromStr for CountryCode {
    type Err = InvalidCountryCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for CountryCode {
    type Error = InvalidCountryCode;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<CountryCode> for String {
    fn from(c: CountryCode) -> String {
        c.as_str().to_string()
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

crate::named_enum! {
    custom_from_str;
    /// The languages notices are written in.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Language {
        Es => "es",
        En => "en",
        Fr => "fr",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a supported language: expected es, en or fr")]
pub struct InvalidLanguage(pub String);

/// Reads a language as people write it: any case, and the English, Spanish or
/// French name or three-letter code as well as the two-letter one.
impl FromStr for Language {
    type Err = InvalidLanguage;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "es" | "spa" | "spanish" | "español" => Ok(Language::Es),
            "en" | "eng" | "english" => Ok(Language::En),
            "fr" | "fra" | "french" | "français" => Ok(Language::Fr),
            _ => Err(InvalidLanguage(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_are_normalised_and_checked() {
        assert_eq!(CountryCode::parse("hn").unwrap().as_str(), "HN");
        assert!(CountryCode::parse("HND").is_err());
        assert!(CountryCode::parse("H1").is_err());
        assert!(CountryCode::parse("").is_err());
    }

    #[test]
    fn languages_parse_from_codes_and_names() {
        assert_eq!("ES".parse::<Language>().unwrap(), Language::Es);
        assert_eq!("français".parse::<Language>().unwrap(), Language::Fr);
        assert!("pt".parse::<Language>().is_err());
    }
}
