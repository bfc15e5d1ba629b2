//! The OpenAPI 3 document at `GET /api/openapi.json`. Paths, methods, roles and
//! success codes come from [`super::route_table`], the same table the router is
//! built from. The schemas of the API's response shapes are derived from their types
//! (`#[derive(ToSchema)]` in [`super::api`]); the others are written by hand below.

use axum::Json;
use serde_json::{json, Map, Value};
use utoipa::openapi::{schema::Schema, RefOr};
use utoipa::ToSchema;

use super::{api, route_table};
use crate::domain::consultation::Position;
use crate::report::CountryState;

pub async fn serve() -> Json<Value> {
    Json(document())
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (spec, _) in route_table() {
        let params: Vec<Value> = spec
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut responses = Map::new();
        let ok = match spec.ok.1 {
            Some(schema) => json!({
                "description": "success",
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
            }),
            None => {
                json!({"description": "success", "content": {"text/plain": {"schema": {"type": "string"}}}})
            }
        };
        responses.insert(spec.ok.0.to_string(), ok);
        let error = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        if spec.role().is_some() {
            responses.insert("401".into(), error("no valid bearer token"));
            responses.insert("403".into(), error("the token's role is not enough"));
        }
        if spec.path.contains('{') {
            responses.insert("404".into(), error("unknown reference"));
        }
        if spec.method != "GET" {
            responses.insert(
                "409".into(),
                error("not allowed in the current stage (`stage` names it), or a duplicate"),
            );
            responses.insert("422".into(), error("a value is invalid (`field` names it)"));
        }
        if spec.request == Some("RawMessage") {
            responses.insert(
                "200".into(),
                json!({"description": "stored before (same Message-ID and bytes, or the same bytes without one): its id and status only",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestResult"}}}}),
            );
            responses.insert("413".into(), error("the body is over 4 times the stored-message limit (PUEBLA_INBOUND_MAX_BYTES); below that a large message is stored truncated"));
            responses.insert(
                "415".into(),
                error("the Content-Type is not message/rfc822 or application/octet-stream"),
            );
        }
        if spec.path == "/api/inbound/{id}" {
            responses.insert(
                "200".into(),
                json!({"description": "the message; with ?raw=1 the raw message itself",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/InboundDetail"}},
                    "message/rfc822": {"schema": {"type": "string", "format": "binary"}}
                }}),
            );
        }
        if spec.path.ends_with("/attachments/{id}") {
            responses.insert(
                "200".into(),
                json!({"description": "the file's bytes, with its stored Content-Type, Content-Disposition: attachment and X-Content-Type-Options: nosniff",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}),
            );
        }
        if spec.path == "/readyz" {
            responses.insert("503".into(), json!({"description": "not ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ready"}}}}));
        }
        responses.insert("500".into(), error("unexpected; details in the server log"));
        let mut op = json!({
            "summary": spec.summary,
            "operationId": operation_id(spec.method, spec.path),
            "x-role": spec.role().map(|r| r.as_str()),
            "security": if spec.role().is_some() { json!([{"bearer": []}]) } else { json!([]) },
            "responses": responses,
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if let Some(request) = spec.request {
            let content = if request == "ImportBody" {
                json!({
                    "application/toml": {"schema": {"type": "string"}},
                    "text/csv": {"schema": {"type": "string"}}
                })
            } else if request == "RawMessage" {
                json!({
                    "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                })
            } else {
                json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{request}")}}})
            };
            op["requestBody"] = json!({"required": true, "content": content});
        }
        let item = paths
            .entry(spec.path.to_string())
            .or_insert_with(|| json!({}));
        item[spec.method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "puebla",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Written consultation procedure: status, metrics and JSON API. \
                Bearer tokens have the roles viewer < ppt < admin (each may do what the ones before it may), \
                and ingest, which may only POST /api/inbound (admin may too); \
                `x-role` on an operation names the least role it needs."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        }
    })
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.push_str(
            &seg.trim_matches(|c| c == '{' || c == '}')
                .replace(['-', '.'], "_"),
        );
    }
    id
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "additionalProperties": false, "properties": properties})
}

fn string() -> Value {
    json!({"type": "string"})
}

