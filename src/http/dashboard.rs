//! The administrators' dashboard at `GET /`: server-rendered HTML from the handlebars
//! pages in `templates/dashboard/`, in Spanish and English, with no JavaScript.
//!
//! Logging in posts a bearer token (the same tokens and roles as the API) with a
//! CSRF token bound to a pre-session cookie; attempts are throttled per client
//! address and overall (429 with `Retry-After`, [`super::throttle`]). The server
//! checks the token and opens a server-side session ([`super::session`]): the
//! cookie holds a random session id, never the token. Every action is a form posted
//! twice to `POST /actions`: the first post shows what will happen ("are you
//! sure?"), the second, carrying `confirm=yes`, does it. Both posts carry a CSRF
//! token derived from the session id, so another site cannot forge them; a post
//! without a session is refused before its body is read. Actions go through the
//! same engine and directory functions as the API and are audited as
//! `web:TOKEN-NAME`.
//!
//! The pages are compiled into the binary (`include_str!`): unlike the notice
//! templates they are not something the TS edits, and a fresh clone serves them
//! without a templates folder. The content security policy allows no script at all,
//! so even a value that escaped escaping could not run.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use handlebars::Handlebars;
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;

use super::auth::{self, Role};
use super::error::ApiError;
use super::session::{self, Session, LOGIN_COOKIE, SESSION_COOKIE};
use super::SharedState;
use crate::directory::{self, FocalPointInput};
use crate::domain::attachment::{FileUpload, ValidFile};
use crate::domain::consultation::{
    text_diff, Answer, AnswerSource, Consultation, Context, Event, Position, Stage,
};
use crate::domain::{input, CountryCode, Language};
use crate::engine::ports::InboundStatus;
use crate::engine::StartRequest;
use crate::report::{self, CountryState};

const LANG_COOKIE: &str = "puebla_lang";

/// The dashboard's routes; merged into the application's router by `http::router`.
/// Each handler finds the session itself, so that a missing one shows the login
/// page rather than a JSON 401.
/// `upload_limit`: the largest body `POST /actions` takes (a new consultation's files).
pub fn routes(upload_limit: usize) -> Router<super::SharedState> {
    use super::{limit_body, FORM_BODY_LIMIT, NO_BODY_LIMIT};
    let page = |handler: MethodRouter<SharedState>| limit_body(handler, NO_BODY_LIMIT);
    Router::new()
        .route("/", page(get(home)))
        .route("/dashboard.css", page(get(stylesheet)))
        .route("/login", limit_body(post(login), FORM_BODY_LIMIT))
        .route("/logout", limit_body(post(logout), FORM_BODY_LIMIT))
        .route("/consultations/{reference}", page(get(consultation_page)))
        .route(
            "/consultations/{reference}/attachments/{id}",
            page(get(attachment_download)),
        )
        .route("/new", page(get(new_consultation_page)))
        .route("/directory", page(get(directory_page)))
        .route("/inbound/{id}", page(get(inbound_page)))
        .route("/actions", limit_body(post(action), upload_limit))
}

// ---------------------------------------------------------------------------------
// Languages

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Es,
}

impl Lang {
    fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }

    fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().get(..2)? {
            "en" => Some(Lang::En),
            "es" => Some(Lang::Es),
            _ => None,
        }
    }

    fn language(self) -> Language {
        match self {
            Lang::En => Language::En,
            Lang::Es => Language::Es,
        }
    }

    fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Es,
            Lang::Es => Lang::En,
        }
    }
}

