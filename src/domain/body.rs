//! The intergovernmental body: its Member Countries, observers and presidency rotation.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use serde::Serialize;

use super::{CountryCode, Language};

/// A Member Country: the only kind of participant that takes part in decisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    pub code: CountryCode,
    /// Names by language; English is always present.
    pub names: BTreeMap<Language, String>,
    pub time_zone: Tz,
    pub languages: Vec<Language>,
}

impl Member {
    pub fn name(&self, lang: Language) -> &str {
        self.names
            .get(&lang)
            .or_else(|| self.names.get(&Language::En))
            .map(String::as_str)
            .unwrap_or(self.code.as_str())
    }

    /// The language notices use when a focal point has not said otherwise.
    pub fn default_language(&self) -> Language {
        self.languages.first().copied().unwrap_or(Language::Es)
    }
}

/// An observer never votes and never receives closed-door texts unless the PPT authorizes a copy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observer {
    pub code: String,
    pub name: String,
    pub since: Option<i32>,
}

/// The body as described by its data file, plus the presidency years the TS set later.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Body {
    pub code: String,
    pub name: String,
    pub secretariat_time_zone: Tz,
    pub members: Vec<Member>,
    pub observer_countries: Vec<Observer>,
    pub observer_organizations: Vec<Observer>,
    /// Year → presidency pro tempore.
    pub presidency: BTreeMap<i32, CountryCode>,
}

/// The Troika of a year: current, former and (when designated) upcoming PPT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Troika {
    pub year: i32,
    pub current: CountryCode,
    pub former: Option<CountryCode>,
    pub upcoming: Option<CountryCode>,
}

impl Troika {
    /// Every distinct member of the Troika, the current PPT first.
    pub fn members(&self) -> Vec<CountryCode> {
        let mut out = vec![self.current];
        for c in [self.former, self.upcoming].into_iter().flatten() {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// The Troika members whose agreement the PPT needs: all but the PPT itself.
    pub fn reviewers(&self) -> Vec<CountryCode> {
        self.members()
            .into_iter()
            .filter(|c| *c != self.current)
            .collect()
    }

    /// A human description that says plainly when the Troika is incomplete.
    pub fn describe(&self) -> String {
        let former = self
            .former
            .map_or("not recorded".to_string(), |c| c.to_string());
        match self.upcoming {
            Some(up) => format!(
                "Troika {}: current {}, former {former}, upcoming {up}",
                self.year, self.current
            ),
            None => format!(
                "Troika {} (of {}; upcoming PPT not designated): current {}, former {former}",
                self.year,
                self.members().len(),
                self.current
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("{0} is not a Member Country of the body")]
    NotAMember(CountryCode),
    #[error("no presidency pro tempore is recorded for {0}; set it with `puebla presidency set {0} COUNTRY`")]
    NoPresidency(i32),
}

impl Body {
    pub fn member(&self, code: CountryCode) -> Result<&Member, BodyError> {
        self.members
            .iter()
            .find(|m| m.code == code)
            .ok_or(BodyError::NotAMember(code))
    }

    pub fn is_member(&self, code: CountryCode) -> bool {
        self.members.iter().any(|m| m.code == code)
    }

    pub fn member_codes(&self) -> Vec<CountryCode> {
        self.members.iter().map(|m| m.code).collect()
    }

    /// Adds or replaces the presidency of a year (the TS's `presidency set`).
    pub fn set_presidency(&mut self, year: i32, country: CountryCode) -> Result<(), BodyError> {
        self.member(country)?;
        self.presidency.insert(year, country);
        Ok(())
    }

    pub fn presidency_of(&self, year: i32) -> Result<CountryCode, BodyError> {
        self.presidency
            .get(&year)
            .copied()
            .ok_or(BodyError::NoPresidency(year))
    }

    /// The Troika of `year`, derived from the rotation.
    pub fn troika(&self, year: i32) -> Result<Troika, BodyError> {
        Ok(Troika {
            year,
            current: self.presidency_of(year)?,
            former: self.presidency.get(&(year - 1)).copied(),
            upcoming: self.presidency.get(&(year + 1)).copied(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(s: &str) -> CountryCode {
        CountryCode::parse(s).unwrap()
    }

    fn body() -> Body {
        let member = |code: &str| Member {
            code: cc(code),
            names: BTreeMap::from([(Language::En, code.to_string())]),
            time_zone: chrono_tz::America::Tegucigalpa,
            languages: vec![Language::Es],
        };
        Body {
            code: "RCM".into(),
            name: "Test".into(),
            secretariat_time_zone: chrono_tz::America::Costa_Rica,
            members: vec![member("MX"), member("HN"), member("PA")],
            observer_countries: vec![],
            observer_organizations: vec![],
            presidency: BTreeMap::from([(2015, cc("MX")), (2016, cc("HN"))]),
        }
    }

    #[test]
    fn troika_of_a_year_with_an_upcoming_ppt_has_three_members() {
        let t = body().troika(2015).unwrap();
        assert_eq!(t.current, cc("MX"));
        assert_eq!(t.upcoming, Some(cc("HN")));
        assert_eq!(t.reviewers(), vec![cc("HN")]);
    }

    #[test]
    fn troika_without_an_upcoming_ppt_is_a_troika_of_two_and_says_so() {
        let t = body().troika(2016).unwrap();
        assert_eq!(t.members(), vec![cc("HN"), cc("MX")]);
        assert!(
            t.describe().contains("upcoming PPT not designated"),
            "{}",
            t.describe()
        );
    }

    #[test]
    fn presidency_can_only_go_to_a_member() {
        let mut b = body();
        assert_eq!(
            b.set_presidency(2017, cc("AR")),
            Err(BodyError::NotAMember(cc("AR")))
        );
        b.set_presidency(2017, cc("PA")).unwrap();
        assert_eq!(b.troika(2016).unwrap().upcoming, Some(cc("PA")));
        assert_eq!(b.troika(2030), Err(BodyError::NoPresidency(2030)));
    }
}
