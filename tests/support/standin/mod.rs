//! The Odoo stand-in: a real HTTP server on loopback speaking JSON-RPC and JSON-2 as the transcripts show.
//!
//! It is held to `shared/odoo-transcripts/` by `tests/odoo_transcripts.rs`: same HTTP statuses,
//! same envelopes, same error names and messages, same version quirks (JSON-RPC error `code`
//! 200 on 18 and 0 on 19, `/json/2` answering 303 on 18, `Connection: close`, a missing
//! `result` key for `None`). Behind the protocols sits a small in-memory ORM with the models
//! edi-bridge touches (products, UoM, locations, lots, quants, pickings, moves, partners,
//! `ir.model`, `ir.model.fields`, `ir.model.data`) and the rules that matter to it: required
//! fields, barcode uniqueness, inventory-mode quant creation, `load` with external ids,
//! delivery validation with the SMS and backorder wizards.
//!
//! ```ignore
//! let odoo = OdooStandin::start(StandinOptions::v19());
//! let chair = odoo.add_product("FURN_7777", "Office Chair");
//! odoo.fail_next(1, Fault::Http502);
//! // … run edi-bridge against odoo.url() …
//! assert_eq!(odoo.qty_available(chair), 12.0);
//! ```
//!
//! The server runs on its own thread and runtime, so sync and async tests use it alike;
//! [`OdooStandin::stop`] and [`OdooStandin::start_again`] simulate an outage on the same port
//! while the data survives, like a restarted Odoo with its database.
//!
//! A request goes through the modules in this order: `http` (the axum server, the routes,
//! the injected HTTP faults) hands it to `jsonrpc` or `json2` (the two envelopes, with the
//! error shapes of `errors`), which bind it to a model method in `calls`; `models` runs the
//! method with each model's rules (products, quants, pickings, import and export, the model
//! definitions in `models::schema`) over the in-memory ORM of `orm` (records, domains,
//! search, read, write). `server` and `setup` are the [`OdooStandin`] a test holds, `state`
//! what it keeps between requests, `seed` the data every Odoo has and the transcripts' demo
//! data.

mod calls;
mod errors;
mod http;
mod json2;
mod jsonrpc;
mod models;
mod orm;
mod seed;
mod server;
mod setup;
mod state;

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use server::Server;
use state::Shared;

/// Field values of a record (`{"name": "Chair", "uom_id": 1}`).
pub type Vals = Map<String, Value>;

/// Which Odoo the stand-in plays and who may log in.
#[derive(Debug, Clone)]
pub struct StandinOptions {
    /// 17 or 18 (JSON-RPC only), or 19 (JSON-2 and the deprecated JSON-RPC).
    pub version: u32,
    pub database: String,
    pub login: String,
    /// Accepted as JSON-2 bearer token and in JSON-RPC's password slot.
    pub api_key: String,
    pub password: String,
    /// A second user with only Internal User rights (as `tr2-basic` in the second
    /// recording): it logs in and reads, while every create and write is refused with an
    /// `AccessError` naming the groups allowed (an envelope on 18, HTTP 403 on 19).
    pub basic_login: String,
    /// The limited user's API key (JSON-2 bearer token or JSON-RPC password slot).
    pub basic_api_key: String,
    /// Whether `stock_delivery` is installed (adds `carrier_id` and `carrier_tracking_ref` to
    /// `stock.picking`; without it those fields are unknown, as transcript 18/57 shows).
    pub delivery_module: bool,
}

impl Default for StandinOptions {
    fn default() -> Self {
        StandinOptions::v18()
    }
}

impl StandinOptions {
    /// An Odoo 18 with database `edi`, user `admin` / `admin` and an API key.
    pub fn v18() -> Self {
        StandinOptions {
            version: 18,
            database: "edi".into(),
            login: "admin".into(),
            api_key: "0123456789abcdef0123456789abcdef01234567".into(),
            password: "admin".into(),
            basic_login: "tr2-basic".into(),
            basic_api_key: "basic56789abcdef0123456789abcdef01234567".into(),
            delivery_module: false,
        }
    }

    /// An Odoo 17 with database `edi17`, user `admin` / `admin` and an API key: JSON-RPC
    /// only, storable products as `detailed_type = 'product'` (no `is_storable`).
    pub fn v17() -> Self {
        StandinOptions {
            version: 17,
            database: "edi17".into(),
            ..StandinOptions::v18()
        }
    }

    /// An Odoo 19 with database `edi19`, user `admin` / `admin` and an API key.
    pub fn v19() -> Self {
        StandinOptions {
            version: 19,
            database: "edi19".into(),
            ..StandinOptions::v18()
        }
    }
}

/// A failure the stand-in produces on purpose for the next requests ([`OdooStandin::fail_next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A reverse proxy's `502 Bad Gateway` page (any request).
    Http502,
    /// `503 Service Unavailable` (any request).
    Http503,
    /// The TCP connection is reset after the request was sent (any connection).
    ConnectionReset,
    /// `psycopg2.errors.SerializationFailure` from a model call (JSON-RPC envelope or JSON-2 500).
    SerializationFailure,
    /// `AccessDenied: Too many login failures…` on the next JSON-RPC model call.
    LoginCooldown,
    /// An exception edi-bridge has no name for (`odoo.addons.acme.models.MysteryError`) from
    /// the next model call (JSON-RPC envelope or JSON-2 500).
    UnknownException,
}

/// Ids of the demo data [`OdooStandin::seed_demo`] created (they differ between 18 and 19,
/// as they did on the recorded servers).
#[derive(Debug, Clone)]
pub struct Demo {
    /// `WH/Stock`.
    pub stock_location: i64,
    /// The customers location.
    pub customers_location: i64,
    /// `Wood Corner`, the delivery partner (has a phone: the SMS wizard shows on 19).
    pub partner: i64,
    /// `product.product` "Office Chair", `FURN_7777`, no barcode.
    pub office_chair: i64,
    /// `product.product` "Office Lamp", `FURN_8888`, barcode `40164785534112`.
    pub office_lamp: i64,
    /// Outgoing pickings in state `assigned`: WH/OUT/00001, 2, 5, 6, 7.
    pub deliveries: Vec<i64>,
}

/// A running Odoo stand-in on `127.0.0.1`. Dropping it stops the server.
pub struct OdooStandin {
    shared: Arc<Shared>,
    port: u16,
    server: Mutex<Option<Server>>,
}
