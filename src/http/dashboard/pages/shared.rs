//! What several pages show alike: times in the presidency's zone, working days
//! left, country names, states with their symbols, answers to review, diffs.

use std::collections::BTreeMap;

use axum::extract::Query;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Serialize;

use super::super::env::Env;
use super::super::i18n::{label, tr, Lang};
use crate::domain::consultation::{Consultation, Context, Position};
use crate::domain::CountryCode;
use crate::http::access;
use crate::http::SharedState;
use crate::report::{self, CountryState};

/// A symbol beside each state's label, so the matrix reads without colour too.
pub(crate) fn state_symbol(s: CountryState) -> &'static str {
    match s {
        CountryState::NotConsulted => "·",
        CountryState::Notified => "✉",
        CountryState::Delivered => "✉✓",
        CountryState::Bounced => "⚠",
        CountryState::AutoReplied => "↩",
        CountryState::NoObjection => "✓",
        CountryState::Objection => "✗",
        CountryState::Comments => "✎",
        CountryState::NoAnswer => "–",
        CountryState::Late => "⏱",
    }
}

pub(crate) fn position_state(p: Position) -> CountryState {
    match p {
        Position::NoObjection => CountryState::NoObjection,
        Position::Objection => CountryState::Objection,
        Position::Comments => CountryState::Comments,
    }
}

pub(crate) type PageQuery = Query<BTreeMap<String, String>>;

