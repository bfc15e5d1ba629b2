//! Reading a stored inbound message off the server's async threads, within a deadline.
//!
//! [`inspect`] is pure CPU work: parsing the MIME structure, turning HTML into text,
//! trimming quotes, classifying. It is linear in the size of the message and reads at
//! most a bounded prefix of its text ([`crate::mail::inbound::MAX_TEXT_BYTES`]), but
//! a 10 MB message still takes a moment, and on an async thread that moment would
//! hold up `/healthz`, the scheduler and the outbox beside it. So it runs on tokio's
//! blocking pool, and the engine waits for it at most [`EngineConfig::inbound_read_timeout`]
//! (`PUEBLA_INBOUND_READ_TIMEOUT_SECONDS`). A reading that panics or runs out of
//! time is an error: the message is marked `failed` with it, for the TS, instead of
//! staying `stored` to be read again at every redelivery.
//!
//! A blocking task cannot be stopped: after a timeout it runs on to its end in the
//! background. The bound on what is read is what makes that end come soon; the
//! deadline is what keeps the caller from waiting for it. Both are needed.
//!
//! [`EngineConfig::inbound_read_timeout`]: super::EngineConfig::inbound_read_timeout

use std::panic::AssertUnwindSafe;
use std::time::Duration;

pub use super::config::DEFAULT_READ_TIMEOUT;
use super::{Engine, EngineError};
use crate::mail::inbound::{inspect, Inspection};

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading the message failed (the reader panicked: {0})")]
    Panicked(String),
    #[error(
        "reading the message took longer than {} s (PUEBLA_INBOUND_READ_TIMEOUT_SECONDS); \
         it was given up",
        .0.as_secs_f64()
    )]
    TimedOut(Duration),
}

/// Reads `raw` on the blocking pool, waiting at most `deadline`.
pub async fn read_bounded(raw: &[u8], deadline: Duration) -> Result<Inspection, ReadError> {
    let raw = raw.to_vec();
    let task = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(AssertUnwindSafe(|| inspect(&raw)))
    });
    match tokio::time::timeout(deadline, task).await {
        Ok(Ok(Ok(inspection))) => Ok(inspection),
        Ok(Ok(Err(panic))) => Err(ReadError::Panicked(panic_message(panic.as_ref()))),
        // The task itself failed (it panicked past the guard, or the runtime is
        // shutting down).
        Ok(Err(join)) => Err(ReadError::Panicked(join.to_string())),
        Err(_) => {
            tracing::warn!(
                seconds = deadline.as_secs_f64(),
                "reading an inbound message timed out; it finishes in the background"
            );
            Err(ReadError::TimedOut(deadline))
        }
    }
}

/// The text a panic was raised with, when it has one.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string())
}

impl Engine {
    /// Reads a stored message with the configured deadline (see the module's doc).
    pub(crate) async fn read_inbound(&self, raw: &[u8]) -> Result<Inspection, EngineError> {
        read_bounded(raw, self.config.inbound_read_timeout)
            .await
            .map_err(|e| EngineError::Unexpected(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_message_is_read_on_the_blocking_pool() {
        let raw = b"From: Ana <ana@example.gob>\r\nSubject: Re: [RCM-2026-007] x\r\n\r\nSin objecion.\r\n";
        let i = read_bounded(raw, DEFAULT_READ_TIMEOUT).await.unwrap();
        assert_eq!(i.text, "Sin objecion.");
    }

    #[tokio::test]
    async fn a_reading_over_its_deadline_is_an_error_that_says_so() {
        // A large message and no time at all: the deadline passes before the reading ends.
        let raw = format!(
            "From: a@example.gob\r\nSubject: x\r\n\r\n{}",
            "word ".repeat(200_000)
        );
        let err = read_bounded(raw.as_bytes(), Duration::ZERO)
            .await
            .unwrap_err();
        assert!(matches!(err, ReadError::TimedOut(_)), "{err}");
        assert!(
            err.to_string()
                .contains("PUEBLA_INBOUND_READ_TIMEOUT_SECONDS"),
            "{err}"
        );
    }
}