/// `(key, English, Spanish)`: every word the pages show besides the data.
#[rustfmt::skip]
const STRINGS: &[(&str, &str, &str)] = &[
    ("app_title", "RCM written consultations", "Consultas escritas de la CRM"),
    ("nav_consultations", "Consultations", "Consultas"),
    ("nav_new", "New consultation", "Nueva consulta"),
    ("nav_directory", "Focal points and presidency", "Puntos focales y presidencia"),
    ("logout", "Log out", "Cerrar sesión"),
    ("logged_in_as", "Logged in as", "Sesión de"),
    ("role", "role", "rol"),
    ("switch_language", "Español", "English"),
    ("login_title", "Log in", "Iniciar sesión"),
    ("login_help", "Paste the access token the Technical Secretariat gave you (puebla token create).", "Pegue el token de acceso que le dio la Secretaría Técnica (puebla token create)."),
    ("token", "Access token", "Token de acceso"),
    ("login_button", "Log in", "Entrar"),
    ("login_failed", "This token is not valid or has been revoked.", "Este token no es válido o fue revocado."),
    ("login_throttled", "Too many login attempts. Wait a moment and try again.", "Demasiados intentos de inicio de sesión. Espere un momento e intente de nuevo."),
    ("open_consultations", "Open consultations", "Consultas abiertas"),
    ("all_consultations", "All consultations", "Todas las consultas"),
    ("show_all", "Show closed ones too", "Mostrar también las cerradas"),
    ("show_open", "Show open ones only", "Mostrar solo las abiertas"),
    ("none", "None.", "Ninguna."),
    ("reference", "Reference", "Referencia"),
    ("title", "Title", "Título"),
    ("stage", "Stage", "Etapa"),
    ("time_left", "Time left", "Tiempo restante"),
    ("deadline", "Deadline", "Plazo"),
    ("working_days_left", "working days left", "días hábiles restantes"),
    ("one_working_day_left", "1 working day left", "1 día hábil restante"),
    ("last_day", "last day", "último día"),
    ("deadline_passed", "deadline passed", "plazo vencido"),
    ("health", "Health", "Estado del sistema"),
    ("outbox", "Outbox", "Bandeja de salida"),
    ("pending", "pending", "pendientes"),
    ("sending", "sending", "enviándose"),
    ("retrying", "retrying", "reintentando"),
    ("sent", "sent", "enviados"),
    ("failed", "failed", "fallidos"),
    ("failed_notices", "Failed notices", "Avisos fallidos"),
    ("recipient", "Recipient", "Destinatario"),
    ("subject", "Subject", "Asunto"),
    ("error", "Error", "Error"),
    ("inbound", "Inbound mail", "Correo entrante"),
    ("stored", "stored, not processed", "guardados sin procesar"),
    ("processed", "processed", "procesados"),
    ("quarantined", "quarantined", "en cuarentena"),
    ("discarded", "discarded", "descartados"),
    ("quarantine", "Quarantine", "Cuarentena"),
    ("quarantine_size", "messages wait for the TS", "mensajes esperan a la ST"),
    ("all_good", "Mail flows: nothing failed.", "El correo fluye: nada ha fallado."),
    ("procedure", "Procedure", "Procedimiento"),
    ("presidency", "Presidency", "Presidencia"),
    ("troika", "Troika", "Troika"),
    ("version", "Version", "Versión"),
    ("round", "Round", "Ronda"),
    ("matrix", "Member Countries by round", "Países Miembros por ronda"),
    ("country", "Country", "País"),
    ("no_rounds", "No round has been opened yet.", "Aún no se ha abierto ninguna ronda."),
    ("current_text", "Current text", "Texto vigente"),
    ("diff", "Changes in the last revision", "Cambios de la última revisión"),
    ("answers", "Answers", "Respuestas"),
    ("no_answers", "No answers yet.", "Aún no hay respuestas."),
    ("position", "Position", "Posición"),
    ("received", "Received", "Recibida"),
    ("source", "Source", "Origen"),
    ("raw_message", "raw message", "mensaje original"),
    ("recorded_by", "recorded by", "registrada por"),
    ("via", "via", "por"),
    // Answers a person must review, and decisions that wait for them.
    ("to_review", "Answers to review", "Respuestas por revisar"),
    ("to_review_help", "These answers count provisionally: the reading was unclear, the consent had a condition, or two focal points of the country disagreed. Confirm each as read or reclassify it. In the last round the decision waits for them.", "Estas respuestas cuentan de forma provisional: la lectura no fue clara, la conformidad tenía una condición o dos puntos focales del país no coinciden. Confirme cada una tal como se leyó o reclasifíquela. En la última ronda la decisión las espera."),
    ("awaiting_decision_help", "The last round has closed, but the decision waits: answers that could change it are still in doubt. Reviewing the last one decides, by the procedure's rule.", "La última ronda cerró, pero la decisión espera: hay respuestas en duda que podrían cambiarla. Al revisar la última se decide, según la regla del procedimiento."),
    ("no_review", "No answer needs review.", "Ninguna respuesta necesita revisión."),
    ("review_ambiguous", "unclear reading", "lectura dudosa"),
    ("review_conditional", "conditional or with a reservation", "condicionada o con reserva"),
    ("review_conflict", "another focal point answered differently", "otro punto focal respondió distinto"),
    ("reviewed", "reviewed", "revisada"),
    ("needs_review", "needs review", "por revisar"),
    ("blocks_decision", "the decision waits for it", "la decisión la espera"),
    ("conflict_with", "earlier answer by", "respuesta anterior de"),
    ("entered_by_staff", "PPT or TS staff", "la PPT o la ST"),
    ("reading", "How it was read", "Cómo se leyó"),
    ("confirm_reading", "Confirm as read", "Confirmar tal como se leyó"),
    ("reclassify_as", "Reclassify as", "Reclasificar como"),
    ("review_was", "Recorded now", "Registrada ahora"),
    ("review_outcome", "Result", "Resultado"),
    ("review_confirms", "the reading is confirmed", "se confirma la lectura"),
    ("review_changes", "the position changes", "la posición cambia"),
    ("counts", "counts", "cuenta"),
    ("superseded", "replaced by a later answer", "reemplazada por una posterior"),
    ("late", "late: recorded, not counted", "tardía: registrada, no cuenta"),
    ("timeline", "Timeline", "Cronología"),
    ("when", "When", "Cuándo"),
    ("actor", "Who", "Quién"),
    ("action", "What", "Qué"),
    ("detail", "Detail", "Detalle"),
    ("actions", "Actions", "Acciones"),
    ("no_actions", "Nothing to do in this stage.", "Nada que hacer en esta etapa."),
    ("approve", "Agrees", "Está de acuerdo"),
    ("request_changes", "Requests changes", "Pide cambios"),
    ("comments", "Comments", "Comentarios"),
    ("text", "Text (Markdown)", "Texto (Markdown)"),
    ("no_changes", "No changes: send the same text again", "Sin cambios: enviar el mismo texto"),
    ("submit_text", "New text (leave empty to send the draft as it is)", "Nuevo texto (déjelo vacío para enviar el borrador tal como está)"),
    ("note", "Note to the members", "Nota para los miembros"),
    ("working_days", "Working days", "Días hábiles"),
    ("reason", "Reason", "Motivo"),
    ("year", "Year", "Año"),
    ("year_help", "empty: this year", "vacío: este año"),
    ("files", "Files to attach (PDF of the proposal, annexes)", "Archivos adjuntos (PDF de la propuesta, anexos)"),
    ("files_help", "They go to the Troika and to every Member Country with the text. Limits: one file", "Se envían a la Troika y a cada País Miembro con el texto. Límites: un archivo"),
    ("files_help_total", "all together", "todos juntos"),
    ("attachments", "Attachments", "Archivos adjuntos"),
    ("no_attachments", "No files attached.", "Sin archivos adjuntos."),
    ("file_name", "File", "Archivo"),
    ("file_size", "Size (bytes)", "Tamaño (bytes)"),
    ("file_type", "Type", "Tipo"),
    ("download", "Download", "Descargar"),
    ("continue", "Continue", "Continuar"),
    ("confirm_title", "Please confirm", "Confirme, por favor"),
    ("confirm_question", "Are you sure? This is recorded in the audit log and may send email to every Member Country.", "¿Está seguro? Esto queda en el registro de auditoría y puede enviar correos a todos los Países Miembros."),
    ("confirm_button", "Yes, do it", "Sí, hacerlo"),
    ("cancel", "Cancel", "Cancelar"),
    ("done", "Done", "Hecho"),
    ("focal_points", "Focal points", "Puntos focales"),
    ("name", "Name", "Nombre"),
    ("email", "Email", "Correo"),
    ("language", "Language", "Idioma"),
    ("active", "Active", "Activo"),
    ("inactive", "inactive", "inactivo"),
    ("bouncing", "bouncing", "rebota"),
    ("yes", "yes", "sí"),
    ("no", "no", "no"),
    ("add", "Add", "Agregar"),
    ("deactivate", "Deactivate", "Desactivar"),
    ("clear_bouncing", "Clear bouncing", "Quitar rebote"),
    ("language_default", "the country's language", "el idioma del país"),
    ("rotation", "Presidency by year", "Presidencia por año"),
    ("set_presidency", "Set", "Registrar"),
    ("message", "Message", "Mensaje"),
    ("status", "Status", "Estado"),
    ("kind", "Kind", "Tipo"),
    ("sender", "Sender", "Remitente"),
    ("trimmed", "The focal point's words", "Las palabras del punto focal"),
    ("truncated", "truncated at the size limit", "truncado en el límite de tamaño"),
    ("back", "Back", "Volver"),
    ("err_401", "Please log in.", "Inicie sesión."),
    ("err_403", "Your token's role does not allow this.", "El rol de su token no permite esto."),
    ("err_csrf", "This form has expired or did not come from this dashboard. Go back, reload the page and try again.", "Este formulario venció o no viene de este panel. Vuelva, recargue la página e intente de nuevo."),
    ("err_404", "Not found", "No encontrado"),
    ("err_409", "Not possible now", "No es posible ahora"),
    ("err_422", "Please correct the form", "Corrija el formulario"),
    ("err_500", "Something went wrong; the server log has the details.", "Algo falló; el registro del servidor tiene los detalles."),
    // Actions, as the confirmation page and the "done" message name them.
    ("act_start", "Start a consultation", "Iniciar una consulta"),
    ("act_submit", "Submit the draft", "Enviar el borrador"),
    ("act_troika", "Record Troika feedback", "Registrar la opinión de la Troika"),
    ("act_revise", "Publish the revision", "Publicar la revisión"),
    ("act_extend", "Extend the round", "Prorrogar la ronda"),
    ("act_withdraw", "Withdraw the consultation", "Retirar la consulta"),
    ("act_reclassify", "Review an answer (confirm or reclassify)", "Revisar una respuesta (confirmar o reclasificar)"),
    ("act_report", "Report the results", "Informar los resultados"),
    ("act_fp_add", "Add a focal point", "Agregar un punto focal"),
    ("act_fp_deactivate", "Deactivate a focal point", "Desactivar un punto focal"),
    ("act_fp_clear_bouncing", "Clear the bouncing mark (the address was fixed)", "Quitar la marca de rebote (la dirección fue corregida)"),
    ("act_presidency", "Set the presidency", "Registrar la presidencia"),
    ("act_answer", "Record an answer received another way", "Registrar una respuesta recibida por otra vía"),
    ("act_release", "Count this message as a country's answer", "Contar este mensaje como respuesta de un país"),
    ("act_discard", "Set this message aside", "Descartar este mensaje"),
    ("act_fp_import", "Import focal points", "Importar puntos focales"),
    ("channel", "Received by", "Recibida por"),
    ("channel_letter", "letter", "carta"),
    ("channel_phone", "phone", "teléfono"),
    ("channel_meeting", "meeting", "reunión"),
    ("channel_email", "email to another address", "correo a otra dirección"),
    ("answer_text", "What the country said", "Lo que dijo el país"),
    ("release_help", "The answer is recorded as entered by you, naming this message; the country's focal points get the confirmation.", "La respuesta queda registrada como ingresada por usted, citando este mensaje; los puntos focales del país reciben la confirmación."),
    ("release_reference", "Consultation (empty: the one the message names)", "Consulta (vacío: la que nombra el mensaje)"),
    ("discard_help", "The message stays stored, with the reason; it is not counted.", "El mensaje queda guardado, con el motivo; no se cuenta."),
    ("import_text", "Paste the list (TOML with [[focal_point]] entries, or CSV: country,name,email,language)", "Pegue la lista (TOML con entradas [[focal_point]], o CSV: country,name,email,language)"),
    ("import_file", "or upload a file", "o suba un archivo"),
    ("import_format", "Format", "Formato"),
    ("format_auto", "from the file name or the content", "según el nombre del archivo o el contenido"),
    ("import_help", "Rows with a known country and email are updated; new ones are added; nobody is removed.", "Las filas con país y correo conocidos se actualizan; las nuevas se agregan; no se elimina a nadie."),
    ("lines", "Lines", "Líneas"),
    // Stages.
    ("stage_draft", "Draft", "Borrador"),
    ("stage_troika_review", "Troika review", "Revisión de la Troika"),
    ("stage_member_input", "Round 1: member input", "Ronda 1: aportes de los miembros"),
    ("stage_revision", "Revision", "Revisión"),
    ("stage_awaiting_decision", "Decision awaiting review", "Decisión pendiente de revisión"),
    ("stage_member_comments", "Round 2: member comments", "Ronda 2: comentarios de los miembros"),
    ("stage_silence_period", "Silence procedure", "Procedimiento de silencio"),
    ("stage_adopted", "Adopted", "Adoptada"),
    ("stage_not_adopted", "Not adopted", "No adoptada"),
    ("stage_concluded", "Concluded", "Concluida"),
    ("stage_withdrawn", "Withdrawn", "Retirada"),
    // Country states and positions.
    ("state_not_consulted", "Not consulted", "No consultado"),
    ("state_notified", "Notified", "Notificado"),
    ("state_delivered", "Delivered", "Entregado"),
    ("state_bounced", "Bounced", "Rebotado"),
    ("state_auto_replied", "Auto-reply", "Respuesta automática"),
    ("state_no_objection", "No objection", "Sin objeción"),
    ("state_objection", "Objection", "Objeción"),
    ("state_comments", "Comments", "Comentarios"),
    ("state_no_answer", "No answer", "Sin respuesta"),
    ("state_late", "Late", "Tardía"),
];

fn tr(lang: Lang, key: &str) -> String {
    STRINGS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, en, es)| match lang {
            Lang::En => *en,
            Lang::Es => *es,
        })
        .unwrap_or(key)
        .to_string()
}

/// A label for `prefix_name` (a stage, a state), or the raw name when it has none.
fn label(lang: Lang, prefix: &str, name: &str) -> String {
    let key = format!("{prefix}_{name}");
    if STRINGS.iter().any(|(k, _, _)| *k == key) {
        tr(lang, &key)
    } else {
        name.to_string()
    }
}

fn strings(lang: Lang) -> Value {
    Value::Object(
        STRINGS
            .iter()
            .map(|(k, _, _)| (k.to_string(), Value::String(tr(lang, k))))
            .collect(),
    )
}

/// A symbol beside each state's label, so the matrix reads without colour too.
fn state_symbol(s: CountryState) -> &'static str {
    match s {
        CountryState::NotConsulted => "·",
        CountryState::Notified => "✉",
        CountryState::Delivered => "✉✓",
        CountryState::Bounced => "⚠",
        CountryState::AutoReplied => "↩",
        CountryState::NoObjection => "✓",
        CountryState::Objection => "✗",
        CountryState::Comments => "✎",
        CountryState::NoAnswer => "–",
        CountryState::Late => "⏱",
    }
}

fn position_state(p: Position) -> CountryState {
    match p {
        Position::NoObjection => CountryState::NoObjection,
        Position::Objection => CountryState::Objection,
        Position::Comments => CountryState::Comments,
    }
}

// ---------------------------------------------------------------------------------
// Templates

const PAGES: &[(&str, &str)] = &[
    ("_head", include_str!("../../templates/dashboard/_head.hbs")),
    ("_foot", include_str!("../../templates/dashboard/_foot.hbs")),
    ("login", include_str!("../../templates/dashboard/login.hbs")),
    ("home", include_str!("../../templates/dashboard/home.hbs")),
    (
        "consultation",
        include_str!("../../templates/dashboard/consultation.hbs"),
    ),
    ("new", include_str!("../../templates/dashboard/new.hbs")),
    (
        "directory",
        include_str!("../../templates/dashboard/directory.hbs"),
    ),
    (
        "inbound",
        include_str!("../../templates/dashboard/inbound.hbs"),
    ),
    (
        "confirm",
        include_str!("../../templates/dashboard/confirm.hbs"),
    ),
    ("error", include_str!("../../templates/dashboard/error.hbs")),
];

const STYLESHEET: &str = include_str!("../../templates/dashboard/dashboard.css");

