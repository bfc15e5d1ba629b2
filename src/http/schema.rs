//! The OpenAPI schemas of the names the API's shapes carry: a string that is one of
//! an enum's names, taken from the enum's own list, so that a new variant reaches
//! the document without anyone writing it there. A shape's field names its enum
//! with `#[schema(value_type = ...)]` (the field itself may hold the `&str`); each
//! enum is one named component of the document.

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use super::api::AdoptedBy;
use super::error::ErrorCode;
use super::role::Role;
use super::status::Transport;
use crate::domain::consultation::{Position, ReviewReason};
use crate::domain::Language;
use crate::engine::inbound::Disposition;
use crate::engine::ports::{Backend, InboundSource, InboundStatus};
use crate::mail::inbound::Kind;
use crate::report::CountryState;

/// A string that is one of `names`.
fn one_of<'a>(description: &str, names: impl IntoIterator<Item = &'a str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description((!description.is_empty()).then(|| description.to_string()))
        .enum_values(Some(names.into_iter().map(str::to_string)))
        .into()
}

/// Implements `ToSchema` for each type: the component `$name`, a string that is
/// one of `$names`.
macro_rules! names {
    ($($ty:ty as $name:literal, $description:literal => $names:expr;)+) => {$(
        impl utoipa::PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                one_of($description, $names)
            }
        }
        impl utoipa::ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    )+};
}

names! {
    Position as "Position", "" => Position::NAMES.iter().copied();
    ReviewReason as "ReviewReason",
        "why an answer needs review: the reader was not sure (`ambiguous`), consent with a condition (`conditional`), another focal point of the country answered differently (`conflict`)"
        => ReviewReason::NAMES.iter().copied();
    CountryState as "CountryState", "where a Member Country stands in the latest round"
        => CountryState::NAMES.iter().copied();
    Language as "Language", "" => Language::NAMES.iter().copied();
    Role as "Role", "viewer < ppt < admin; ingest may only POST /api/inbound"
        => Role::NAMES.iter().copied();
    Backend as "Backend", "" => Backend::NAMES.iter().copied();
    InboundStatus as "InboundStatus", "" => InboundStatus::NAMES.iter().copied();
    InboundSource as "InboundSource", "" => InboundSource::NAMES.iter().copied();
    Kind as "MessageKind", "how the reader classified a message"
        => Kind::NAMES.iter().copied();
    Disposition as "Disposition", "what became of a message handed in"
        => Disposition::NAMES.iter().copied();
    ErrorCode as "ErrorCode", "" => ErrorCode::NAMES.iter().copied();
    AdoptedBy as "AdoptedBy",
        "`consensus` (every member answered without objection) or `silence` (no objection by the deadline)"
        => AdoptedBy::NAMES.iter().copied();
    Transport as "Transport", "`smtp` when PUEBLA_SMTP_URL is set, otherwise `file` (.eml files)"
        => Transport::NAMES.iter().copied();
}
