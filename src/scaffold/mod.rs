//! `edi-bridge scaffold`: a starting `[flows.<name>.mapping]` from a partner's XSD.
//!
//! The schema is read with xsd-parser's schema parser and interpreter (imports and includes
//! followed from the local files, nothing fetched from the network), then walked from the root
//! element down to the record element and from there to every leaf: an element with text
//! content, or an attribute. Each leaf becomes a line of the `fields` table — active when its
//! name says which Odoo field it feeds, commented out otherwise — with its XSD type and whether
//! a valid file must have it.
//!
//! - [`tree`]: the schema as a tree of elements, read from xsd-parser's interpreted types.
//! - [`guess`]: the record element when `--record` is not given, and the Odoo field a leaf's
//!   name suggests.
//! - [`render`]: the TOML text.

mod guess;
mod render;
mod tree;

use std::path::{Path, PathBuf};

pub use tree::DEFAULT_DEPTH;

/// What `edi-bridge scaffold` was asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// The partner's schema (the file that declares the document's root element).
    pub xsd: PathBuf,
    /// The record element's path (`/Root/Record`, prefixes optional), or `None` to guess.
    pub record: Option<String>,
    /// The flow name used in the table headers.
    pub flow: String,
    /// Levels of elements listed under the record (recursive and very deep schemas stop here).
    pub depth: usize,
    /// Values listed at most, those nearest to the record first (UBL lines hold thousands).
    pub max_fields: usize,
}

/// Values listed unless `--max-fields` says otherwise.
pub const DEFAULT_MAX_FIELDS: usize = 200;

/// Why a schema could not be scaffolded. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("{path}: no such file")]
    Missing { path: PathBuf },
    #[error("{path}: not a schema xsd-parser can read: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: the schema declares no global element to start a document with")]
    NoRoot { path: PathBuf },
    #[error("{path}: --record {record}: {message}")]
    Record {
        path: PathBuf,
        record: String,
        message: String,
    },
    #[error("{path}: no element under the root may repeat, so no record could be guessed; {hint}")]
    NoRecord { path: PathBuf, hint: String },
}

/// Reads the schema and renders the mapping block.
pub fn scaffold(request: &Request) -> Result<String, ScaffoldError> {
    let schema = tree::Schema::read(&request.xsd)?;
    let record = match &request.record {
        Some(text) => {
            guess::Record::given(&schema, text).map_err(|message| ScaffoldError::Record {
                path: request.xsd.clone(),
                record: text.clone(),
                message,
            })?
        }
        None => guess::Record::guessed(&schema).map_err(|hint| ScaffoldError::NoRecord {
            path: request.xsd.clone(),
            hint,
        })?,
    };
    let leaves = schema.leaves(&record.element, request.depth);
    Ok(render::render(request, &schema, &record, &leaves))
}

/// A default flow name from the schema's file name: `UBL-Catalogue-2.1.xsd` → `catalogue`.
pub fn flow_name(xsd: &Path) -> String {
    let stem = xsd
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem.strip_prefix("UBL-").unwrap_or(&stem);
    let stem = stem.strip_suffix("-2.1").unwrap_or(stem);
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-').to_owned();
    if name.is_empty() {
        "partner".to_owned()
    } else {
        name
    }
}
