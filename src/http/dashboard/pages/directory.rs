//! `GET /directory`: focal points and the presidency rotation.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::super::env::{redirect, Env};
use super::super::error::PageError;
use super::shared::{country_name, query_flash, PageQuery};
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
    let store = state.engine.store();
    let bouncing = store.bouncing_focal_points().await?;
    let focal_points: Vec<Value> = store
        .focal_points(None, false)
        .await?
        .into_iter()
        .map(|f| {
            json!({
                "country": f.country,
                "country_name": country_name(state, env.lang, f.country),
                "name": f.name,
                "email": f.email,
                "language": f.language.as_str(),
                "active": f.active,
                "bouncing": bouncing.contains(&f.id),
            })
        })
        .collect();
    let body = state.engine.body().await?;
    let rotation: Vec<Value> = body
        .presidency
        .iter()
        .map(|(year, code)| {
            json!({"year": year, "code": code.to_string(), "name": country_name(state, env.lang, *code)})
        })
        .collect();
    let members: Vec<Value> = body
        .members
        .iter()
        .map(|m| json!({"code": m.code.to_string(), "name": m.name(env.lang.language())}))
        .collect();
    env.page(
        StatusCode::OK,
        "directory",
        json!({
            "flash": query_flash(env, query),
            "focal_points": focal_points,
            "rotation": rotation,
            "members": members,
        }),
    )
}