/// The pages, parsed once. Strict mode: a misspelt variable is an error (the tests
/// render every page), never a silent blank. The default escape function escapes
/// `& < > " ' \` =` in every `{{value}}`; no page uses `{{{raw}}}`.
static REGISTRY: LazyLock<Result<Handlebars<'static>, String>> = LazyLock::new(|| {
    let mut r = Handlebars::new();
    r.set_strict_mode(true);
    for (name, source) in PAGES {
        r.register_template_string(name, source)
            .map_err(|e| format!("templates/dashboard/{name}.hbs: {e}"))?;
    }
    Ok(r)
});

/// Checks that every page parses (for `puebla check` and the tests).
pub fn check_templates() -> Result<(), String> {
    REGISTRY.as_ref().map(|_| ()).map_err(Clone::clone)
}

fn render(page: &str, data: &Value) -> Result<String, PageError> {
    let registry = REGISTRY
        .as_ref()
        .map_err(|e| PageError::Unexpected(anyhow::anyhow!("{e}")))?;
    registry
        .render(page, data)
        .map_err(|e| PageError::Unexpected(anyhow::anyhow!("rendering {page}: {e}")))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        STYLESHEET,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------
// Sessions, languages and errors

/// The audit log's actor for a dashboard session's actions.
fn web_actor(session: &Session) -> String {
    format!("web:{}", session.caller.name)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A random id from a cookie: 64 hex digits, or nothing.
fn cookie_id(headers: &HeaderMap, name: &str) -> Option<String> {
    let raw = cookie(headers, name)?;
    let id = percent_decode_str(raw).decode_utf8().ok()?;
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
}

/// Whether a TLS-terminating proxy says the request came over HTTPS (cookies are
/// then `Secure` even without an https `PUEBLA_PUBLIC_URL`).
fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// What every page needs: the language, the session if any, the path (for the
/// language switch).
struct Env {
    lang: Lang,
    /// Set when `?lang=` chose the language: it is remembered in a cookie.
    remember_lang: bool,
    session: Option<Session>,
    /// The session cookie's id, when the session is valid (to end it at logout).
    session_id: Option<String>,
    /// The pre-session id the login form's CSRF token is bound to: the cookie's, or a
    /// new one made (and set) when a page needs it.
    login_id: std::sync::OnceLock<String>,
    login_cookie: Option<String>,
    /// Cookies are `Secure`: the public URL is https, or a proxy says the request was.
    secure_cookies: bool,
    path: String,
}

impl Env {
    async fn new(
        state: &SharedState,
        headers: &HeaderMap,
        query: &BTreeMap<String, String>,
        path: &str,
    ) -> Env {
        let from_query = query.get("lang").and_then(|l| Lang::parse(l));
        let lang = from_query
            .or_else(|| cookie(headers, LANG_COOKIE).and_then(Lang::parse))
            .or_else(|| {
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(',').find_map(Lang::parse))
            })
            .unwrap_or(Lang::En);
        let session_id = cookie_id(headers, SESSION_COOKIE);
        let session = match &session_id {
            None => None,
            Some(id) => match session::resume(state, id).await {
                // A token that may not read (an `ingest` token) holds no session.
                Ok(Some(s)) if !s.caller.role.allows(Role::Viewer) => None,
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "cannot check a dashboard session");
                    None
                }
            },
        };
        Env {
            lang,
            remember_lang: from_query.is_some(),
            session_id: session_id.filter(|_| session.is_some()),
            session,
            login_id: std::sync::OnceLock::new(),
            login_cookie: cookie_id(headers, LOGIN_COOKIE),
            secure_cookies: state.sessions.secure || forwarded_https(headers),
            path: path.to_string(),
        }
    }

    /// The pre-session id for the login form (made on first use when the browser
    /// has none; [`Env::respond`] then sets its cookie).
    fn login_id(&self) -> Result<&str, PageError> {
        if let Some(id) = self.login_id.get().or(self.login_cookie.as_ref()) {
            return Ok(id);
        }
        let id = session::new_id()?;
        Ok(self.login_id.get_or_init(|| id))
    }

    /// The login page, with `error` shown when given.
    fn login_page(&self, status: StatusCode, error: Option<String>) -> Response {
        let page = self.login_id().and_then(|id| {
            self.page(
                status,
                "login",
                json!({"error": error, "login_csrf": session::csrf_of("login", id)}),
            )
        });
        page.unwrap_or_else(|e| plain_500(&e))
    }

    /// A `Set-Cookie` header value (an empty `value` clears the cookie).
    fn cookie(&self, name: &str, value: &str) -> Option<HeaderValue> {
        HeaderValue::from_str(&session::cookie(name, value, self.secure_cookies)).ok()
    }

    fn t(&self, key: &str) -> String {
        tr(self.lang, key)
    }

    fn session(&self) -> Result<&Session, PageError> {
        self.session.as_ref().ok_or(PageError::Unauthorized)
    }

    fn require(&self, role: Role) -> Result<&Session, PageError> {
        let s = self.session()?;
        if s.caller.role.allows(role) {
            Ok(s)
        } else {
            Err(PageError::Forbidden)
        }
    }

    /// The variables every page has.
    fn base(&self) -> Map<String, Value> {
        let user = self.session.as_ref().map(|s| {
            json!({
                "name": s.caller.name,
                "role": s.caller.role.as_str(),
            })
        });
        let role = self.session.as_ref().map(|s| s.caller.role);
        let mut m = Map::new();
        m.insert("t".into(), strings(self.lang));
        m.insert("lang".into(), json!(self.lang.code()));
        m.insert("other_lang".into(), json!(self.lang.other().code()));
        m.insert("path".into(), json!(self.path));
        m.insert("user".into(), user.unwrap_or(Value::Null));
        m.insert(
            "csrf".into(),
            json!(self.session.as_ref().map(|s| s.csrf.clone())),
        );
        m.insert(
            "can_act".into(),
            json!(role.is_some_and(|r| r.allows(Role::Ppt))),
        );
        m.insert(
            "is_admin".into(),
            json!(role.is_some_and(|r| r.allows(Role::Admin))),
        );
        m.insert("flash".into(), Value::Null);
        m
    }

    /// A page: `data`'s keys on top of [`Env::base`].
    fn page(&self, status: StatusCode, page: &str, data: Value) -> Result<Response, PageError> {
        let mut all = self.base();
        if let Value::Object(extra) = data {
            all.extend(extra);
        }
        let html = render(page, &Value::Object(all))?;
        Ok(self.respond(status, html))
    }

    fn respond(&self, status: StatusCode, html: String) -> Response {
        let mut response = (status, html).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Some(id) = self.login_id.get() {
            if let Some(v) = self.cookie(LOGIN_COOKIE, id) {
                h.append(header::SET_COOKIE, v);
            }
        }
        if self.remember_lang {
            let value = format!(
                "{LANG_COOKIE}={}; Path=/; SameSite=Strict; Max-Age=31536000",
                self.lang.code()
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.append(header::SET_COOKIE, v);
            }
        }
        response
    }

    /// The page for an error (the login page for a missing session).
    fn error(&self, e: PageError) -> Response {
        let (status, message) = match &e {
            PageError::Unauthorized => return self.login_page(StatusCode::UNAUTHORIZED, None),
            PageError::Forbidden => (StatusCode::FORBIDDEN, self.t("err_403")),
            PageError::Csrf => (StatusCode::FORBIDDEN, self.t("err_csrf")),
            PageError::NotFound(m) => {
                (StatusCode::NOT_FOUND, format!("{}: {m}", self.t("err_404")))
            }
            PageError::Conflict(m) => (StatusCode::CONFLICT, format!("{}: {m}", self.t("err_409"))),
            PageError::Invalid(m) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{}: {m}", self.t("err_422")),
            ),
            PageError::Unexpected(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "dashboard request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, self.t("err_500"))
            }
        };
        self.page(
            status,
            "error",
            json!({"status": status.as_u16(), "message": message}),
        )
        .unwrap_or_else(|e| plain_500(&e))
    }
}

fn plain_500(e: &PageError) -> Response {
    tracing::error!(error = %e, "a dashboard error page failed to render");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; the server log has the details",
    )
        .into_response()
}

#[derive(Debug, thiserror::Error)]
enum PageError {
    #[error("no session")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("bad CSRF token")]
    Csrf,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unauthorized => PageError::Unauthorized,
            ApiError::Forbidden { .. } => PageError::Forbidden,
            ApiError::NotFound(m) => PageError::NotFound(m),
            ApiError::Conflict { message, .. } => PageError::Conflict(message),
            ApiError::Validation { field, message } => {
                PageError::Invalid(format!("{field}: {message}"))
            }
            ApiError::UnsupportedMediaType { .. }
            | ApiError::PayloadTooLarge { .. }
            | ApiError::BodyTooLarge => PageError::Invalid(e.to_string()),
            ApiError::Busy | ApiError::Timeout => PageError::Conflict(e.to_string()),
            ApiError::Unexpected(e) => PageError::Unexpected(e),
        }
    }
}

