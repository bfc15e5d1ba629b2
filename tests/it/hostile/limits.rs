//! What people type: limits at every edge.