/// The time as the PPT's staff read it: in the presidency's time zone.
pub(crate) fn local_time(tz: Option<Tz>, at: DateTime<Utc>) -> String {
    match tz {
        Some(tz) => at
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
        None => at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

pub(crate) fn presidency_tz(state: &SharedState, c: &Consultation) -> Option<Tz> {
    state
        .engine
        .catalog()
        .body
        .member(c.presidency)
        .ok()
        .map(|m| m.time_zone)
}

/// Working days counted once per (calendar countries, today, last day) within one
/// page: the home page lists every open consultation, and most share a few
/// deadlines and calendars. Lives as long as the request, so it cannot go stale.
pub(crate) type WorkingDaysMemo =
    std::collections::HashMap<(Vec<CountryCode>, NaiveDate, NaiveDate), u32>;

/// The working days left in the open round after today, under the procedure's
/// calendar policy (`None`: no open round, or the calendars cannot say).
pub(crate) fn working_days_left(state: &SharedState, c: &Consultation) -> Option<TimeLeft> {
    working_days_left_memo(state, c, &mut WorkingDaysMemo::new())
}

pub(crate) fn working_days_left_memo(
    state: &SharedState,
    c: &Consultation,
    memo: &mut WorkingDaysMemo,
) -> Option<TimeLeft> {
    let round = c.rounds.last().filter(|r| r.is_open())?;
    let catalog = state.engine.catalog();
    let ctx = Context {
        procedure: catalog.procedure(&c.procedure)?,
        body: &catalog.body,
        calendars: &catalog.calendars,
    };
    let tz = presidency_tz(state, c)?;
    let now = state.clock.now();
    if round.deadline <= now {
        return Some(TimeLeft {
            days: 0,
            passed: true,
            last_day: false,
            one: None,
        });
    }
    let today = now.with_timezone(&tz).date_naive();
    let last = round.deadline.with_timezone(&tz).date_naive();
    let key = (ctx.calendar_countries(c), today, last);
    let days = match memo.get(&key) {
        Some(days) => *days,
        None => {
            let days = catalog
                .calendars
                .working_days_between(&key.0, today, last)
                .ok()?;
            memo.insert(key, days);
            days
        }
    };
    Some(TimeLeft {
        days,
        passed: false,
        last_day: days == 0,
        one: Some(days == 1),
    })
}

/// The working days left in a round, as the pages show them.
#[derive(Debug, Serialize)]
pub(crate) struct TimeLeft {
    days: u32,
    passed: bool,
    last_day: bool,
    /// Absent once the deadline has passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    one: Option<bool>,
}

pub(crate) fn country_name(state: &SharedState, lang: Lang, code: CountryCode) -> String {
    state
        .engine
        .catalog()
        .body
        .member(code)
        .map(|m| m.name(lang.language()).to_string())
        .unwrap_or_else(|_| code.to_string())
}

/// The message after an action (`?done=ACTION`), for the pages' `flash`.
pub(crate) fn query_flash(env: &Env, query: &BTreeMap<String, String>) -> Option<String> {
    query
        .get("done")
        .filter(|a| access::actions().any(|name| name == a.as_str()))
        .map(|a| format!("{}: {}", env.t("done"), env.t(&format!("act_{a}"))))
}

/// A country as the pages' lists and selects show it.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Country {
    pub(crate) code: String,
    pub(crate) name: String,
}

/// Whether `country`'s answer in round `round` of `c` is one to review.
pub(crate) fn to_review_here(c: &Consultation, round: u32, country: CountryCode) -> bool {
    c.rounds.last().is_some_and(|r| r.number == round)
        && c.answers_to_review().iter().any(|a| a.country == country)
}

/// An answer to review as the pages show it, with what its review forms carry.
pub(crate) fn review_item_view(
    state: &SharedState,
    lang: Lang,
    tz: Option<Tz>,
    i: &report::ReviewItem,
) -> ReviewItemView {
    let s = position_state(i.position);
    let others = [
        Position::NoObjection,
        Position::Objection,
        Position::Comments,
    ]
    .iter()
    .filter(|p| **p != i.position)
    .map(|p| Choice {
        value: p.as_str(),
        label: label(lang, "state", p.as_str()),
    })
    .collect();
    ReviewItemView {
        reference: i.reference.clone(),
        round: i.round,
        country: i.country.to_string(),
        country_name: country_name(state, lang, i.country),
        position: i.position.as_str(),
        state: s.as_str(),
        label: label(lang, "state", s.as_str()),
        symbol: state_symbol(s),
        received: local_time(tz, i.received_at),
        received_at: i.received_at.to_rfc3339(),
        reasons: i
            .reasons
            .iter()
            .map(|r| tr(lang, &format!("review_{}", r.as_str())))
            .collect(),
        reading: i.reading.clone(),
        from: i.from.clone(),
        conflict: i.conflict.as_ref().map(|k| ConflictView {
            from: k
                .from
                .clone()
                .unwrap_or_else(|| tr(lang, "entered_by_staff")),
            label: label(lang, "state", k.position.as_str()),
            received: local_time(tz, k.received_at),
        }),
        text: i.text.clone(),
        blocks_decision: i.blocks_decision,
        others,
    }
}

/// An answer to review as the home and consultation pages show it.
#[derive(Debug, Serialize)]
pub(crate) struct ReviewItemView {
    reference: String,
    round: u32,
    country: String,
    country_name: String,
    position: &'static str,
    state: &'static str,
    label: String,
    symbol: &'static str,
    received: String,
    received_at: String,
    reasons: Vec<String>,
    reading: Option<String>,
    from: Option<String>,
    conflict: Option<ConflictView>,
    text: String,
    blocks_decision: bool,
    others: Vec<Choice>,
}

/// The earlier, different answer of another focal point of the country.
#[derive(Debug, Serialize)]
pub(crate) struct ConflictView {
    from: String,
    label: String,
    received: String,
}

/// A value a form's select offers, with its label.
#[derive(Debug, Serialize)]
pub(crate) struct Choice {
    pub(crate) value: &'static str,
    pub(crate) label: String,
}

/// A unified diff as lines with a class each (`add`, `del`, `hunk`, `ctx`).
pub(crate) fn diff_lines(diff: &str) -> Vec<DiffLine> {
    diff.lines()
        .map(|line| {
            let class = if line.starts_with("+++") || line.starts_with("---") {
                "head"
            } else if line.starts_with('+') {
                "add"
            } else if line.starts_with('-') {
                "del"
            } else if line.starts_with("@@") {
                "hunk"
            } else {
                "ctx"
            };
            DiffLine {
                class,
                line: line.to_string(),
            }
        })
        .collect()
}

/// A line of a unified diff with its class.
#[derive(Debug, Serialize)]
pub(crate) struct DiffLine {
    class: &'static str,
    line: String,
}

pub(crate) fn consultation_path(reference: &str) -> String {
    format!(
        "/consultations/{}",
        utf8_percent_encode(reference, NON_ALPHANUMERIC)
    )
}