fn nullable(t: &str) -> Value {
    json!({"type": t, "nullable": true})
}

/// The named schemas; every name a route uses must be here (a test checks).
pub fn schemas() -> Value {
    let position = json!({"type": "string", "enum": ["no_objection", "objection", "comments"]});
    let attachments_in = json!({"type": "array", "items": {"$ref": "#/components/schemas/AttachmentIn"}, "description": "files attached to the text (limits: PUEBLA_ATTACHMENT_MAX_BYTES per file, PUEBLA_ATTACHMENTS_MAX_TOTAL_BYTES per consultation); a bad one is a 422 naming attachments[i].filename, .content_type, .content or .content_base64"});
    let country_state = json!({"type": "string", "enum": crate::report::CountryState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()});
    let inbound = json!({"type": "object", "properties": {
        "id": {"type": "integer"}, "message_id": string(),
        "status": {"type": "string", "enum": ["stored", "processed", "quarantined", "failed", "discarded"]},
        "source": {"type": "string", "enum": ["imap", "stdin", "http"]},
        "received_at": {"type": "string", "format": "date-time"},
        "processed_at": {"type": "string", "format": "date-time", "nullable": true},
        "size": {"type": "integer"}, "truncated": {"type": "boolean"}, "sha256": string(),
        "sender": nullable("string"), "subject": nullable("string"),
        "kind": {"type": "string", "enum": ["reply", "auto_reply", "bounce"], "nullable": true},
        "reference": nullable("string"), "round": nullable("integer"), "country": nullable("string"),
        "position": {"type": "string", "enum": ["no_objection", "objection", "comments"], "nullable": true},
        "ambiguous": {"type": "boolean"}, "reason": nullable("string"), "error": nullable("string"),
        "text": nullable("string"), "trimmed": nullable("string")
    }});
    // Answers to review and decisions, apart: one literal would hit the macro's recursion limit.
    let reasons = json!({"type": "array", "items": {"type": "string", "enum": ["ambiguous", "conditional", "conflict"]}});
    let date_time = json!({"type": "string", "format": "date-time"});
    let status_review = json!({"type": "array", "description": "answers in doubt (unclear, conditional, conflicting focal points) not reviewed yet; in stage awaiting_decision the decision waits for them", "items": {"type": "object", "properties": {
        "round": {"type": "integer"}, "country": string(), "position": position.clone(),
        "reasons": reasons, "from": nullable("string"), "received_at": date_time
    }}});
    let imap_lease = json!({"type": "object", "nullable": true, "description": "with IMAP configured: the replica that holds (or last held) the IMAP lease; only the holder polls. null before any replica took it", "properties": {
        "holder": string(), "acquired_at": {"type": "string", "format": "date-time"}, "renewed_at": {"type": "string", "format": "date-time"},
        "live": {"type": "boolean", "description": "false when the holder stopped renewing it"},
        "this_replica": nullable("string"), "held_here": {"type": "boolean"}
    }});
    let mut all = json!({
        "Error": {"type": "object", "required": ["error", "message"], "properties": {
            "error": {"type": "string", "enum": ["unauthorized", "forbidden", "not_found", "conflict", "validation", "unsupported_media_type", "payload_too_large", "busy", "timeout", "internal", "no_route"]},
            "message": string(), "field": string(), "stage": string()
        }},
        "Health": {"type": "object", "properties": {"status": string()}},
        "Ready": {"type": "object", "properties": {"ready": {"type": "boolean"}, "reason": string()}},
        "Status": {"type": "object", "required": ["ok", "reasons", "warnings", "version", "uptime_seconds", "database", "outbox", "smtp", "inbound", "scheduler", "consultations"], "properties": {
            "ok": {"type": "boolean"}, "reasons": {"type": "array", "items": string()},
            "warnings": {"type": "array", "items": string(), "description": "attention needed without a failure: a non-empty quarantine, messages not processed yet, answers to review, a decision waiting for a review"},
            "version": string(), "now": {"type": "string", "format": "date-time"},
            "uptime_seconds": {"type": "integer"},
            "database": {"type": "object", "properties": {"backend": {"type": "string", "enum": ["sqlite", "postgres"]}, "ok": {"type": "boolean"}, "migrations_applied": nullable("boolean"), "error": nullable("string")}},
            "outbox": {"type": "object", "nullable": true, "properties": {"pending": {"type": "integer"}, "sending": {"type": "integer"}, "retrying": {"type": "integer"}, "failed": {"type": "integer"}, "sent": {"type": "integer"}, "oldest_pending_at": nullable("string"), "oldest_pending_age_seconds": nullable("integer"),
                "failed_notices": {"type": "array", "description": "the most recent notices that failed for good (at most 20), newest first", "items": {"type": "object", "properties": {"id": {"type": "integer"}, "kind": string(), "reference": nullable("string"), "country": nullable("string"), "recipient": string(), "error": nullable("string")}}}}},
            "smtp": {"type": "object", "properties": {"transport": {"type": "string", "enum": ["file", "smtp"]}, "failing": {"type": "boolean", "description": "the last delivery attempt failed for a temporary reason and notices wait"}, "last_success_at": nullable("string"), "last_error": nullable("string"), "last_error_at": nullable("string")}},
            "inbound": {"type": "object", "properties": {"configured": {"type": "boolean", "description": "PUEBLA_IMAP_URL is set"}, "mailbox": nullable("string"), "last_poll_at": nullable("string"), "last_error": nullable("string"), "last_error_at": nullable("string"), "messages_stored": {"type": "integer"}, "processed": {"type": "integer"}, "quarantined": {"type": "integer"}, "failed": {"type": "integer"}, "discarded": {"type": "integer"}, "unprocessed": {"type": "integer", "description": "failed + stored and not read yet"}, "imap_lease": imap_lease}},
            "scheduler": {"type": "object", "properties": {"next_due_at": nullable("string"), "last_tick_at": nullable("string"), "last_tick_fired": nullable("integer"), "last_tick_ok": nullable("boolean")}},
            "consultations": {"type": "array", "items": {"type": "object", "properties": {
                "reference": string(), "title": string(), "procedure": string(), "stage": string(),
                "round": nullable("integer"), "deadline": {"type": "string", "format": "date-time", "nullable": true},
                "countries": {"type": "array", "items": {"type": "object", "properties": {"country": string(), "state": country_state}}},
                "to_review": status_review
            }}}
        }},
        "OpenApi": {"type": "object"},
        "ConsultationList": {"type": "array", "items": {"$ref": "#/components/schemas/Consultation"}},
        "StartIn": object(&["title", "text"], json!({"title": string(), "text": string(), "procedure": json!({"type": "string", "default": "rcm-five-day"}), "year": {"type": "integer"}, "draft": {"type": "boolean", "default": false}, "attachments": attachments_in})),
        "AttachmentIn": object(&["filename", "content_base64"], json!({"filename": json!({"type": "string", "description": "the last path component is kept; no control characters"}), "content_type": json!({"type": "string", "description": "type/subtype; sniffed from the content and the name when absent"}), "content_base64": json!({"type": "string", "format": "byte"})})),
        "AttachmentList": {"type": "array", "items": {"$ref": "#/components/schemas/Attachment"}},
        "SubmitIn": object(&[], json!({"text": string(), "attachments": attachments_in})),
        "TroikaIn": object(&["country", "approve"], json!({"country": string(), "approve": {"type": "boolean", "description": "false: request changes"}, "comments": string()})),
        "ReviseIn": object(&[], json!({"text": string(), "no_changes": {"type": "boolean"}, "note": string(), "attachments": attachments_in})),
        "ExtendIn": object(&["working_days", "reason"], json!({"working_days": {"type": "integer", "minimum": 1}, "reason": string()})),
        "WithdrawIn": object(&["reason"], json!({"reason": string()})),
        "ReportIn": object(&["text"], json!({"text": string()})),
        "AnswerIn": object(&["country", "position"], json!({"country": string(), "position": position, "text": string(), "channel": json!({"type": "string", "default": "letter"})})),
        "ReclassifyIn": object(&["round", "country", "position"], json!({"round": {"type": "integer"}, "country": string(), "position": json!({"type": "string", "enum": ["no_objection", "objection", "comments"], "description": "the position the answer has confirms the reading; another one corrects it"}), "received_at": json!({"type": "string", "format": "date-time", "description": "the arrival time of the answer reviewed (to_review[].received_at): refused with 409 if a newer answer has replaced it"})})),
        "FocalPointIn": object(&["country", "name", "email"], json!({"country": string(), "name": string(), "email": string(), "language": {"type": "string", "enum": ["es", "en", "fr"]}})),
        "FocalPointList": {"type": "array", "items": {"$ref": "#/components/schemas/FocalPoint"}},
        "ImportBody": {"type": "string"},
        "Rotation": {"type": "object", "additionalProperties": string()},
        "PresidencyIn": object(&["country"], json!({"country": string()})),
        "TokenList": {"type": "array", "items": {"$ref": "#/components/schemas/Token"}},
        "TokenIn": object(&["name", "role"], json!({"name": string(), "role": {"type": "string", "enum": ["admin", "ppt", "viewer", "ingest"]}})),
    });
    // The inbound mail schemas (a second literal: one would hit the macro's recursion limit).
    let more = json!({
        "RawMessage": {"type": "string", "format": "binary", "description": "one raw RFC 5322 message"},
        "InboundMessage": inbound,
        "InboundList": {"type": "array", "items": {"$ref": "#/components/schemas/InboundMessage"}},
        "InboundDetail": {"allOf": [{"$ref": "#/components/schemas/InboundMessage"}, {"type": "object", "properties": {"raw_base64": {"type": "string", "format": "byte"}}}]},
        "IngestResult": {"type": "object", "properties": {
            "id": {"type": "integer"},
            "disposition": {"type": "string", "enum": ["counted", "late", "quarantined", "auto_reply", "bounce", "failed", "duplicate"]},
            "status": {"type": "string", "enum": ["stored", "processed", "quarantined", "failed", "discarded"]},
            "reason": {"type": "string", "description": "absent for a duplicate"},
            "stored": {"type": "boolean", "description": "false: the message was stored before"},
            "message": {"allOf": [{"$ref": "#/components/schemas/InboundMessage"}], "description": "absent for a duplicate: a message stored before is answered with its id and status only"}
        }},
        "ReleaseIn": object(&["country"], json!({"country": string(), "reference": {"type": "string", "description": "the consultation, when the message names none"}})),
        "ReleaseResult": {"type": "object", "properties": {"message": {"$ref": "#/components/schemas/InboundMessage"}, "consultation": {"$ref": "#/components/schemas/Consultation"}}},
        "DiscardIn": object(&["reason"], json!({"reason": string()})),
    });
    if let (Some(all), Value::Object(more)) = (all.as_object_mut(), more) {
        all.extend(more);
    }
    if let Some(all) = all.as_object_mut() {
        all.extend(derived());
    }
    all
}

