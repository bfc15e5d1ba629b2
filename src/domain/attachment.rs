//! Files attached to a consultation's text (the proposal as PDF, an annex): their
//! names, types and sizes, checked before anything is stored.
//!
//! Pure: the bytes come in from the CLI, the API or the dashboard; what leaves is a
//! [`ValidFile`] with a safe name, a content type and its SHA-256, or an
//! [`AttachmentError`] that says which file and what is wrong with it.

use sha2::{Digest, Sha256};

/// The defaults of the limits (configurable: `attachment_max_bytes`,
/// `attachments_max_total_bytes`).
pub const DEFAULT_MAX_FILE_BYTES: usize = 10 * 1024 * 1024;
pub const DEFAULT_MAX_TOTAL_BYTES: usize = 20 * 1024 * 1024;

/// The longest file name kept (in characters).
const MAX_NAME_CHARS: usize = 150;

/// How large the files of one consultation may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachmentLimits {
    /// One file, in bytes.
    pub max_file_bytes: usize,
    /// Every file of one consultation together, in bytes.
    pub max_total_bytes: usize,
}

impl Default for AttachmentLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
        }
    }
}

/// A file as it arrives: a name as the client gave it (perhaps with a path), an
/// optional content type, and the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUpload {
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// A file that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidFile {
    /// The last path component, trimmed, without control characters.
    pub filename: String,
    /// `type/subtype` in lower case (`; charset=utf-8` for UTF-8 text).
    pub content_type: String,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    pub bytes: Vec<u8>,
}

/// What an attachment already stored with the consultation counts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingFile {
    pub filename: String,
    pub sha256: String,
    pub size: usize,
}

/// Why a file was refused: `index` is its position in the request (0-based) and
/// `field` the part of it that is wrong (`filename`, `content_type`, `content`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attachment {} ({name}): {message}", index + 1)]
pub struct AttachmentError {
    pub index: usize,
    pub field: &'static str,
    pub name: String,
    pub message: String,
}

impl AttachmentError {
    /// The field in a JSON request: `attachments[1].filename`.
    pub fn json_field(&self) -> String {
        format!("attachments[{}].{}", self.index, self.field)
    }
}

/// The SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A safe file name from what a client sent: the last component of a Windows or
/// Unix path, trimmed; refused when empty, `.`/`..`, too long, or when it holds
/// control characters (which would break a header or a terminal).
pub fn safe_filename(given: &str) -> Result<String, String> {
    let last = given.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if last.is_empty() || last == "." || last == ".." {
        return Err(format!("`{}` names no file", given.escape_debug()));
    }
    if let Some(c) = last.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the name holds the control character {:?}; rename the file",
            c
        ));
    }
    if last.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "the name is longer than {MAX_NAME_CHARS} characters; shorten it"
        ));
    }
    Ok(last.to_string())
}

/// `type/subtype` in lower case when `given` is one (parameters dropped), else an
/// error. Only RFC 2045 token characters are allowed.
fn parse_content_type(given: &str) -> Result<String, String> {
    let essence = given.split(';').next().unwrap_or_default().trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    match essence.split_once('/') {
        Some((t, s)) if token(t) && token(s) => Ok(essence.to_ascii_lowercase()),
        _ => Err(format!(
            "`{}` is not a content type such as application/pdf",
            given.escape_debug()
        )),
    }
}

/// The content type of `bytes` from their first bytes, else from the name's
/// extension; `application/octet-stream` when neither says.
pub fn sniff_content_type(filename: &str, bytes: &[u8]) -> String {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let by_magic = if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.starts_with(b"PK\x03\x04") {
        // Office documents are zip files: the extension says which.
        Some(match ext.as_str() {
            "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "odt" => "application/vnd.oasis.opendocument.text",
            "ods" => "application/vnd.oasis.opendocument.spreadsheet",
            _ => "application/zip",
        })
    } else if bytes.starts_with(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
        Some(match ext.as_str() {
            "xls" => "application/vnd.ms-excel",
            "ppt" => "application/vnd.ms-powerpoint",
            _ => "application/msword",
        })
    } else {
        None
    };
    if let Some(t) = by_magic {
        return t.to_string();
    }
    let text = std::str::from_utf8(bytes).is_ok_and(|s| !s.contains('\0'));
    match (ext.as_str(), text) {
        ("md", true) => "text/markdown".into(),
        ("csv", true) => "text/csv".into(),
        (_, true) => "text/plain".into(),
        _ => "application/octet-stream".into(),
    }
}

