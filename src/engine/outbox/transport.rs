//! What moves a built message: the [`Transport`] trait, its errors, and the file
//! transport of development and the demo.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::mail::message::Outgoing;

/// Why a send did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (4xx, connection refused, timeout).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Will not succeed by retrying (5xx, invalid address).
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// The server could not be reached or did not answer in time (connection refused,
    /// timeout, TLS handshake, garbled reply): nothing was learnt about the message.
    /// Retried with backoff and never made permanent by the number of attempts; the
    /// other pending notices wait for this one's next attempt (see [`OutboxWorker`]).
    #[error("server unreachable: {0}")]
    Unreachable(String),
}

/// Something that delivers a built message and says what the far end answered.
///
/// The worker builds the message ([`Outgoing::from_notice`]); a transport only moves
/// bytes. The `Ok` string is the far end's final answer (an SMTP server's reply to
/// the end of DATA, or where a file was written), stored with the notice.
#[async_trait]
pub trait Transport: Send + Sync {
    async fn send(&self, message: &Outgoing) -> Result<String, SendError>;
}

/// Writes each message as an `.eml` file in a folder (development and the demo).
pub struct FileTransport {
    dir: PathBuf,
}

impl FileTransport {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

#[async_trait]
impl Transport for FileTransport {
    async fn send(&self, message: &Outgoing) -> Result<String, SendError> {
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| {
            SendError::Temporary(format!("cannot create {}: {e}", self.dir.display()))
        })?;
        let path = self.dir.join(format!("{}.eml", message.label));
        tokio::fs::write(&path, &message.bytes)
            .await
            .map_err(|e| SendError::Temporary(format!("cannot write {}: {e}", path.display())))?;
        Ok(format!("written to {}", path.display()))
    }
}
