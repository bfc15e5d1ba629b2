//! `/api/focal-points` and `/api/presidency`: the directory of focal points and the
//! presidency rotation.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::{Extension, Json};

use super::shapes::*;
use crate::directory::{self, FocalPointInput};
use crate::domain::consultation::TransitionError;
use crate::domain::input;
use crate::engine::EngineError;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiJson};
use crate::http::SharedState;
use crate::workflow::SourceFile;

pub async fn list_focal_points(
    State(state): State<SharedState>,
    query: Result<Query<FocalPointQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<FocalPointOut>>> {
    let Query(q) = query?;
    let code = q
        .country
        .as_deref()
        .map(|c| country("country", c))
        .transpose()?;
    let rows = state.store.focal_points(code, !q.all).await?;
    Ok(Json(rows.into_iter().map(FocalPointOut::from).collect()))
}

pub async fn add_focal_point(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<FocalPointIn>,
) -> ApiResult<(StatusCode, Json<FocalPointOut>)> {
    let row = directory::add_focal_point(
        state.store.as_ref(),
        &state.engine.catalog().body,
        FocalPointInput {
            country: &body.country,
            name: &body.name,
            email: &body.email,
            language: body.language.as_deref(),
        },
        &caller.actor(),
        state.clock.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Imports a focal point list given as text (TOML, or CSV when `is_csv`): shared by
/// the API and the dashboard.
pub(crate) async fn import_text(
    state: &SharedState,
    text: String,
    is_csv: bool,
    actor: &str,
) -> ApiResult<directory::ImportSummary> {
    let name = if is_csv {
        "request.csv"
    } else {
        "request.toml"
    };
    let src = SourceFile::new(name, text);
    Ok(directory::import_focal_points(
        state.store.as_ref(),
        &state.engine.catalog().body,
        &src,
        actor,
        state.clock.now(),
    )
    .await?)
}

pub async fn import_focal_points(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: String,
) -> ApiResult<Json<ImportOut>> {
    let is_csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("csv"));
    let summary = import_text(&state, body, is_csv, &caller.actor()).await?;
    Ok(Json(ImportOut {
        added: summary.added,
        updated: summary.updated,
        unchanged: summary.unchanged,
    }))
}

pub async fn deactivate_focal_point(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(email): Path<String>,
) -> ApiResult<Json<FocalPointOut>> {
    let row = directory::deactivate_focal_point(
        state.store.as_ref(),
        &email,
        &caller.actor(),
        state.clock.now(),
    )
    .await?;
    Ok(Json(row.into()))
}

pub async fn clear_bouncing(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(email): Path<String>,
) -> ApiResult<Json<BouncingClearedOut>> {
    let cleared = directory::clear_bouncing(
        state.store.as_ref(),
        &email,
        &caller.actor(),
        state.clock.now(),
    )
    .await?;
    Ok(Json(BouncingClearedOut {
        focal_point: cleared.focal_point.into(),
        was_bouncing: cleared.was_bouncing,
    }))
}

// ---------------------------------------------------------------------------------
// Presidency

pub(crate) fn year(s: &str) -> ApiResult<i32> {
    Ok(input::year_text("year", s)?)
}

pub async fn presidency_rotation(
    State(state): State<SharedState>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    let body = state.engine.body().await?;
    Ok(Json(
        body.presidency
            .iter()
            .map(|(y, c)| (y.to_string(), c.to_string()))
            .collect(),
    ))
}

pub(crate) async fn troika_of(state: &SharedState, year: i32) -> ApiResult<TroikaOut> {
    let body = state.engine.body().await?;
    let t = body
        .troika(year)
        .map_err(|e| ApiError::NotFound(e.to_string()))?;
    Ok(TroikaOut {
        year,
        current: t.current.to_string(),
        former: t.former.map(|c| c.to_string()),
        upcoming: t.upcoming.map(|c| c.to_string()),
        members: t.members().len(),
        description: t.describe(),
    })
}

pub async fn presidency_year(
    State(state): State<SharedState>,
    Path(y): Path<String>,
) -> ApiResult<Json<TroikaOut>> {
    Ok(Json(troika_of(&state, year(&y)?).await?))
}

pub async fn set_presidency(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(y): Path<String>,
    ApiJson(body): ApiJson<PresidencyIn>,
) -> ApiResult<Json<TroikaOut>> {
    let y = year(&y)?;
    let code = country("country", &body.country)?;
    state
        .engine
        .set_presidency(y, code, &caller.actor())
        .await
        .map_err(|e| match e {
            EngineError::Transition(TransitionError::Body(b)) => ApiError::validation("country", b),
            other => other.into(),
        })?;
    Ok(Json(troika_of(&state, y).await?))
}
