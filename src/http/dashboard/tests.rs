//! Unit tests of the dashboard's parts.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::{header, HeaderMap};

use super::actions::offered::CONSULTATION_ACTIONS;
use super::actions::parse::{parse_action, Action};
use super::env::{cookie, form, LANG_COOKIE};
use super::error::PageError;
use super::i18n::{label, tr, Lang};
use crate::domain::input;
use crate::http::access::{self, Target, ACCESS};
use crate::http::session::SESSION_COOKIE;
use crate::http::Role;
use crate::report::CountryState;

#[test]
fn every_page_parses_and_every_label_has_a_phrase() {
    super::check_templates().unwrap();
    for s in CountryState::ALL {
        assert_ne!(label(Lang::Es, "state", s.as_str()), s.as_str());
    }
    for a in access::actions() {
        assert_ne!(tr(Lang::En, &format!("act_{a}")), format!("act_{a}"));
    }
}

/// The roles of the API's routes and of the dashboard's actions come from one table:
/// every route and every action has exactly one entry, and no entry names nothing.
#[test]
fn every_route_and_action_has_exactly_one_role() {
    let entries = |target: Target| ACCESS.iter().filter(|(t, _)| *t == target).count();
    let routes = crate::http::route_table();
    for (spec, _) in &routes {
        let target = Target::Route(spec.method, spec.path);
        assert_eq!(entries(target), 1, "{target:?}");
    }
    let no_fields = BTreeMap::new();
    for (target, _) in ACCESS {
        match target {
            Target::Route(method, path) => assert!(
                routes
                    .iter()
                    .any(|(s, _)| s.method == *method && s.path == *path),
                "{target:?} is no route"
            ),
            Target::Action(name) => {
                assert_eq!(entries(*target), 1, "{target:?}");
                // Every action in the table is one the form parser knows.
                if let Err(PageError::Invalid(m)) = parse_action(name, &no_fields) {
                    assert!(!m.starts_with("action:"), "{name}: {m}");
                }
            }
        }
    }
    // Every action a consultation's page can offer is in the table.
    for name in CONSULTATION_ACTIONS {
        assert!(access::action_role(name).is_some(), "{name}");
    }
    // A route missing from the table needs an administrator, never nothing.
    assert_eq!(access::route_role("GET", "/nowhere"), Some(Role::Admin));
}

#[test]
fn cookies_are_found_by_name() {
    let mut h = HeaderMap::new();
    h.insert(header::COOKIE, "a=1; puebla_lang=es".parse().unwrap());
    assert_eq!(cookie(&h, LANG_COOKIE), Some("es"));
    assert_eq!(cookie(&h, SESSION_COOKIE), None);
}

#[test]
fn typed_values_are_refused_before_the_confirmation_naming_the_field() {
    let fields = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let long_title = "x".repeat(input::MAX_TITLE_CHARS + 1);
    for (kind, pairs, field) in [
        ("start", vec![("title", "A\nB"), ("text", "t")], "title"),
        (
            "start",
            vec![("title", long_title.as_str()), ("text", "t")],
            "title",
        ),
        (
            "start",
            vec![("title", "A"), ("text", "t"), ("year", "10000")],
            "year",
        ),
        ("start", vec![("title", "A"), ("text", "t\u{0}")], "text"),
        (
            "extend",
            vec![
                ("reference", "RCM-2027-001"),
                ("working_days", "61"),
                ("reason", "r"),
            ],
            "working_days",
        ),
        (
            "withdraw",
            vec![("reference", "RCM-2027-001"), ("reason", "a\u{7}b")],
            "reason",
        ),
        (
            "troika",
            vec![
                ("reference", "RCM-2027-001"),
                ("country", "CR"),
                ("approve", "no"),
                ("comments", "c\u{1b}"),
            ],
            "comments",
        ),
        (
            "fp_add",
            vec![
                ("country", "HN"),
                ("name", "An\u{85}a"),
                ("email", "a@example.org"),
            ],
            "name",
        ),
        (
            "answer",
            vec![
                ("reference", "RCM-2027-001"),
                ("country", "HN"),
                ("position", "comments"),
                ("channel", "a\tb"),
            ],
            "channel",
        ),
        ("discard", vec![("id", "1"), ("reason", "a\rb")], "reason"),
        (
            "presidency",
            vec![("year", "99999"), ("country", "HN")],
            "year",
        ),
    ] {
        match parse_action(kind, &fields(&pairs)) {
            Err(PageError::Invalid(m)) => {
                assert!(m.starts_with(&format!("{field}: ")), "{kind}: {m}")
            }
            Err(other) => panic!("{kind}: {other}"),
            Ok(_) => panic!("{kind}: {pairs:?} accepted"),
        }
    }
    // A textarea's CR LF is a line break, kept as LF.
    let Ok(Action::Start { text, .. }) =
        parse_action("start", &fields(&[("title", "A"), ("text", "a\r\nb")]))
    else {
        panic!("a start");
    };
    assert_eq!(text, "a\nb");
}

#[test]
fn form_bodies_normalise_line_breaks() {
    let f = form(&Bytes::from_static(b"text=a%0D%0Ab&title=%3Cscript%3E"));
    assert_eq!(f["text"], "a\nb");
    assert_eq!(f["title"], "<script>");
}
