//! A list of consultations that one unreadable stored state cannot empty.
//!
//! A consultation whose stored state no longer reads (a damaged row, a document
//! written by a newer version) is set apart and named, with the reason, instead of
//! failing the whole list: the dashboard, the API, `/status`, the report and the
//! daily digest go on showing every other consultation, and each says which one it
//! could not read.

use crate::domain::consultation::Consultation;

/// The consultations whose state reads, and those whose state does not.
#[derive(Debug, Default)]
pub struct Listing {
    /// In the store's order (by reference).
    pub consultations: Vec<Consultation>,
    pub unreadable: Vec<Unreadable>,
}

/// A consultation whose stored state cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub reference: String,
    /// Why, with its causes (`{e:#}`).
    pub error: String,
}

impl Unreadable {
    /// One line for a status reason or a log: names the consultation and the cause.
    pub fn reason(&self) -> String {
        format!(
            "the stored state of {} cannot be read: {}",
            self.reference, self.error
        )
    }
}
