//! Who may do what: every API route and every dashboard action with the least role
//! it needs, in one table. The API's router and its OpenAPI document
//! ([`super::route_table`]) and the dashboard's actions read their roles here, so a
//! role is written once for both.

use super::role::Role;

/// Something a caller does: an API route (method and path, in the route table's
/// syntax) or a dashboard action (the form's `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Route(&'static str, &'static str),
    Action(&'static str),
}

use Role::{Admin, Ingest, Ppt, Viewer};
use Target::{Action, Route};

/// Every route and action with the least role it needs (`None`: no token needed).
pub const ACCESS: &[(Target, Option<Role>)] = &[
    (Route("GET", "/healthz"), None),
    (Route("GET", "/readyz"), None),
    (Route("GET", "/status"), Some(Viewer)),
    (Route("GET", "/metrics"), Some(Viewer)),
    (Route("GET", "/api/openapi.json"), None),
    (Route("GET", "/api/consultations"), Some(Viewer)),
    (Route("POST", "/api/consultations"), Some(Ppt)),
    (Route("GET", "/api/consultations/{reference}"), Some(Viewer)),
    (
        Route("GET", "/api/consultations/{reference}/attachments"),
        Some(Viewer),
    ),
    (
        Route("GET", "/api/consultations/{reference}/attachments/{id}"),
        Some(Viewer),
    ),
    (
        Route("POST", "/api/consultations/{reference}/submit"),
        Some(Ppt),
    ),
    (
        Route("POST", "/api/consultations/{reference}/troika"),
        Some(Ppt),
    ),
    (
        Route("POST", "/api/consultations/{reference}/revise"),
        Some(Ppt),
    ),
    (
        Route("POST", "/api/consultations/{reference}/extend"),
        Some(Ppt),
    ),
    (
        Route("POST", "/api/consultations/{reference}/withdraw"),
        Some(Ppt),
    ),
    (
        Route("POST", "/api/consultations/{reference}/report"),
        Some(Ppt),
    ),
    (
        Route("POST", "/api/consultations/{reference}/answers"),
        Some(Ppt),
    ),
    (
        Route("POST", "/api/consultations/{reference}/reclassify"),
        Some(Ppt),
    ),
    (Route("POST", "/api/inbound"), Some(Ingest)),
    (Route("GET", "/api/inbound"), Some(Viewer)),
    (Route("GET", "/api/inbound/{id}"), Some(Viewer)),
    (Route("POST", "/api/inbound/{id}/retry"), Some(Admin)),
    (Route("GET", "/api/quarantine"), Some(Viewer)),
    (Route("POST", "/api/quarantine/{id}/release"), Some(Admin)),
    (Route("POST", "/api/quarantine/{id}/discard"), Some(Admin)),
    (Route("GET", "/api/focal-points"), Some(Viewer)),
    (Route("POST", "/api/focal-points"), Some(Admin)),
    (Route("POST", "/api/focal-points/import"), Some(Admin)),
    (Route("DELETE", "/api/focal-points/{email}"), Some(Admin)),
    (
        Route("POST", "/api/focal-points/{email}/clear-bouncing"),
        Some(Admin),
    ),
    (Route("GET", "/api/presidency"), Some(Viewer)),
    (Route("GET", "/api/presidency/{year}"), Some(Viewer)),
    (Route("PUT", "/api/presidency/{year}"), Some(Admin)),
    (Route("GET", "/api/tokens"), Some(Admin)),
    (Route("POST", "/api/tokens"), Some(Admin)),
    (Route("DELETE", "/api/tokens/{name}"), Some(Admin)),
    // The dashboard's actions (`POST /actions`).
    (Action("start"), Some(Ppt)),
    (Action("submit"), Some(Ppt)),
    (Action("troika"), Some(Ppt)),
    (Action("revise"), Some(Ppt)),
    (Action("extend"), Some(Ppt)),
    (Action("withdraw"), Some(Ppt)),
    (Action("reclassify"), Some(Ppt)),
    (Action("report"), Some(Ppt)),
    (Action("fp_add"), Some(Admin)),
    (Action("fp_deactivate"), Some(Admin)),
    (Action("fp_clear_bouncing"), Some(Admin)),
    (Action("presidency"), Some(Admin)),
    (Action("answer"), Some(Ppt)),
    (Action("release"), Some(Admin)),
    (Action("discard"), Some(Admin)),
    (Action("fp_import"), Some(Admin)),
];

/// The role a route needs: `None` when it needs no token. A route missing from the
/// table needs `admin` (closed, not open; a test keeps the table whole).
pub fn route_role(method: &str, path: &str) -> Option<Role> {
    ACCESS
        .iter()
        .find(|(t, _)| matches!(t, Route(m, p) if *m == method && *p == path))
        .map_or(Some(Admin), |(_, role)| *role)
}

/// The role a dashboard action needs; `None` for an action that does not exist.
pub fn action_role(name: &str) -> Option<Role> {
    ACCESS.iter().find_map(|(t, role)| match t {
        Action(a) if *a == name => Some(role.unwrap_or(Admin)),
        _ => None,
    })
}

/// The dashboard's actions, in the table's order.
pub fn actions() -> impl Iterator<Item = &'static str> {
    ACCESS.iter().filter_map(|(t, _)| match t {
        Action(a) => Some(*a),
        Route(..) => None,
    })
}
