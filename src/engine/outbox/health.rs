//! How this process's deliveries are going, for `GET /status`.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// How this process's deliveries are going, for `GET /status`: shared between the
/// outbox worker (which records each hand-over) and the HTTP server (which reads it).
#[derive(Debug, Default)]
pub struct DeliveryHealth {
    state: Mutex<DeliveryHealthState>,
}

/// A snapshot of [`DeliveryHealth`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryHealthState {
    /// The last message the transport accepted (injected clock).
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last temporary failure or unreachable server, and when.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// The last hand-over failed temporarily (a permanent refusal of one message says
    /// nothing about the server and leaves this as it was).
    pub failing: bool,
}

impl DeliveryHealth {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> DeliveryHealthState {
        self.state.lock().expect("delivery health poisoned").clone()
    }

    pub fn record_success(&self, at: DateTime<Utc>) {
        let mut s = self.state.lock().expect("delivery health poisoned");
        s.last_success_at = Some(at);
        s.failing = false;
    }

    pub fn record_failure(&self, at: DateTime<Utc>, error: String) {
        let mut s = self.state.lock().expect("delivery health poisoned");
        s.last_error = Some(error);
        s.last_error_at = Some(at);
        s.failing = true;
    }
}
