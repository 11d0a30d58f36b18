//! Import flows: from a partner's inbox to Odoo, then to the archive or `error/`.
//!
//! A pass ([`pass`]) runs these steps for every partner, one session each:
//! [`list`] the inbox and apply the completeness rules of [`settle`]; [`repair`] what a crash
//! left; [`claim`] each complete file and fetch it; [`validate`] and map it; [`apply`] its
//! operations in Odoo; [`finish`] it into the archive or `error/`. [`replay`] and [`explain`]
//! serve the commands of the same names.

pub mod apply;
pub mod claim;
pub mod explain;
pub mod finish;
pub mod list;
pub mod pass;
pub mod repair;
pub mod replay;
pub mod settle;
pub mod spool;
pub mod validate;
