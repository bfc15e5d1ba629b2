//! Public-holiday calendars and working-day deadline arithmetic (placeholder; see issue 2).
