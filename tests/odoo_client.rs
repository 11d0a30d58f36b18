//! The Odoo client against the stand-in.

mod support;

use support::standin::{OdooStandin, StandinOptions};

#[test]
fn standin_starts() {
    let odoo = OdooStandin::start(StandinOptions::v18());
    assert!(odoo.url().starts_with("http://127.0.0.1:"));
}
