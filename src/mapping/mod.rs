//! How a partner's file becomes Odoo operations: the mapping, from its configuration to the
//! operations it hands on.
//!
//! - [`config`]: the typed mapping (and what the files are: XML with an XSD, or CSV columns),
//!   as [`crate::config`] reads it from the TOML file.
//! - [`path`]: the path grammar of record and field paths (`p:Name`, `@sku`, `a[@type='gtin']`).
//! - [`records`]: streams the records of a file (XML elements, CSV rows), one at a time.
//! - [`map`]: evaluates the field paths on each record and makes one
//!   [`crate::operation::Operation`] per good record, listing every bad one.
//! - [`convert`]: a value's text to its configured type.
//! - [`error`]: a failure of the whole file, shared by the readers and the mapper.
//!
//! Nothing here talks to Odoo or to a partner: it reads a local file and the configuration.

pub mod config;
pub mod convert;
pub mod error;
pub mod map;
pub mod path;
pub mod records;

pub use error::MapError;
pub use map::{LISTED_PROBLEMS, MapOutcome, MapProblem, map_file};
