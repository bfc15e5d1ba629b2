//! A list of consultations that one unreadable stored state cannot empty.
//!
//! A consultation whose stored state no longer reads (a damaged row, a document
//! written by a newer version) is set apart and named, with the reason, instead of
//! failing the whole list: the dashboard, the API, `/status`, the report and the
//! daily digest go on showing every other consultation, and each says which one it
//! could not read.

use crate::domain::consultation::Consultation;
use crate::engine::ports::StoredConsultation;

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

/// Reads a stored state document: JSON that is a [`Consultation`], stored under its
/// own reference, with at least one text version (every consultation is created
/// with one and the procedure never removes one; [`Consultation::current_version`]
/// counts on it). The error says what is wrong, without the reference.
pub(crate) fn read_state(stored: &StoredConsultation) -> Result<Consultation, String> {
    let c: Consultation = serde_json::from_str(&stored.state_json).map_err(|e| e.to_string())?;
    if c.reference != stored.reference {
        return Err(format!("the document is that of {}", c.reference));
    }
    if c.versions.is_empty() {
        return Err("the document has no text version".into());
    }
    Ok(c)
}
