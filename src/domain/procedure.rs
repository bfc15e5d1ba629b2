//! Procedure definitions.