/// The schemas of the API's response shapes, derived from the types
/// ([`super::api`]'s `#[derive(ToSchema)]`), with the shapes they use, by name.
fn derived() -> Map<String, Value> {
    fn add<T: ToSchema>(list: &mut Vec<(String, RefOr<Schema>)>) {
        list.push((T::name().into_owned(), T::schema()));
        T::schemas(list);
    }
    let mut list = Vec::new();
    add::<api::ConsultationOut>(&mut list);
    add::<api::ConsultationDetail>(&mut list);
    add::<api::AttachmentOut>(&mut list);
    add::<api::FocalPointOut>(&mut list);
    add::<api::BouncingClearedOut>(&mut list);
    add::<api::ImportOut>(&mut list);
    add::<api::TroikaOut>(&mut list);
    add::<api::TokenOut>(&mut list);
    add::<api::CreatedTokenOut>(&mut list);
    let mut schemas: Map<String, Value> = list
        .into_iter()
        .map(|(name, schema)| {
            let json = serde_json::to_value(schema)
                .unwrap_or_else(|e| json!({"description": e.to_string()}));
            (name, json)
        })
        .collect();
    // The fields the types hold as `&'static str` name one of a fixed list.
    let positions: Vec<&str> = Position::ALL.iter().map(|p| p.as_str()).collect();
    let states: Vec<&str> = CountryState::ALL.iter().map(|s| s.as_str()).collect();
    let reasons = ["ambiguous", "conditional", "conflict"];
    restrict(
        &mut schemas,
        &["ReviewOut", "properties", "position"],
        &positions,
    );
    restrict(
        &mut schemas,
        &["ConflictOut", "properties", "position"],
        &positions,
    );
    restrict(
        &mut schemas,
        &["CountryOut", "properties", "state"],
        &states,
    );
    restrict(
        &mut schemas,
        &["ReviewOut", "properties", "reasons", "items"],
        &reasons,
    );
    restrict(
        &mut schemas,
        &["OutcomeOut", "properties", "adopted_by"],
        &["consensus", "silence"],
    );
    schemas.values_mut().for_each(to_openapi_3_0);
    schemas
}

