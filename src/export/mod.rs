//! Export flows: from Odoo's ready records to files in a partner's outbox, then marked.
//!
//! A pass ([`pass`]) runs these steps for each export flow: [`select`] the records with the
//! flow's domain that are not exported yet and read them in a fixed number of batched calls;
//! [`render`] each into its document (the built-in canonical delivery order or the flow's own
//! template) and validate it; [`publish`] it in the outbox atomically; [`mark`] the records in
//! Odoo. The ledger's publications make a crash between publishing and marking harmless.
//! [`explain`] serves `explain FLOW --record NAME`.

pub mod check;
pub mod explain;
pub mod mark;
pub mod pass;
pub mod publish;
pub mod render;
pub mod select;
