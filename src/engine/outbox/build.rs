//! Building the claimed notices' messages, a little ahead of the sends: bodies,
//! the attachments read back and checked, the bounce address.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::transport::SendError;
use crate::domain::attachment::sha256_hex;
use crate::domain::CountryCode;
use crate::engine::ports::{prelude::*, Notice};
use crate::engine::reader::panic_message;
use crate::mail::message::{AsMessageSource, MessageSource, Outgoing};
use crate::mail::token::TokenKey;
use crate::mail::FileRef;

/// Builds the claimed notices' messages in order, a little ahead of the sends, on a
/// task of its own so that building the next message runs beside the current send.
pub(super) async fn build_ahead(
    store: Arc<dyn Store>,
    from: String,
    bounce_key: Option<TokenKey>,
    claimed: Arc<Vec<Notice>>,
    out: mpsc::Sender<Result<Outgoing, SendError>>,
) {
    for notice in claimed.iter() {
        let built = match files_of(store.as_ref(), notice).await {
            Err(e) => Err(e),
            Ok(files) => build_guarded(notice, &from, bounce_key.as_ref(), &files),
        };
        if out.send(built).await.is_err() {
            // The sender stopped: nothing more is needed.
            return;
        }
    }
}

/// Builds one notice's message. A notice that cannot be built fails for good, and
/// so does one whose building panics (a value the mail library chokes on): the panic
/// is this notice's failure, caught here, and never ends the builder (which would
/// hand the rest of the batch back untried, to be claimed and tried again forever).
fn build_guarded(
    notice: &Notice,
    from: &str,
    bounce_key: Option<&TokenKey>,
    files: &[(FileRef, Vec<u8>)],
) -> Result<Outgoing, SendError> {
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Outgoing::from_notice_with_files(notice, from, files).and_then(|o| match bounce_key {
            Some(key) => o.with_bounce_address(key),
            None => Ok(o),
        })
    }));
    match built {
        Ok(Ok(message)) => Ok(message),
        Ok(Err(e)) => Err(SendError::Permanent(format!(
            "cannot build the message: {e}"
        ))),
        Err(panic) => Err(SendError::Permanent(format!(
            "building the message panicked: {}",
            panic_message(panic.as_ref())
        ))),
    }
}

/// The bytes of the files a notice carries, read from the store and checked
/// against their SHA-256. A database error is temporary; a file that is gone or
/// changed is permanent (the notice is kept, failed, with the reason).
async fn files_of(
    store: &dyn Store,
    notice: &Notice,
) -> Result<Vec<(FileRef, Vec<u8>)>, SendError> {
    let payload = match crate::mail::message::payload(notice) {
        Ok(p) => p,
        // The builder reports an unreadable payload.
        Err(_) => return Ok(Vec::new()),
    };
    let Some(reference) = notice.notice.reference.as_ref() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(payload.files.len());
    for f in payload.files {
        let found = store
            .attachment_by_sha256(reference, &f.sha256)
            .await
            .map_err(|e| {
                SendError::Temporary(format!("cannot read attachment `{}`: {e:#}", f.filename))
            })?;
        match found {
            Some((_, bytes)) if sha256_hex(&bytes) == f.sha256 => out.push((f, bytes)),
            Some(_) => {
                return Err(SendError::Permanent(format!(
                    "the attachment `{}` of {reference} no longer matches its SHA-256",
                    f.filename
                )))
            }
            None => {
                return Err(SendError::Permanent(format!(
                    "the attachment `{}` (sha256 {}) of {reference} is not stored",
                    f.filename, f.sha256
                )))
            }
        }
    }
    Ok(out)
}

/// A notice in the outbox is what its message is built from.
impl AsMessageSource for Notice {
    fn message_source(&self) -> MessageSource<'_> {
        let n = &self.notice;
        MessageSource {
            id: self.id,
            reference: n.reference.as_ref(),
            kind: n.kind.as_str(),
            country: n.country.as_ref().map(CountryCode::as_str),
            recipient: &n.recipient,
            recipient_name: &n.recipient_name,
            language: n.language.as_str(),
            subject: &n.subject,
            body_text: &n.body_text,
            body_html: n.body_html.as_deref(),
            message_id: &n.message_id,
            payload_json: &n.payload_json,
            created_at: n.created_at,
        }
    }
}
