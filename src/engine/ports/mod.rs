//! The ports of the engine: what it needs from durable storage, as traits and row
//! types, one module per aggregate. The SQL adapter (`crate::store`) implements
//! them; the engine and everything above it name only these.
//!
//! [`Store`] is every aggregate's trait at once, so that one `Arc<dyn Store>` is
//! passed around; a caller brings the traits whose methods it calls into scope
//! (`use crate::engine::ports::prelude::*`).

pub mod attachments;
pub mod audit;
pub mod consultations;
pub mod directory;
pub mod error;
pub mod health;
pub mod inbound;
pub mod leases;
pub mod outbox;
pub mod schedules;
pub mod tokens;

pub use attachments::{AttachmentRow, AttachmentStore, NewAttachment};
pub use audit::{AuditEntry, AuditStore, NewAudit};
pub use consultations::{ConsultationStore, Step, StoredConsultation};
pub use directory::{BouncingCleared, DirectoryStore, FocalPointRow, ImportOutcome, NewFocalPoint};
pub use error::StoreError;
pub use health::{Backend, StoreHealth};
pub use inbound::{
    InboundBrief, InboundCommit, InboundCounts, InboundMessage, InboundReading, InboundSource,
    InboundStatus, InboundStep, InboundStore, InboundTally, NewInboundMessage, RecordedPosition,
    TroikaAnswer,
};
pub use leases::{Lease, LeaseRow, LeaseStore};
pub use outbox::{
    NewNotice, Notice, NoticeFailure, NoticeStatus, NoticeTally, OutboxCounts, OutboxHealth,
    OutboxKind, OutboxStore, SystemNoticeKind, UnknownNoticeKind,
};
pub use schedules::{
    DueTimers, NewTimer, ScheduleClaim, ScheduleRow, ScheduleStore, Timer, TimerStore,
    UnreadableTimer,
};
pub use tokens::{ApiTokenRow, NewApiToken, NewSession, SessionRow, SessionStore, TokenStore};

/// Every aggregate's trait: what `Arc<dyn Store>` offers. Implemented for every
/// type that implements them all.
pub trait Store:
    StoreHealth
    + ConsultationStore
    + AttachmentStore
    + AuditStore
    + TimerStore
    + ScheduleStore
    + OutboxStore
    + LeaseStore
    + InboundStore
    + DirectoryStore
    + TokenStore
    + SessionStore
{
}

impl<T> Store for T where
    T: StoreHealth
        + ConsultationStore
        + AttachmentStore
        + AuditStore
        + TimerStore
        + ScheduleStore
        + OutboxStore
        + LeaseStore
        + InboundStore
        + DirectoryStore
        + TokenStore
        + SessionStore
{
}

/// The traits, to call a store's methods: `use crate::engine::ports::prelude::*`.
pub mod prelude {
    pub use super::attachments::AttachmentStore;
    pub use super::audit::AuditStore;
    pub use super::consultations::ConsultationStore;
    pub use super::directory::DirectoryStore;
    pub use super::health::StoreHealth;
    pub use super::inbound::InboundStore;
    pub use super::leases::LeaseStore;
    pub use super::outbox::OutboxStore;
    pub use super::schedules::{ScheduleStore, TimerStore};
    pub use super::tokens::{SessionStore, TokenStore};
    pub use super::Store;
}