impl From<crate::engine::EngineError> for PageError {
    fn from(e: crate::engine::EngineError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<crate::engine::ports::StoreError> for PageError {
    fn from(e: crate::engine::ports::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A form body as name → value (the last value of a repeated name wins); line
/// breaks are normalised to `\n`, as browsers send textareas with `\r\n`.
fn form(body: &Bytes) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.replace("\r\n", "\n")))
        .collect()
}

/// The time as the PPT's staff read it: in the presidency's time zone.
fn local_time(tz: Option<Tz>, at: DateTime<Utc>) -> String {
    match tz {
        Some(tz) => at
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
        None => at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

fn presidency_tz(state: &SharedState, c: &Consultation) -> Option<Tz> {
    state
        .engine
        .catalog()
        .body
        .member(c.presidency)
        .ok()
        .map(|m| m.time_zone)
}

/// Working days counted once per (calendar countries, today, last day) within one
/// page: the home page lists every open consultation, and most share a few
/// deadlines and calendars. Lives as long as the request, so it cannot go stale.
type WorkingDaysMemo = std::collections::HashMap<(Vec<CountryCode>, NaiveDate, NaiveDate), u32>;

/// The working days left in the open round after today, under the procedure's
/// calendar policy (`None`: no open round, or the calendars cannot say).
fn working_days_left(state: &SharedState, c: &Consultation) -> Option<Value> {
    working_days_left_memo(state, c, &mut WorkingDaysMemo::new())
}

fn working_days_left_memo(
    state: &SharedState,
    c: &Consultation,
    memo: &mut WorkingDaysMemo,
) -> Option<Value> {
    let round = c.rounds.last().filter(|r| r.is_open())?;
    let catalog = state.engine.catalog();
    let ctx = Context {
        procedure: catalog.procedure(&c.procedure)?,
        body: &catalog.body,
        calendars: &catalog.calendars,
    };
    let tz = presidency_tz(state, c)?;
    let now = state.engine.now();
    if round.deadline <= now {
        return Some(json!({"days": 0, "passed": true, "last_day": false}));
    }
    let today = now.with_timezone(&tz).date_naive();
    let last = round.deadline.with_timezone(&tz).date_naive();
    let key = (ctx.calendar_countries(c), today, last);
    let days = match memo.get(&key) {
        Some(days) => *days,
        None => {
            let days = catalog
                .calendars
                .working_days_between(&key.0, today, last)
                .ok()?;
            memo.insert(key, days);
            days
        }
    };
    Some(json!({"days": days, "passed": false, "last_day": days == 0, "one": days == 1}))
}

fn country_name(state: &SharedState, lang: Lang, code: CountryCode) -> String {
    state
        .engine
        .catalog()
        .body
        .member(code)
        .map(|m| m.name(lang.language()).to_string())
        .unwrap_or_else(|_| code.to_string())
}

fn query_flash(env: &Env, query: &BTreeMap<String, String>) -> Value {
    query
        .get("done")
        .filter(|a| ACTIONS.iter().any(|(name, _)| name == a))
        .map(|a| json!(format!("{}: {}", env.t("done"), env.t(&format!("act_{a}")))))
        .unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------------
// Pages

type PageQuery = Query<BTreeMap<String, String>>;

/// `GET /`: the login page, or the consultations and the health panel.
async fn home(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(query): PageQuery,
) -> Response {
    let env = Env::new(&state, &headers, &query, "/").await;
    if env.session.is_none() {
        return env.login_page(StatusCode::OK, None);
    }
    let result = home_page(&state, &env, &query).await;
    result.unwrap_or_else(|e| env.error(e))
}

async fn home_page(
    state: &SharedState,
    env: &Env,
    query: &BTreeMap<String, String>,
) -> Result<Response, PageError> {
    let all = query.get("all").is_some_and(|v| v == "1");
    let store = state.engine.store();
    let mut memo = WorkingDaysMemo::new();
    let list: Vec<Value> = state
        .engine
        .list(!all)
        .await?
        .iter()
        .map(|c| {
            let tz = presidency_tz(state, c);
            let stage = c.stage_name();
            json!({
                "reference": c.reference.to_string(),
                "title": c.title,
                "stage": stage,
                "stage_label": label(env.lang, "stage", &stage),
                "open": c.is_open(),
                "deadline": c.rounds.last().map(|r| local_time(tz, r.deadline)),
                "time_left": working_days_left_memo(state, c, &mut memo),
            })
        })
        .collect();
    let tz_of = |c: &Consultation| presidency_tz(state, c);
    let to_review: Vec<Value> = state
        .engine
        .list(true)
        .await?
        .iter()
        .flat_map(|c| {
            let tz = tz_of(c);
            report::review_items(c)
                .into_iter()
                .map(move |i| (tz, i))
                .collect::<Vec<_>>()
        })
        .map(|(tz, i)| review_item_json(state, env.lang, tz, &i))
        .collect();
    let outbox = store.outbox_counts().await?;
    let failed: Vec<Value> = store
        .failed_notices(10)
        .await?
        .into_iter()
        .map(|n| {
            json!({
                "recipient": n.notice.recipient,
                "subject": n.notice.subject,
                "error": n.last_error,
                "reference": n.notice.reference,
            })
        })
        .collect();
    let inbound = store.inbound_counts().await?;
    let quarantined: Vec<Value> = state
        .engine
        .holding_list(10)
        .await?
        .into_iter()
        .map(|m| {
            json!({
                "id": m.id,
                "sender": m.reading.sender,
                "subject": m.reading.subject,
                "reason": m.reading.reason,
                "received": local_time(None, m.received_at),
            })
        })
        .collect();
    let healthy = outbox.failed == 0 && inbound.failed == 0 && inbound.quarantined == 0;
    env.page(
        StatusCode::OK,
        "home",
        json!({
            "all": all,
            "consultations": list,
            "outbox": {
                "pending": outbox.pending, "sending": outbox.sending, "retrying": outbox.retrying,
                "sent": outbox.sent, "failed": outbox.failed,
            },
            "failed_notices": failed,
            "inbound": {
                "stored": inbound.stored, "processed": inbound.processed,
                "quarantined": inbound.quarantined, "failed": inbound.failed,
                "discarded": inbound.discarded,
            },
            "quarantined": quarantined,
            "healthy": healthy,
            "to_review": to_review,
        }),
    )
}

/// `GET /consultations/{reference}`.
async fn consultation_page(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Query(query): PageQuery,
) -> Response {
    let path = format!(
        "/consultations/{}",
        utf8_percent_encode(&reference, NON_ALPHANUMERIC)
    );
    let env = Env::new(&state, &headers, &query, &path).await;
    if env.session.is_none() {
        return redirect("/");
    }
    let result = consultation_view(&state, &env, &reference, &query).await;
    result.unwrap_or_else(|e| env.error(e))
}

async fn consultation_view(
    state: &SharedState,
    env: &Env,
    reference: &str,
    query: &BTreeMap<String, String>,
) -> Result<Response, PageError> {
    let view = report::consultation_view(&state.engine, reference).await?;
    let c = &view.consultation;
    let evidence = report::Evidence::read(&state.engine, c, None).await?;
    let tz = presidency_tz(state, c);
    let lang = env.lang;
    let stage = c.stage_name();

    let rounds: Vec<Value> = c
        .rounds
        .iter()
        .map(|r| {
            json!({
                "number": r.number,
                "stage_label": label(lang, "stage", &r.stage),
                "version": r.version,
                "deadline": local_time(tz, r.deadline),
                "open": r.is_open(),
            })
        })
        .collect();
    let matrix: Vec<Value> = c
        .participants
        .iter()
        .map(|country| {
            let cells: Vec<Value> = c
                .rounds
                .iter()
                .map(|r| {
                    let s = report::round_state(r, *country, &evidence);
                    // An answer still in doubt is marked in the matrix too.
                    let doubt = to_review_here(c, r.number, *country);
                    json!({
                        "state": s.as_str(),
                        "label": label(lang, "state", s.as_str()),
                        "symbol": state_symbol(s),
                        "doubt": doubt.then(|| tr(lang, "needs_review")),
                    })
                })
                .collect();
            json!({
                "code": country.to_string(),
                "name": country_name(state, lang, *country),
                "cells": cells,
            })
        })
        .collect();

    // Answers that came by email (or the answer page) link to their raw message when
    // it is stored.
    let wanted: HashSet<&str> = c
        .rounds
        .iter()
        .flat_map(|r| r.answers.values().chain(&r.superseded).chain(&r.late))
        .filter_map(|a| match &a.source {
            AnswerSource::Email {
                message_id: Some(m),
                ..
            }
            | AnswerSource::Web {
                message_id: Some(m),
                ..
            } => Some(m.as_str()),
            AnswerSource::Email { .. } | AnswerSource::Web { .. } | AnswerSource::Staff { .. } => {
                None
            }
        })
        .collect();
    let mut inbound_ids: BTreeMap<String, i64> = BTreeMap::new();
    for id in wanted {
        if let Some(m) = state.engine.store().inbound_by_message_id(id).await? {
            inbound_ids.insert(m.message_id, m.id);
        }
    }
    let answer = |r: u32, a: &Answer, kind: &str| -> Value {
        let (from, inbound, recorded_by, channel) = match &a.source {
            AnswerSource::Email { from, message_id } => (
                Some(from.clone()),
                message_id
                    .as_ref()
                    .and_then(|m| inbound_ids.get(m))
                    .copied(),
                None,
                None,
            ),
            AnswerSource::Web {
                focal_point,
                message_id,
            } => (
                Some(format!("{focal_point} (web)")),
                message_id
                    .as_ref()
                    .and_then(|m| inbound_ids.get(m))
                    .copied(),
                None,
                None,
            ),
            AnswerSource::Staff {
                recorded_by,
                channel,
            } => (None, None, Some(recorded_by.clone()), Some(channel.clone())),
        };
        let s = position_state(a.position);
        json!({
            "round": r,
            "country": a.country.to_string(),
            "country_name": country_name(state, lang, a.country),
            "state": s.as_str(),
            "label": label(lang, "state", s.as_str()),
            "symbol": state_symbol(s),
            "text": a.text,
            "received": local_time(tz, a.received_at),
            "from": from,
            "inbound": inbound,
            "recorded_by": recorded_by,
            "channel": channel,
            "flags": a.review_reasons().iter().map(|r| tr(lang, &format!("review_{}", r.as_str()))).collect::<Vec<_>>(),
            "needs_review": a.needs_review() && kind == "counts",
            "reviewed": a.review.is_some(),
            "kind": kind,
            "kind_label": env.t(kind),
        })
    };
    let mut answers = Vec::new();
    for r in c.rounds.iter().rev() {
        for a in r.answers.values() {
            answers.push(answer(r.number, a, "counts"));
        }
        for a in &r.late {
            answers.push(answer(r.number, a, "late"));
        }
        for a in &r.superseded {
            answers.push(answer(r.number, a, "superseded"));
        }
    }

    let timeline: Vec<Value> = view
        .timeline
        .iter()
        .map(|e| {
            json!({
                "at": local_time(tz, e.at),
                "actor": e.actor,
                "action": e.action,
                "detail": if e.detail_json == "{}" || e.detail_json == "null" { String::new() } else { e.detail_json.clone() },
            })
        })
        .collect();

    let current = c.current_version();
    let diff = c.diff_of_version(current.number).map(|d| diff_lines(&d));
    // The round whose answers can be reviewed: the open one, or the last one while
    // the decision waits.
    let open_round = match c.stage {
        Stage::AwaitingDecision => c.rounds.last().map(|r| r.number),
        _ => c.rounds.last().filter(|r| r.is_open()).map(|r| r.number),
    };
    let to_review: Vec<Value> = report::review_items(c)
        .iter()
        .map(|i| review_item_json(state, lang, tz, i))
        .collect();
    let forms = match c.stage {
        Stage::Draft => json!({"submit": true, "withdraw": true}),
        Stage::TroikaReview => json!({"troika": true, "withdraw": true}),
        Stage::Round { .. } => {
            json!({"extend": true, "answer": true, "reclassify": true, "withdraw": true})
        }
        Stage::Revision { .. } => json!({"revise": true, "withdraw": true}),
        // Reviewing decides; a withdrawal stays possible. The round has closed, so
        // nothing extends it and answers to it are late.
        Stage::AwaitingDecision => json!({"reclassify": true, "withdraw": true}),
        Stage::Adopted => json!({"report": true, "withdraw": true}),
        Stage::NotAdopted | Stage::Concluded | Stage::Withdrawn => json!({}),
    };
    let mut forms = forms;
    for key in [
        "submit",
        "troika",
        "extend",
        "answer",
        "reclassify",
        "withdraw",
        "revise",
        "report",
    ] {
        if forms.get(key).is_none() {
            forms[key] = json!(false);
        }
    }
    let any_form = forms
        .as_object()
        .is_some_and(|m| m.values().any(|v| v == &json!(true)));
    let troika_countries: Vec<Value> = c
        .troika
        .reviewers()
        .into_iter()
        .map(|code| json!({"code": code.to_string(), "name": country_name(state, lang, code)}))
        .collect();
    let participants: Vec<Value> = c
        .participants
        .iter()
        .map(|code| json!({"code": code.to_string(), "name": country_name(state, lang, *code)}))
        .collect();
    let positions: Vec<Value> = [
        Position::NoObjection,
        Position::Objection,
        Position::Comments,
    ]
    .iter()
    .map(|p| json!({"value": p.as_str(), "label": label(lang, "state", p.as_str())}))
    .collect();
    let procedure_name = state
        .engine
        .catalog()
        .procedure(&c.procedure)
        .map_or_else(|| c.procedure.clone(), |p| p.name.clone());
    let attachments: Vec<Value> = state
        .engine
        .attachments(reference)
        .await?
        .into_iter()
        .map(|a| {
            json!({
                "href": format!("{}/attachments/{}", consultation_path(reference), a.id),
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "version": a.version,
            })
        })
        .collect();

    env.page(
        StatusCode::OK,
        "consultation",
        json!({
            "flash": query_flash(env, query),
            "c": {
                "reference": c.reference.to_string(),
                "title": c.title,
                "stage": stage,
                "stage_label": label(lang, "stage", &stage),
                "procedure": procedure_name,
                "presidency": country_name(state, lang, c.presidency),
                "troika": c.troika.describe(),
                "version": current.number,
                "deadline": c.rounds.last().map(|r| local_time(tz, r.deadline)),
                "time_left": working_days_left(state, c),
            },
            "rounds": rounds,
            "matrix": matrix,
            "text": current.text,
            "diff": diff,
            "answers": answers,
            "timeline": timeline,
            "forms": forms,
            "any_form": any_form,
            "open_round": open_round,
            "troika_countries": troika_countries,
            "participants": participants,
            "positions": positions,
            "attachments": attachments,
            "to_review": to_review,
            "awaiting_decision": c.stage == Stage::AwaitingDecision,
        }),
    )
}

/// Whether `country`'s answer in round `round` of `c` is one to review.
fn to_review_here(c: &Consultation, round: u32, country: CountryCode) -> bool {
    c.rounds.last().is_some_and(|r| r.number == round)
        && c.answers_to_review().iter().any(|a| a.country == country)
}

/// An answer to review as the pages show it, with what its review forms carry.
fn review_item_json(
    state: &SharedState,
    lang: Lang,
    tz: Option<Tz>,
    i: &report::ReviewItem,
) -> Value {
    let s = position_state(i.position);
    let others: Vec<Value> = [
        Position::NoObjection,
        Position::Objection,
        Position::Comments,
    ]
    .iter()
    .filter(|p| **p != i.position)
    .map(|p| json!({"value": p.as_str(), "label": label(lang, "state", p.as_str())}))
    .collect();
    json!({
        "reference": i.reference,
        "round": i.round,
        "country": i.country.to_string(),
        "country_name": country_name(state, lang, i.country),
        "position": i.position.as_str(),
        "state": s.as_str(),
        "label": label(lang, "state", s.as_str()),
        "symbol": state_symbol(s),
        "received": local_time(tz, i.received_at),
        "received_at": i.received_at.to_rfc3339(),
        "reasons": i.reasons.iter().map(|r| tr(lang, &format!("review_{}", r.as_str()))).collect::<Vec<_>>(),
        "reading": i.reading,
        "from": i.from,
        "conflict": i.conflict.as_ref().map(|k| json!({
            "from": k.from.clone().unwrap_or_else(|| tr(lang, "entered_by_staff")),
            "label": label(lang, "state", k.position.as_str()),
            "received": local_time(tz, k.received_at),
        })),
        "text": i.text,
        "blocks_decision": i.blocks_decision,
        "others": others,
    })
}

/// `GET /consultations/{reference}/attachments/{id}`: the file as a download, for
/// any logged-in role (the same response as the API's).
async fn attachment_download(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path((reference, id)): Path<(String, String)>,
) -> Response {
    let env = Env::new(&state, &headers, &BTreeMap::new(), "/").await;
    if env.session.is_none() {
        return redirect("/");
    }
    match super::api::attachment_response(&state, &reference, &id).await {
        Ok(r) => r,
        Err(e) => env.error(e.into()),
    }
}

/// A unified diff as lines with a class each (`add`, `del`, `hunk`, `ctx`).
fn diff_lines(diff: &str) -> Vec<Value> {
    diff.lines()
        .map(|line| {
            let class = if line.starts_with("+++") || line.starts_with("---") {
                "head"
            } else if line.starts_with('+') {
                "add"
            } else if line.starts_with('-') {
                "del"
            } else if line.starts_with("@@") {
                "hunk"
            } else {
                "ctx"
            };
            json!({"class": class, "line": line})
        })
        .collect()
}

/// `GET /new`: the form that starts a consultation (PPT).
async fn new_consultation_page(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(query): PageQuery,
) -> Response {
    let env = Env::new(&state, &headers, &query, "/new").await;
    if env.session.is_none() {
        return redirect("/");
    }
    let result = env.require(Role::Ppt).and_then(|_| {
        let procedures: Vec<Value> = state
            .engine
            .catalog()
            .procedures
            .values()
            .map(|p| json!({"id": p.id, "name": p.name, "default": p.id == "rcm-five-day"}))
            .collect();
        let limits = state.engine.attachment_limits();
        env.page(
            StatusCode::OK,
            "new",
            json!({
                "procedures": procedures,
                "max_file_bytes": limits.max_file_bytes,
                "max_total_bytes": limits.max_total_bytes,
            }),
        )
    });
    result.unwrap_or_else(|e| env.error(e))
}

/// `GET /directory`: focal points and the presidency rotation; forms for the TS.
async fn directory_page(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(query): PageQuery,
) -> Response {
    let env = Env::new(&state, &headers, &query, "/directory").await;
    if env.session.is_none() {
        return redirect("/");
    }
    let result = directory_view(&state, &env, &query).await;
    result.unwrap_or_else(|e| env.error(e))
}

async fn directory_view(
    state: &SharedState,
    env: &Env,
    query: &BTreeMap<String, String>,
) -> Result<Response, PageError> {
    let store = state.engine.store();
    let bouncing = store.bouncing_focal_points().await?;
    let focal_points: Vec<Value> = store
        .focal_points(None, false)
        .await?
        .into_iter()
        .map(|f| {
            let country = CountryCode::parse(&f.country).ok();
            json!({
                "country": f.country,
                "country_name": country.map_or_else(|| f.country.clone(), |c| country_name(state, env.lang, c)),
                "name": f.name,
                "email": f.email,
                "language": f.language,
                "active": f.active,
                "bouncing": bouncing.contains(&f.id),
            })
        })
        .collect();
    let body = state.engine.body().await?;
    let rotation: Vec<Value> = body
        .presidency
        .iter()
        .map(|(year, code)| {
            json!({"year": year, "code": code.to_string(), "name": country_name(state, env.lang, *code)})
        })
        .collect();
    let members: Vec<Value> = body
        .members
        .iter()
        .map(|m| json!({"code": m.code.to_string(), "name": m.name(env.lang.language())}))
        .collect();
    env.page(
        StatusCode::OK,
        "directory",
        json!({
            "flash": query_flash(env, query),
            "focal_points": focal_points,
            "rotation": rotation,
            "members": members,
        }),
    )
}

/// `GET /inbound/{id}`: one raw inbound message as stored, and what was read from it.
async fn inbound_page(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): PageQuery,
) -> Response {
    let env = Env::new(
        &state,
        &headers,
        &query,
        &format!("/inbound/{}", utf8_percent_encode(&id, NON_ALPHANUMERIC)),
    )
    .await;
    if env.session.is_none() {
        return redirect("/");
    }
    let result = inbound_view(&state, &env, &id, &query).await;
    result.unwrap_or_else(|e| env.error(e))
}

/// How much of a raw message the page shows.
const RAW_SHOWN: usize = 256 * 1024;

async fn inbound_view(
    state: &SharedState,
    env: &Env,
    id: &str,
    query: &BTreeMap<String, String>,
) -> Result<Response, PageError> {
    let not_found = || PageError::NotFound(format!("inbound message {id}"));
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let m = state
        .engine
        .store()
        .inbound_message(id)
        .await?
        .ok_or_else(not_found)?;
    let shown = &m.raw[..m.raw.len().min(RAW_SHOWN)];
    let r = &m.reading;
    let members: Vec<Value> = state
        .engine
        .catalog()
        .body
        .members
        .iter()
        .map(|mb| {
            json!({"code": mb.code.to_string(), "name": mb.name(env.lang.language()),
                   "selected": r.country.as_deref() == Some(mb.code.as_str())})
        })
        .collect();
    env.page(
        StatusCode::OK,
        "inbound",
        json!({
            "flash": query_flash(env, query),
            "members": members,
            "can_release": matches!(m.status, InboundStatus::Quarantined | InboundStatus::AwaitingConfirmation),
            "can_discard": matches!(m.status, InboundStatus::Quarantined | InboundStatus::AwaitingConfirmation | InboundStatus::Failed),
            "m": {
                "id": m.id,
                "message_id": m.message_id,
                "source": m.source,
                "received": local_time(None, m.received_at),
                "status": m.status.as_str(),
                "size": m.size,
                "truncated": m.truncated || m.raw.len() > RAW_SHOWN,
                "error": m.error,
                "sender": r.sender,
                "subject": r.subject,
                "kind": r.kind,
                "reference": r.reference,
                "round": r.round,
                "country": r.country,
                "position": r.position,
                "reason": r.reason,
                "trimmed": r.trimmed,
                "raw": String::from_utf8_lossy(shown),
            }
        }),
    )
}

// ---------------------------------------------------------------------------------
// Logging in and out

/// `POST /login` (form: `csrf`, `token`): throttled per client address and overall
/// (429 with `Retry-After` before the form is read); the form's CSRF token must be
/// the one bound to the browser's pre-session cookie; the token is checked like the
/// API does, and a session is opened for it (the cookie holds the session's id).
async fn login(State(state): State<SharedState>, request: axum::extract::Request) -> Response {
    use axum::extract::FromRequest as _;
    let env = Env::new(&state, request.headers(), &BTreeMap::new(), "/").await;
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if let Err(wait) = state.login_throttle.check(client) {
        let seconds = super::throttle::retry_after_seconds(wait);
        tracing::warn!(client = ?client, retry_after = seconds, "dashboard login throttled");
        let mut r = env.login_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some(env.t("login_throttled")),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return r;
    }
    let body = match Bytes::from_request(request, &state).await {
        Ok(body) => body,
        Err(e) => return env.error(PageError::Invalid(format!("body: {}", e.body_text()))),
    };
    let fields = form(&body);
    let given = fields.get("csrf").map(String::as_str).unwrap_or_default();
    let expected = env
        .login_cookie
        .as_deref()
        .map(|id| session::csrf_of("login", id));
    if !expected.is_some_and(|e| bool::from(given.as_bytes().ct_eq(e.as_bytes()))) {
        return env.login_page(StatusCode::FORBIDDEN, Some(env.t("err_csrf")));
    }
    let token = fields.get("token").map(|t| t.trim()).unwrap_or_default();
    match auth::authenticate_token(&state, token).await {
        // An `ingest` token only posts raw messages: it cannot read the dashboard.
        Ok(caller) if !caller.role.allows(Role::Viewer) => env.error(PageError::Forbidden),
        Ok(caller) => {
            if let Some(old) = &env.session_id {
                if let Err(e) = session::close(&state, old).await {
                    return env.error(e.into());
                }
            }
            let id = match session::open(&state, &auth::hash_token(token)).await {
                Ok(id) => id,
                Err(e) => return env.error(e.into()),
            };
            tracing::info!(caller = %caller.name, role = %caller.role, "dashboard login");
            let mut r = redirect("/");
            for (name, value) in [(SESSION_COOKIE, id.as_str()), (LOGIN_COOKIE, "")] {
                if let Some(v) = env.cookie(name, value) {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            r
        }
        Err(ApiError::Unauthorized) => {
            env.login_page(StatusCode::UNAUTHORIZED, Some(env.t("login_failed")))
        }
        Err(e) => env.error(e.into()),
    }
}

/// `POST /logout` (form: `csrf`): ends the session and clears its cookie.
async fn logout(State(state): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    let env = Env::new(&state, &headers, &BTreeMap::new(), "/").await;
    let fields = form(&body);
    if let Err(e) = check_csrf(&env, &fields) {
        return env.error(e);
    }
    if let Some(id) = &env.session_id {
        if let Err(e) = session::close(&state, id).await {
            return env.error(e.into());
        }
    }
    let mut r = redirect("/");
    if let Some(v) = env.cookie(SESSION_COOKIE, "") {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// 401 without a session; 403 unless the form's `csrf` is the session's.
fn check_csrf(env: &Env, fields: &BTreeMap<String, String>) -> Result<(), PageError> {
    let session = env.session()?;
    let given = fields.get("csrf").map(String::as_str).unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(session.csrf.as_bytes())) {
        Ok(())
    } else {
        Err(PageError::Csrf)
    }
}

// ---------------------------------------------------------------------------------
// Actions

/// Every action the dashboard offers, with the role it needs.
const ACTIONS: &[(&str, Role)] = &[
    ("start", Role::Ppt),
    ("submit", Role::Ppt),
    ("troika", Role::Ppt),
    ("revise", Role::Ppt),
    ("extend", Role::Ppt),
    ("withdraw", Role::Ppt),
    ("reclassify", Role::Ppt),
    ("report", Role::Ppt),
    ("fp_add", Role::Admin),
    ("fp_deactivate", Role::Admin),
    ("fp_clear_bouncing", Role::Admin),
    ("presidency", Role::Admin),
    ("answer", Role::Ppt),
    ("release", Role::Admin),
    ("discard", Role::Admin),
    ("fp_import", Role::Admin),
];

/// A parsed action form.
#[derive(Debug)]
enum Action {
    Start {
        title: String,
        text: String,
        procedure: String,
        year: Option<i32>,
    },
    Consultation {
        reference: String,
        event: Event,
    },
    AddFocalPoint {
        country: String,
        name: String,
        email: String,
        language: Option<String>,
    },
    DeactivateFocalPoint {
        email: String,
    },
    ClearBouncing {
        email: String,
    },
    SetPresidency {
        year: i32,
        country: CountryCode,
    },
    RecordAnswer {
        reference: String,
        country: String,
        position: String,
        text: String,
        channel: Option<String>,
    },
    Release {
        id: String,
        country: String,
        reference: Option<String>,
    },
    Discard {
        id: String,
        reason: String,
    },
    ImportFocalPoints {
        text: String,
        csv: bool,
    },
}

/// Whether a focal point list is CSV: `format` when given (`csv`/`toml`), else the
/// TOML table header decides.
fn import_is_csv(format: Option<&str>, text: &str) -> Result<bool, PageError> {
    match format {
        Some("csv") => Ok(true),
        Some("toml") => Ok(false),
        None | Some("auto") => Ok(!text.contains("[[focal_point]]")),
        Some(other) => Err(PageError::Invalid(format!(
            "format: `{other}` must be toml or csv"
        ))),
    }
}

struct Fields<'a>(&'a BTreeMap<String, String>);

impl Fields<'_> {
    /// A field's trimmed value; `None` when absent or blank.
    fn opt(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    fn req(&self, name: &str) -> Result<String, PageError> {
        self.opt(name)
            .ok_or_else(|| PageError::Invalid(format!("{name}: is empty")))
    }

    /// A text kept as typed (only trailing blanks removed), required.
    fn text(&self, name: &str) -> Result<String, PageError> {
        self.req(name)?;
        Ok(self.0[name].trim_end().to_string())
    }

    fn country(&self, name: &str) -> Result<CountryCode, PageError> {
        CountryCode::parse(&self.req(name)?).map_err(|e| PageError::Invalid(format!("{name}: {e}")))
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, PageError> {
        let v = self.req(name)?;
        v.parse()
            .map_err(|_| PageError::Invalid(format!("{name}: `{v}` is not a number")))
    }
}

/// A typed value refused by [`input`]: a form error naming the field.
fn invalid(e: input::InputError) -> PageError {
    PageError::Invalid(e.to_string())
}

fn parse_action(kind: &str, fields: &BTreeMap<String, String>) -> Result<Action, PageError> {
    let f = Fields(fields);
    let on = |name: &str| fields.get(name).is_some_and(|v| v == "on" || v == "yes");
    // Checked here with the engine's own check, so that the confirmation page never
    // shows a value the action would refuse.
    let event = |event: Event| -> Result<Action, PageError> {
        Ok(Action::Consultation {
            reference: f.req("reference")?,
            event: input::check_event(event).map_err(invalid)?,
        })
    };
    match kind {
        "start" => Ok(Action::Start {
            title: input::title(&f.req("title")?).map_err(invalid)?,
            text: input::text("text", &f.text("text")?, input::MAX_TEXT_BYTES).map_err(invalid)?,
            procedure: f.opt("procedure").unwrap_or_else(|| "rcm-five-day".into()),
            year: f
                .opt("year")
                .map(|_| {
                    f.number("year")
                        .and_then(|y| input::year("year", y).map_err(invalid))
                })
                .transpose()?,
        }),
        "submit" => event(Event::Submit {
            // Left empty, the draft goes as it is.
            text: f.opt("text").map(|_| f.text("text")).transpose()?,
        }),
        "troika" => event(Event::TroikaFeedback {
            country: f.country("country")?,
            approve: match f.req("approve")?.as_str() {
                "yes" => true,
                "no" => false,
                other => {
                    return Err(PageError::Invalid(format!(
                        "approve: `{other}` must be yes or no"
                    )))
                }
            },
            comments: f.opt("comments"),
        }),
        "revise" => {
            let text = if on("no_changes") {
                None
            } else {
                Some(f.text("text")?)
            };
            event(Event::Revise {
                text,
                note: f.opt("note"),
            })
        }
        "extend" => event(Event::Extend {
            working_days: f.number("working_days")?,
            reason: f.req("reason")?,
        }),
        "withdraw" => event(Event::Withdraw {
            reason: f.req("reason")?,
        }),
        "reclassify" => event(Event::Reclassify {
            round: f.number("round")?,
            country: f.country("country")?,
            position: Position::parse(&f.req("position")?).ok_or_else(|| {
                PageError::Invalid("position: must be no_objection, objection or comments".into())
            })?,
            // The review forms name the answer shown, so that a newer one is not
            // reviewed unseen.
            received_at: f
                .opt("received_at")
                .map(|v| {
                    DateTime::parse_from_rfc3339(&v)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|_| {
                            PageError::Invalid(format!("received_at: `{v}` is not a time"))
                        })
                })
                .transpose()?,
        }),
        "report" => event(Event::Report {
            text: f.text("text")?,
        }),
        "fp_add" => Ok(Action::AddFocalPoint {
            country: f.req("country")?,
            name: input::name("name", &f.req("name")?).map_err(invalid)?,
            email: f.req("email")?,
            language: f.opt("language"),
        }),
        "fp_deactivate" => Ok(Action::DeactivateFocalPoint {
            email: f.req("email")?,
        }),
        "fp_clear_bouncing" => Ok(Action::ClearBouncing {
            email: f.req("email")?,
        }),
        "answer" => {
            // Checked here so the confirmation never shows a value the action refuses.
            let country = f.country("country")?.to_string();
            let position = f.req("position")?;
            if Position::parse(&position).is_none() {
                return Err(PageError::Invalid(
                    "position: must be no_objection, objection or comments".into(),
                ));
            }
            let text =
                f.0.get("text")
                    .map(|t| t.trim_end().to_string())
                    .unwrap_or_default();
            let channel = f.opt("channel");
            input::staff_answer(&text, channel.as_deref().unwrap_or_default()).map_err(invalid)?;
            Ok(Action::RecordAnswer {
                reference: f.req("reference")?,
                country,
                position,
                text,
                channel,
            })
        }
        "release" => Ok(Action::Release {
            id: f.req("id")?,
            country: f.country("country")?.to_string(),
            reference: f.opt("reference"),
        }),
        "discard" => Ok(Action::Discard {
            id: f.req("id")?,
            reason: input::required_line("reason", &f.req("reason")?, input::MAX_REASON_CHARS)
                .map_err(invalid)?,
        }),
        "fp_import" => {
            let text = f.text("import_text")?;
            let csv = import_is_csv(f.opt("format").as_deref(), &text)?;
            Ok(Action::ImportFocalPoints { text, csv })
        }
        "presidency" => Ok(Action::SetPresidency {
            year: f
                .number("year")
                .and_then(|y: i32| input::year("year", y).map_err(invalid))?,
            country: f.country("country")?,
        }),
        other => Err(PageError::Invalid(format!(
            "action: unknown action `{other}`"
        ))),
    }
}

/// `POST /actions`: the first post shows the confirmation page, the second (with
/// `confirm=yes`) acts. Both need the session's CSRF token and the action's role.
async fn action(State(state): State<SharedState>, request: axum::extract::Request) -> Response {
    let env = Env::new(&state, request.headers(), &BTreeMap::new(), "/").await;
    // Without a session nothing more is read: an anonymous upload is refused
    // before its body arrives (hyper then closes the connection).
    if env.session.is_none() {
        return env.error(PageError::Unauthorized);
    }
    let result = match read_action_form(&state, request).await {
        Ok((fields, uploads)) => act(&state, &env, &fields, uploads).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(|e| env.error(e))
}

/// The fields of an action form, and the files of a `multipart/form-data` one (its
/// `files` inputs; an empty file input is skipped). URL-encoded forms have no files.
async fn read_action_form(
    state: &SharedState,
    request: axum::extract::Request,
) -> Result<(BTreeMap<String, String>, Vec<FileUpload>), PageError> {
    use axum::extract::FromRequest as _;
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|e| PageError::Invalid(format!("body: {}", e.body_text())))?;
        return Ok((form(&body), Vec::new()));
    }
    let bad = |e: axum::extract::multipart::MultipartError| {
        PageError::Invalid(format!("body: {}", e.body_text()))
    };
    let mut parts = axum::extract::Multipart::from_request(request, state)
        .await
        .map_err(|e| PageError::Invalid(format!("body: {}", e.body_text())))?;
    let mut fields = BTreeMap::new();
    let mut files = Vec::new();
    while let Some(field) = parts.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        match field.file_name().map(str::to_string) {
            Some(filename) => {
                let content_type = field.content_type().map(str::to_string);
                let bytes = field.bytes().await.map_err(bad)?;
                if filename.is_empty() && bytes.is_empty() {
                    continue;
                }
                if name != "files" {
                    return Err(PageError::Invalid(format!(
                        "{name}: a file where none is expected"
                    )));
                }
                files.push(FileUpload {
                    filename,
                    content_type,
                    bytes: bytes.to_vec(),
                });
            }
            None => {
                let value = field.text().await.map_err(bad)?;
                fields.insert(name, value.replace("\r\n", "\n"));
            }
        }
    }
    Ok((fields, files))
}

/// The files a confirmation page carried over as hidden fields (`file_N_name`,
/// `file_N_type`, `file_N_b64`): the first post's files come back with the second,
/// so nothing is stored before the confirmation and nothing is stored twice.
fn carried_files(fields: &BTreeMap<String, String>) -> Result<Vec<FileUpload>, PageError> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for i in 0.. {
        let Some(name) = fields.get(&format!("file_{i}_name")) else {
            break;
        };
        let b64 = fields
            .get(&format!("file_{i}_b64"))
            .map(String::as_str)
            .unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| PageError::Invalid(format!("file_{i}_b64: {e}")))?;
        out.push(FileUpload {
            filename: name.clone(),
            content_type: fields.get(&format!("file_{i}_type")).cloned(),
            bytes,
        });
    }
    Ok(out)
}

async fn act(
    state: &SharedState,
    env: &Env,
    fields: &BTreeMap<String, String>,
    uploads: Vec<FileUpload>,
) -> Result<Response, PageError> {
    check_csrf(env, fields)?;
    let kind = fields.get("action").map(String::as_str).unwrap_or_default();
    let (kind, role) = ACTIONS
        .iter()
        .find(|(name, _)| *name == kind)
        .copied()
        .ok_or_else(|| PageError::Invalid(format!("action: unknown action `{kind}`")))?;
    let session = env.require(role)?;
    // An uploaded focal point list becomes the import's text (and rides along in the
    // confirmation as that text).
    let mut uploads = uploads;
    let mut import_fields;
    let fields = if kind == "fp_import" && !uploads.is_empty() {
        let file = uploads.remove(0);
        let text = String::from_utf8(file.bytes).map_err(|_| {
            PageError::Invalid(format!("files: {} is not UTF-8 text", file.filename))
        })?;
        import_fields = fields.clone();
        import_fields.insert("import_text".into(), text.replace("\r\n", "\n"));
        if import_fields
            .get("format")
            .is_none_or(|f| f.is_empty() || f == "auto")
        {
            let by_name = file.filename.to_ascii_lowercase();
            if by_name.ends_with(".csv") {
                import_fields.insert("format".into(), "csv".into());
            } else if by_name.ends_with(".toml") {
                import_fields.insert("format".into(), "toml".into());
            }
        }
        &import_fields
    } else {
        fields
    };
    let action = parse_action(kind, fields)?;
    let mut files = carried_files(fields)?;
    files.extend(uploads);
    if !files.is_empty() && !matches!(kind, "start" | "submit" | "revise") {
        return Err(PageError::Invalid(format!(
            "files: files can be attached when starting a consultation, submitting its \
             draft or publishing a revision, not with `{kind}`"
        )));
    }
    if fields.get("confirm").map(String::as_str) != Some("yes") {
        // The files are checked now, so that the confirmation shows what will be sent.
        let reference = match &action {
            Action::Consultation { reference, .. } => Some(reference.as_str()),
            _ => None,
        };
        let valid = if files.is_empty() {
            Vec::new()
        } else {
            if let Some(r) = reference {
                state.engine.load(r).await?;
            }
            state
                .engine
                .check_attachments(reference, files)
                .await
                .map_err(|e| ApiError::from_engine(e, "files"))?
        };
        return confirm_page(state, env, kind, &action, fields, &valid).await;
    }
    let actor = web_actor(session);
    let engine = &state.engine;
    let back = match action {
        Action::Start {
            title,
            text,
            procedure,
            year,
        } => {
            let c = engine
                .start(
                    StartRequest {
                        title,
                        text,
                        procedure,
                        year,
                        draft_only: false,
                        attachments: files,
                    },
                    &actor,
                )
                .await
                .map_err(|e| ApiError::from_engine(e, "text"))?;
            consultation_path(&c.reference.to_string())
        }
        Action::Consultation { reference, event } => {
            let field = match &event {
                Event::Extend { .. } => "working_days",
                Event::Reclassify { .. } | Event::TroikaFeedback { .. } => "country",
                Event::Withdraw { .. } => "reason",
                _ => "text",
            };
            engine
                .apply_with_files(&reference, event, &actor, files)
                .await
                .map_err(|e| ApiError::from_engine(e, field))?;
            consultation_path(&reference)
        }
        Action::AddFocalPoint {
            country,
            name,
            email,
            language,
        } => {
            directory::add_focal_point(
                engine.store().as_ref(),
                &engine.catalog().body,
                FocalPointInput {
                    country: &country,
                    name: &name,
                    email: &email,
                    language: language.as_deref(),
                },
                &actor,
                engine.now(),
            )
            .await
            .map_err(ApiError::from)?;
            "/directory".to_string()
        }
        Action::DeactivateFocalPoint { email } => {
            directory::deactivate_focal_point(
                engine.store().as_ref(),
                &email,
                &actor,
                engine.now(),
            )
            .await
            .map_err(ApiError::from)?;
            "/directory".to_string()
        }
        Action::ClearBouncing { email } => {
            directory::clear_bouncing(engine.store().as_ref(), &email, &actor, engine.now())
                .await
                .map_err(ApiError::from)?;
            "/directory".to_string()
        }
        Action::SetPresidency { year, country } => {
            engine
                .set_presidency(year, country, &actor)
                .await
                .map_err(|e| ApiError::from_engine(e, "country"))?;
            "/directory".to_string()
        }
        Action::RecordAnswer {
            reference,
            country,
            position,
            text,
            channel,
        } => {
            let answer =
                super::api::staff_answer(state, &country, &position, text, channel, &actor)?;
            engine
                .apply(&reference, Event::Answer { answer }, &actor)
                .await
                .map_err(|e| ApiError::from_engine(e, "text"))?;
            consultation_path(&reference)
        }
        Action::Release {
            id,
            country,
            reference,
        } => {
            let (m, _) =
                super::inbound::release_message(state, &id, &country, reference.as_deref(), &actor)
                    .await?;
            format!("/inbound/{}", m.id)
        }
        Action::Discard { id, reason } => {
            let m = super::inbound::discard_message(state, &id, &reason, &actor).await?;
            format!("/inbound/{}", m.id)
        }
        Action::ImportFocalPoints { text, csv } => {
            super::api::import_text(state, text, csv, &actor).await?;
            "/directory".to_string()
        }
    };
    tracing::info!(action = kind, caller = %session.caller.name, "dashboard action");
    Ok(redirect(&format!("{back}?done={kind}")))
}

fn consultation_path(reference: &str) -> String {
    format!(
        "/consultations/{}",
        utf8_percent_encode(reference, NON_ALPHANUMERIC)
    )
}

/// The "are you sure?" page: what will happen, and the same fields again as hidden
/// inputs with `confirm=yes`.
async fn confirm_page(
    state: &SharedState,
    env: &Env,
    kind: &str,
    action: &Action,
    fields: &BTreeMap<String, String>,
    files: &[ValidFile],
) -> Result<Response, PageError> {
    use base64::Engine as _;
    let mut hidden: Vec<Value> = fields
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "csrf" | "confirm") && !k.starts_with("file_"))
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    // The checked files ride along (their safe names and types), to be stored only
    // when the confirmation comes back.
    for (i, f) in files.iter().enumerate() {
        hidden.push(json!({"name": format!("file_{i}_name"), "value": f.filename}));
        hidden.push(json!({"name": format!("file_{i}_type"), "value": f.content_type}));
        hidden.push(json!({"name": format!("file_{i}_b64"),
            "value": base64::engine::general_purpose::STANDARD.encode(&f.bytes)}));
    }
    let file_rows: Vec<Value> = files
        .iter()
        .map(|f| {
            json!({"filename": f.filename, "content_type": f.content_type,
                   "size": f.bytes.len(), "sha256": f.sha256})
        })
        .collect();
    // What the user entered, labelled; long texts are shown as blocks.
    let mut rows = Vec::new();
    let mut row =
        |key: &str, value: String| rows.push(json!({"label": env.t(key), "value": value}));
    let mut text = Value::Null;
    let mut diff = Value::Null;
    let cancel: String;
    match action {
        Action::Start {
            title,
            text: t,
            procedure,
            year,
        } => {
            row("title", title.clone());
            row("procedure", procedure.clone());
            if let Some(y) = year {
                row("year", y.to_string());
            }
            text = json!(t);
            cancel = "/new".into();
        }
        Action::Consultation { reference, event } => {
            let (c, _) = state.engine.load(reference).await?;
            row("reference", reference.clone());
            row("title", c.title.clone());
            cancel = consultation_path(reference);
            match event {
                Event::TroikaFeedback {
                    country,
                    approve,
                    comments,
                } => {
                    row("country", country_name(state, env.lang, *country));
                    row(
                        "position",
                        env.t(if *approve {
                            "approve"
                        } else {
                            "request_changes"
                        }),
                    );
                    if let Some(cm) = comments {
                        row("comments", cm.clone());
                    }
                }
                Event::Submit { text: Some(t) } => {
                    diff = json!(diff_lines(&text_diff(&c.current_version().text, t)));
                }
                Event::Revise { text: t, note } => {
                    match t {
                        Some(t) => {
                            diff = json!(diff_lines(&text_diff(&c.current_version().text, t)));
                        }
                        None => row("no_changes", env.t("yes")),
                    }
                    if let Some(n) = note {
                        row("note", n.clone());
                    }
                }
                Event::Extend {
                    working_days,
                    reason,
                } => {
                    row("working_days", working_days.to_string());
                    row("reason", reason.clone());
                }
                Event::Withdraw { reason } => row("reason", reason.clone()),
                Event::Reclassify {
                    round,
                    country,
                    position,
                    received_at,
                } => {
                    row("round", round.to_string());
                    row("country", country_name(state, env.lang, *country));
                    let answer = c
                        .rounds
                        .iter()
                        .find(|r| r.number == *round)
                        .and_then(|r| r.answers.get(country));
                    if let Some(a) = answer {
                        let tz = presidency_tz(state, &c);
                        row(
                            "received",
                            local_time(tz, received_at.unwrap_or(a.received_at)),
                        );
                        row("review_was", label(env.lang, "state", a.position.as_str()));
                        if !a.text.is_empty() {
                            text = json!(a.text);
                        }
                    }
                    row("position", label(env.lang, "state", position.as_str()));
                    row(
                        "review_outcome",
                        env.t(if answer.is_some_and(|a| a.position == *position) {
                            "review_confirms"
                        } else {
                            "review_changes"
                        }),
                    );
                }
                Event::Report { text: t } => text = json!(t),
                _ => {}
            }
        }
        Action::AddFocalPoint {
            country,
            name,
            email,
            language,
        } => {
            row("country", country.clone());
            row("name", name.clone());
            row("email", email.clone());
            row(
                "language",
                language
                    .clone()
                    .unwrap_or_else(|| env.t("language_default")),
            );
            cancel = "/directory".into();
        }
        Action::DeactivateFocalPoint { email } | Action::ClearBouncing { email } => {
            row("email", email.clone());
            cancel = "/directory".into();
        }
        Action::SetPresidency { year, country } => {
            row("year", year.to_string());
            row("country", country_name(state, env.lang, *country));
            cancel = "/directory".into();
        }
        Action::RecordAnswer {
            reference,
            country,
            position,
            text: t,
            channel,
        } => {
            let (c, _) = state.engine.load(reference).await?;
            row("reference", reference.clone());
            row("title", c.title.clone());
            if let Ok(code) = CountryCode::parse(country) {
                row("country", country_name(state, env.lang, code));
            }
            row("position", label(env.lang, "state", position));
            row(
                "channel",
                channel.clone().unwrap_or_else(|| env.t("channel_letter")),
            );
            if !t.is_empty() {
                text = json!(t);
            }
            cancel = consultation_path(reference);
        }
        Action::Release {
            id,
            country,
            reference,
        } => {
            row("message", format!("#{id}"));
            if let Ok(code) = CountryCode::parse(country) {
                row("country", country_name(state, env.lang, code));
            }
            if let Some(r) = reference {
                row("reference", r.clone());
            }
            cancel = format!("/inbound/{}", utf8_percent_encode(id, NON_ALPHANUMERIC));
        }
        Action::Discard { id, reason } => {
            row("message", format!("#{id}"));
            row("reason", reason.clone());
            cancel = format!("/inbound/{}", utf8_percent_encode(id, NON_ALPHANUMERIC));
        }
        Action::ImportFocalPoints { text: t, csv } => {
            row(
                "import_format",
                if *csv { "CSV" } else { "TOML" }.to_string(),
            );
            row(
                "lines",
                t.lines()
                    .filter(|l| !l.trim().is_empty())
                    .count()
                    .to_string(),
            );
            text = json!(t);
            cancel = "/directory".into();
        }
    }
    env.page(
        StatusCode::OK,
        "confirm",
        json!({
            "action_label": env.t(&format!("act_{kind}")),
            "rows": rows,
            "text": text,
            "diff": diff,
            "hidden": hidden,
            "files": file_rows,
            "cancel": cancel,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_parses_and_every_string_has_both_languages() {
        check_templates().unwrap();
        let mut keys = HashSet::new();
        for (k, en, es) in STRINGS {
            assert!(keys.insert(*k), "{k} twice");
            assert!(!en.is_empty() && !es.is_empty(), "{k}");
        }
        for s in CountryState::ALL {
            assert_ne!(label(Lang::Es, "state", s.as_str()), s.as_str());
        }
        for (a, _) in ACTIONS {
            assert_ne!(tr(Lang::En, &format!("act_{a}")), format!("act_{a}"));
        }
    }

    #[test]
    fn languages_come_from_the_query_cookie_or_header() {
        assert_eq!(Lang::parse("es-HN"), Some(Lang::Es));
        assert_eq!(Lang::parse("en"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::parse("e"), None);
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; puebla_lang=es".parse().unwrap());
        assert_eq!(cookie(&h, LANG_COOKIE), Some("es"));
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
    }

    #[test]
    fn typed_values_are_refused_before_the_confirmation_naming_the_field() {
        let fields = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let long_title = "x".repeat(input::MAX_TITLE_CHARS + 1);
        for (kind, pairs, field) in [
            ("start", vec![("title", "A\nB"), ("text", "t")], "title"),
            (
                "start",
                vec![("title", long_title.as_str()), ("text", "t")],
                "title",
            ),
            (
                "start",
                vec![("title", "A"), ("text", "t"), ("year", "10000")],
                "year",
            ),
            ("start", vec![("title", "A"), ("text", "t\u{0}")], "text"),
            (
                "extend",
                vec![
                    ("reference", "RCM-2027-001"),
                    ("working_days", "61"),
                    ("reason", "r"),
                ],
                "working_days",
            ),
            (
                "withdraw",
                vec![("reference", "RCM-2027-001"), ("reason", "a\u{7}b")],
                "reason",
            ),
            (
                "troika",
                vec![
                    ("reference", "RCM-2027-001"),
                    ("country", "CR"),
                    ("approve", "no"),
                    ("comments", "c\u{1b}"),
                ],
                "comments",
            ),
            (
                "fp_add",
                vec![
                    ("country", "HN"),
                    ("name", "An\u{85}a"),
                    ("email", "a@example.org"),
                ],
                "name",
            ),
            (
                "answer",
                vec![
                    ("reference", "RCM-2027-001"),
                    ("country", "HN"),
                    ("position", "comments"),
                    ("channel", "a\tb"),
                ],
                "channel",
            ),
            ("discard", vec![("id", "1"), ("reason", "a\rb")], "reason"),
            (
                "presidency",
                vec![("year", "99999"), ("country", "HN")],
                "year",
            ),
        ] {
            match parse_action(kind, &fields(&pairs)) {
                Err(PageError::Invalid(m)) => {
                    assert!(m.starts_with(&format!("{field}: ")), "{kind}: {m}")
                }
                Err(other) => panic!("{kind}: {other}"),
                Ok(_) => panic!("{kind}: {pairs:?} accepted"),
            }
        }
        // A textarea's CR LF is a line break, kept as LF.
        let Ok(Action::Start { text, .. }) =
            parse_action("start", &fields(&[("title", "A"), ("text", "a\r\nb")]))
        else {
            panic!("a start");
        };
        assert_eq!(text, "a\nb");
    }

    #[test]
    fn form_bodies_normalise_line_breaks() {
        let f = form(&Bytes::from_static(b"text=a%0D%0Ab&title=%3Cscript%3E"));
        assert_eq!(f["text"], "a\nb");
        assert_eq!(f["title"], "<script>");
    }
}
