//! `GET /directory`: focal points and the presidency rotation.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::super::env::{redirect, Env};
use super::super::error::PageError;
use super::shared::{country_name, query_flash, Country, PageQuery};
use crate::http::SharedState;

/// `GET /directory`: focal points and the presidency rotation; forms for the TS.
pub(crate) async fn directory_page(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(query): PageQuery,
) -> Response {
    let env = Env::new(&state, &headers, &query, "/directory").await;
    if env.session.is_none() {
        return redirect("/");
    }
    let result = directory_view(&state, &env, &query).await;
    result.unwrap_or_else(|e| env.error(e))
}

pub(crate) async fn directory_view(
    state: &SharedState,
    env: &Env,
    query: &BTreeMap<String, String>,
) -> Result<Response, PageError> {
    let store = &state.store;
    let bouncing = store.bouncing_focal_points().await?;
    let focal_points = store
        .focal_points(None, false)
        .await?
        .into_iter()
        .map(|f| FocalPointView {
            country_name: country_name(state, env.lang, f.country),
            bouncing: bouncing.contains(&f.id),
            country: f.country.to_string(),
            name: f.name,
            email: f.email.to_string(),
            language: f.language.as_str().to_string(),
            active: f.active,
        })
        .collect();
    let body = state.engine.body().await?;
    let rotation = body
        .presidency
        .iter()
        .map(|(year, code)| YearView {
            year: *year,
            code: code.to_string(),
            name: country_name(state, env.lang, *code),
        })
        .collect();
    let members = body
        .members
        .iter()
        .map(|m| Country {
            code: m.code.to_string(),
            name: m.name(env.lang.language()).to_string(),
        })
        .collect();
    env.page(
        StatusCode::OK,
        "directory",
        DirectoryPage {
            flash: query_flash(env, query),
            focal_points,
            rotation,
            members,
        },
    )
}

/// `templates/dashboard/directory.hbs`'s data.
#[derive(Serialize)]
struct DirectoryPage {
    flash: Option<String>,
    focal_points: Vec<FocalPointView>,
    rotation: Vec<YearView>,
    members: Vec<Country>,
}

#[derive(Serialize)]
struct FocalPointView {
    country: String,
    country_name: String,
    name: String,
    email: String,
    language: String,
    active: bool,
    bouncing: bool,
}

/// One year of the presidency rotation.
#[derive(Serialize)]
struct YearView {
    year: i32,
    code: String,
    name: String,
}
