//! Import flows: from a partner's inbox to Odoo, then to the archive or `error/`.

pub mod explain;
pub mod finish;
pub mod mapping;
pub mod pass;
pub mod path;
pub mod records;
pub mod replay;
pub mod settle;