/// Checks `files` against the limits and against what the consultation already
/// holds: safe names, a content type (the given one when it is well formed, else
/// sniffed), no empty file, none over the per-file limit, the total (with the files
/// already stored) within its limit, and no content twice (by SHA-256).
pub fn validate(
    files: Vec<FileUpload>,
    existing: &[ExistingFile],
    limits: AttachmentLimits,
) -> Result<Vec<ValidFile>, AttachmentError> {
    let mut total: usize = existing.iter().map(|e| e.size).sum();
    let mut out: Vec<ValidFile> = Vec::with_capacity(files.len());
    for (index, f) in files.into_iter().enumerate() {
        let err = |field: &'static str, message: String| AttachmentError {
            index,
            field,
            name: f.filename.escape_debug().to_string(),
            message,
        };
        let filename = safe_filename(&f.filename).map_err(|m| err("filename", m))?;
        if f.bytes.is_empty() {
            return Err(err("content", "the file is empty".into()));
        }
        if f.bytes.len() > limits.max_file_bytes {
            return Err(err(
                "content",
                format!(
                    "the file is {} bytes; the limit for one file is {} bytes",
                    f.bytes.len(),
                    limits.max_file_bytes
                ),
            ));
        }
        total += f.bytes.len();
        if total > limits.max_total_bytes {
            return Err(err(
                "content",
                format!(
                    "the attachments of this consultation would come to {total} bytes; \
                     the limit for all of them together is {} bytes",
                    limits.max_total_bytes
                ),
            ));
        }
        let given = f
            .content_type
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let mut content_type = match given {
            // Browsers send application/octet-stream when they do not know: sniff then.
            Some(t) if t.eq_ignore_ascii_case("application/octet-stream") => {
                sniff_content_type(&filename, &f.bytes)
            }
            Some(t) => parse_content_type(t).map_err(|m| err("content_type", m))?,
            None => sniff_content_type(&filename, &f.bytes),
        };
        if content_type.starts_with("text/") && std::str::from_utf8(&f.bytes).is_ok() {
            content_type.push_str("; charset=utf-8");
        }
        let sha256 = sha256_hex(&f.bytes);
        if let Some(same) = existing
            .iter()
            .map(|e| (&e.sha256, &e.filename))
            .chain(out.iter().map(|v| (&v.sha256, &v.filename)))
            .find(|(h, _)| **h == sha256)
        {
            return Err(err(
                "content",
                format!(
                    "the same content is already attached as `{}`",
                    same.1.escape_debug()
                ),
            ));
        }
        out.push(ValidFile {
            filename,
            content_type,
            sha256,
            bytes: f.bytes,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(name: &str, ty: Option<&str>, bytes: &[u8]) -> FileUpload {
        FileUpload {
            filename: name.into(),
            content_type: ty.map(Into::into),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn names_lose_their_paths_and_control_characters_are_refused() {
        assert_eq!(
            safe_filename("C:\\Users\\ppt\\Propuesta.pdf").unwrap(),
            "Propuesta.pdf"
        );
        assert_eq!(safe_filename("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(safe_filename("  anexo 1.docx ").unwrap(), "anexo 1.docx");
        assert!(safe_filename("").is_err());
        assert!(safe_filename("dir/").is_err());
        assert!(safe_filename("..").is_err());
        assert!(safe_filename("a\r\nBcc: x@example.org.pdf").is_err());
        assert!(safe_filename(&"a".repeat(200)).is_err());
    }

    #[test]
    fn content_types_are_given_or_sniffed() {
        let v = validate(
            vec![
                up("p.pdf", None, b"%PDF-1.7 ..."),
                up("notes.md", Some(""), "# Título\n".as_bytes()),
                up("x.bin", Some("application/octet-stream"), b"\x00\x01\x02"),
                up("a.docx", Some("Application/VND.Custom; x=1"), b"PK\x03\x04"),
            ],
            &[],
            AttachmentLimits::default(),
        )
        .unwrap();
        let types: Vec<&str> = v.iter().map(|f| f.content_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "application/pdf",
                "text/markdown; charset=utf-8",
                "application/octet-stream",
                "application/vnd.custom"
            ]
        );
        let e = validate(
            vec![up("a.pdf", Some("pdf\r\nX: y"), b"%PDF-")],
            &[],
            AttachmentLimits::default(),
        )
        .unwrap_err();
        assert_eq!(e.json_field(), "attachments[0].content_type");
    }

    #[test]
    fn limits_empty_files_and_duplicates_are_refused_naming_the_file() {
        let limits = AttachmentLimits {
            max_file_bytes: 10,
            max_total_bytes: 15,
        };
        let e = validate(vec![up("big.pdf", None, &[1; 11])], &[], limits).unwrap_err();
        assert_eq!((e.index, e.field), (0, "content"));
        assert!(e.message.contains("limit for one file is 10 bytes"), "{e}");
        let e = validate(
            vec![up("a", None, &[1; 8]), up("b", None, &[2; 8])],
            &[],
            limits,
        )
        .unwrap_err();
        assert_eq!(e.index, 1);
        assert!(e.message.contains("16 bytes"), "{e}");
        let existing = [ExistingFile {
            filename: "first.pdf".into(),
            sha256: sha256_hex(b"same"),
            size: 4,
        }];
        let e = validate(vec![up("again.pdf", None, b"same")], &existing, limits).unwrap_err();
        assert!(e.message.contains("already attached as `first.pdf`"), "{e}");
        let e = validate(vec![up("a", None, b"x"), up("b", None, b"x")], &[], limits).unwrap_err();
        assert_eq!(e.index, 1);
        let e = validate(vec![up("empty.txt", None, b"")], &[], limits).unwrap_err();
        assert!(e
            .to_string()
            .contains("attachment 1 (empty.txt): the file is empty"));
    }
}