/// Sets `enum` on the schema at `path` (with `null` when the schema allows it).
fn restrict(schemas: &mut Map<String, Value>, path: &[&str], values: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let mut at = schemas.get_mut(*first);
    for key in rest {
        at = at.and_then(|v| v.get_mut(*key));
    }
    let Some(Value::Object(schema)) = at else {
        return;
    };
    let mut values: Vec<Value> = values.iter().map(|v| json!(v)).collect();
    if matches!(schema.get("type"), Some(Value::Array(types)) if types.contains(&json!("null"))) {
        values.push(Value::Null);
    }
    schema.insert("enum".into(), Value::Array(values));
}

/// OpenAPI 3.0, as the document is: the derived schemas (utoipa writes 3.1) say
/// "or null" as `nullable: true`, on the type or on an `allOf` of the one schema.
fn to_openapi_3_0(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(to_openapi_3_0),
        Value::Object(map) => {
            map.values_mut().for_each(to_openapi_3_0);
            let null = json!("null");
            if let Some(Value::Array(types)) = map.get_mut("type") {
                if types.contains(&null) {
                    types.retain(|t| *t != null);
                    let single = (types.len() == 1).then(|| types[0].clone());
                    if let Some(t) = single {
                        map.insert("type".into(), t);
                    }
                    map.insert("nullable".into(), Value::Bool(true));
                }
            }
            let one_of = match map.get_mut("oneOf") {
                Some(Value::Array(parts))
                    if parts.len() == 2 && parts.contains(&json!({"type": "null"})) =>
                {
                    parts.retain(|p| *p != json!({"type": "null"}));
                    Some(parts.clone())
                }
                _ => None,
            };
            if let Some(parts) = one_of {
                map.remove("oneOf");
                map.insert("allOf".into(), Value::Array(parts));
                map.insert("nullable".into(), Value::Bool(true));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    /// The schema follows the type: the properties of the derived `Consultation`
    /// are the fields a serialized `ConsultationOut` has, and the ones that are
    /// never null are required.
    #[test]
    fn the_consultation_schema_names_the_fields_of_its_type() {
        let out = super::api::ConsultationOut {
            reference: "HN-2027-001".into(),
            title: "A title".into(),
            procedure: "rcm-five-day".into(),
            stage: "open".into(),
            open: true,
            presidency: "HN".into(),
            troika: "GT, HN, CR".into(),
            version: 1,
            round: Some(1),
            deadline: None,
        };
        let value = serde_json::to_value(&out).expect("serializes");
        let mut fields: Vec<&String> = value.as_object().expect("an object").keys().collect();
        fields.sort();
        let schemas = super::schemas();
        let schema = &schemas["Consultation"];
        let mut properties: Vec<&String> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .collect();
        properties.sort();
        assert_eq!(properties, fields);
        let required: Vec<&Value> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .collect();
        assert!(required.contains(&&json!("reference")), "{schema:#}");
        assert!(!required.contains(&&json!("deadline")), "{schema:#}");
        assert_eq!(schema["properties"]["version"]["type"], "integer");
    }

    #[test]
    fn every_schema_a_route_names_exists() {
        let schemas = super::schemas();
        for (spec, _) in super::route_table() {
            for name in spec.request.into_iter().chain(spec.ok.1) {
                assert!(
                    schemas.get(name).is_some(),
                    "{} {} names the missing schema {name}",
                    spec.method,
                    spec.path
                );
            }
        }
    }
}
