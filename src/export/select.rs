//! Selecting and reading the records an export flow publishes: one search with the flow's
//! domain (and "not marked yet"), then the moves, products and partners of all of them in a
//! fixed number of batched reads — never one call per record or per field.
//!
//! Field names that differ between Odoo versions and modules are looked up with `fields_get`
//! once per pass, which silently leaves unknown names out: `carrier_id` and
//! `carrier_tracking_ref` exist only with `stock_delivery`, a move's reserved quantity is
//! `quantity` on 17+ and absent on 16 (`quantity_done` is the done quantity there), 19's
//! moves have no `name`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::ExportFlow;
use crate::odoo::client::{OdooClient, OdooError, SearchOptions};

/// Ids per `read` call: Odoo reads thousands at once; this keeps one request's size sane.
const READ_CHUNK: usize = 1000;

/// How the mark field is set once a file is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkKind {
    /// A boolean field: set to true.
    Boolean,
    /// A datetime field: set to now (UTC).
    Datetime,
    /// A date field: set to today (UTC).
    Date,
}

/// What `fields_get` said about the fields an export reads, once per pass.
#[derive(Debug, Clone)]
pub struct Fields {
    /// Picking fields read, all known to exist.
    pub picking: Vec<String>,
    /// Move fields read.
    pub moves: Vec<String>,
    pub carrier: bool,
    pub tracking: bool,
    /// The mark field and how it is set.
    pub mark: Option<(String, MarkKind)>,
}

/// Why records could not be selected or read: an Odoo failure, or a setup problem that
/// stops the flow until someone fixes it.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("{0}")]
    Odoo(#[from] OdooError),
    #[error("{0}")]
    Setup(String),
}

/// A party of a delivery: the delivery address, or the customer it belongs to.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Party {
    pub id: i64,
    pub name: String,
    pub street: Option<String>,
    pub street2: Option<String>,
    pub zip: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country_code: Option<String>,
    pub country: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// A product as the warehouse knows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Product {
    pub id: i64,
    /// Internal reference (`default_code`).
    pub code: Option<String>,
    pub barcode: Option<String>,
    pub name: String,
}

/// One line of a delivery: a move.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Line {
    /// 1, 2, … in the order of the picking's moves.
    pub number: usize,
    /// The move's id.
    pub move_id: i64,
    pub product: Product,
    /// The quantity to ship (the move's demand, `product_uom_qty`).
    pub quantity: f64,
    /// What is reserved for it (`quantity` on Odoo 17+; none where the version lacks it).
    pub reserved: Option<f64>,
    /// The unit of measure's name (`Units`, `kg`).
    pub unit: String,
}

/// A delivery order with everything a warehouse needs to pick and ship it: the template's
/// `picking`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Picking {
    pub id: i64,
    /// `WH/OUT/00042`.
    pub name: String,
    /// The source document (`S00042`).
    pub origin: Option<String>,
    /// ISO 8601 in UTC, `2026-11-29T18:36:30Z`.
    pub scheduled_date: Option<String>,
    /// The picking's note as plain text (Odoo keeps HTML).
    pub note: Option<String>,
    /// The carrier's name (`stock_delivery`).
    pub carrier: Option<String>,
    /// `carrier_tracking_ref` (`stock_delivery`).
    pub tracking_ref: Option<String>,
    /// The delivery address (`partner_id`).
    pub delivery: Option<Party>,
    /// Who ordered: the delivery address's parent company, or the address itself.
    pub customer: Option<Party>,
    pub lines: Vec<Line>,
}

/// Looks up the fields this flow reads and checks the mark field.
pub async fn resolve_fields(
    client: &OdooClient,
    export: &ExportFlow,
) -> Result<Fields, SelectError> {
    if export.model != "stock.picking" {
        return Err(SelectError::Setup(format!(
            "export flows read delivery orders (stock.picking); model {} is not supported",
            export.model
        )));
    }
    let mut wanted = vec![
        "name",
        "origin",
        "scheduled_date",
        "note",
        "partner_id",
        "move_ids",
        "carrier_id",
        "carrier_tracking_ref",
    ];
    if let Some(mark) = &export.mark {
        wanted.push(mark);
    }
    let known = client
        .fields_get(&export.model, Some(&wanted), &["type", "relation"])
        .await?;
    for required in ["name", "partner_id", "move_ids"] {
        if !known.contains_key(required) {
            return Err(SelectError::Setup(format!(
                "{} has no field {required}: is the Inventory (stock) module installed?",
                export.model
            )));
        }
    }
    let mark = match &export.mark {
        None => None,
        Some(field) => {
            let kind = match known
                .get(field)
                .and_then(|f| f.get("type"))
                .and_then(Value::as_str)
            {
                None => {
                    return Err(SelectError::Setup(format!(
                        "{} has no field {field} (`mark`): create it in Odoo (a boolean or \
                         datetime field, e.g. through Settings / Technical / Fields) or fix \
                         `mark`",
                        export.model
                    )));
                }
                Some("boolean") => MarkKind::Boolean,
                Some("datetime") => MarkKind::Datetime,
                Some("date") => MarkKind::Date,
                Some(other) => {
                    return Err(SelectError::Setup(format!(
                        "the mark field {field} is a {other} field; it must be a boolean (set \
                         to true) or a datetime (set to now)"
                    )));
                }
            };
            Some((field.clone(), kind))
        }
    };
    let picking: Vec<String> = wanted
        .iter()
        .filter(|f| known.contains_key(**f))
        .map(|f| f.to_string())
        .collect();
    let move_known = client
        .fields_get(
            "stock.move",
            Some(&["product_id", "product_uom_qty", "quantity", "product_uom"]),
            &["type"],
        )
        .await?;
    let moves: Vec<String> = ["product_id", "product_uom_qty", "quantity", "product_uom"]
        .iter()
        .filter(|f| move_known.contains_key(**f))
        .map(|f| f.to_string())
        .collect();
    Ok(Fields {
        carrier: known.contains_key("carrier_id"),
        tracking: known.contains_key("carrier_tracking_ref"),
        picking,
        moves,
        mark,
    })
}

/// The flow's domain, narrowed to records not marked yet (when it marks) and, for a webhook,
/// to the given ids.
pub fn selection_domain(export: &ExportFlow, fields: &Fields, ids: Option<&[i64]>) -> Value {
    let mut domain = export.domain.as_array().cloned().unwrap_or_default();
    if let Some((field, _)) = &fields.mark {
        // Odoo's `= False` also matches records never set (transcript 18 note 12).
        domain.push(json!([field, "=", false]));
    }
    if let Some(ids) = ids {
        domain.push(json!(["id", "in", ids]));
    }
    Value::Array(domain)
}

/// The records matching `domain`, oldest first, as raw picking values (one call).
pub async fn search(
    client: &OdooClient,
    export: &ExportFlow,
    fields: &Fields,
    domain: Value,
) -> Result<Vec<Map<String, Value>>, SelectError> {
    let names: Vec<&str> = fields.picking.iter().map(String::as_str).collect();
    Ok(client
        .search_read(
            &export.model,
            domain,
            &names,
            SearchOptions {
                order: Some("id asc".into()),
                ..SearchOptions::default()
            },
        )
        .await?)
}

/// Reads moves, products and partners of `pickings` in batched calls and builds the
/// documents' data, in the pickings' order.
pub async fn read_pickings(
    client: &OdooClient,
    fields: &Fields,
    pickings: &[Map<String, Value>],
) -> Result<Vec<Picking>, SelectError> {
    let move_ids: Vec<i64> = pickings
        .iter()
        .flat_map(|p| ids_of(p.get("move_ids")))
        .collect();
    let move_fields: Vec<&str> = fields.moves.iter().map(String::as_str).collect();
    let moves = read_all(client, "stock.move", &move_ids, &move_fields).await?;
    let product_ids: BTreeSet<i64> = moves
        .values()
        .filter_map(|m| many2one(m.get("product_id")).map(|(id, _)| id))
        .collect();
    let products = read_all(
        client,
        "product.product",
        &product_ids.into_iter().collect::<Vec<_>>(),
        &["default_code", "barcode", "name"],
    )
    .await?;
    const PARTNER: &[&str] = &[
        "name",
        "parent_id",
        "street",
        "street2",
        "zip",
        "city",
        "state_id",
        "country_id",
        "country_code",
        "phone",
        "email",
    ];
    let partner_ids: BTreeSet<i64> = pickings
        .iter()
        .filter_map(|p| many2one(p.get("partner_id")).map(|(id, _)| id))
        .collect();
    let mut partners = read_all(
        client,
        "res.partner",
        &partner_ids.iter().copied().collect::<Vec<_>>(),
        PARTNER,
    )
    .await?;
    let parents: Vec<i64> = partners
        .values()
        .filter_map(|p| many2one(p.get("parent_id")).map(|(id, _)| id))
        .filter(|id| !partners.contains_key(id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    partners.extend(read_all(client, "res.partner", &parents, PARTNER).await?);

    let party = |id: i64| partners.get(&id).map(|p| party_of(id, p));
    Ok(pickings
        .iter()
        .map(|p| {
            let delivery_id = many2one(p.get("partner_id")).map(|(id, _)| id);
            let delivery = delivery_id.and_then(party);
            let customer = delivery_id
                .and_then(|id| partners.get(&id))
                .and_then(|d| many2one(d.get("parent_id")).map(|(id, _)| id))
                .and_then(party)
                .or_else(|| delivery.clone());
            let lines = ids_of(p.get("move_ids"))
                .into_iter()
                .filter_map(|m| moves.get(&m).map(|mv| (m, mv)))
                .enumerate()
                .map(|(i, (m, mv))| {
                    let (pid, display) =
                        many2one(mv.get("product_id")).unwrap_or((0, String::new()));
                    let product = products.get(&pid);
                    Line {
                        number: i + 1,
                        move_id: m,
                        product: Product {
                            id: pid,
                            code: product.and_then(|x| text(x.get("default_code"))),
                            barcode: product.and_then(|x| text(x.get("barcode"))),
                            name: product.and_then(|x| text(x.get("name"))).unwrap_or(display),
                        },
                        quantity: mv
                            .get("product_uom_qty")
                            .and_then(Value::as_f64)
                            .unwrap_or(0.0),
                        reserved: mv.get("quantity").and_then(Value::as_f64),
                        unit: many2one(mv.get("product_uom"))
                            .map(|(_, n)| n)
                            .unwrap_or_else(|| "Units".into()),
                    }
                })
                .collect();
            Picking {
                id: p.get("id").and_then(Value::as_i64).unwrap_or(0),
                name: text(p.get("name")).unwrap_or_default(),
                origin: text(p.get("origin")),
                scheduled_date: text(p.get("scheduled_date")).map(|d| iso_utc(&d)),
                note: text(p.get("note"))
                    .map(|n| html_to_text(&n))
                    .filter(|n| !n.is_empty()),
                carrier: many2one(p.get("carrier_id")).map(|(_, n)| n),
                tracking_ref: text(p.get("carrier_tracking_ref")),
                delivery,
                customer,
                lines,
            }
        })
        .collect())
}

/// `read` of `ids` in chunks, by id.
async fn read_all(
    client: &OdooClient,
    model: &str,
    ids: &[i64],
    fields: &[&str],
) -> Result<BTreeMap<i64, Map<String, Value>>, SelectError> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(READ_CHUNK) {
        for record in client.read(model, chunk, fields, None).await? {
            if let Some(id) = record.get("id").and_then(Value::as_i64) {
                out.insert(id, record);
            }
        }
    }
    Ok(out)
}

fn party_of(id: i64, p: &Map<String, Value>) -> Party {
    Party {
        id,
        name: text(p.get("name")).unwrap_or_default(),
        street: text(p.get("street")),
        street2: text(p.get("street2")),
        zip: text(p.get("zip")),
        city: text(p.get("city")),
        state: many2one(p.get("state_id")).map(|(_, n)| n),
        country_code: text(p.get("country_code")),
        country: many2one(p.get("country_id")).map(|(_, n)| n),
        phone: text(p.get("phone")),
        email: text(p.get("email")),
    }
}

/// Odoo's text value: `false` (empty) becomes none, blanks are trimmed.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A many2one as Odoo reads it: `[id, display_name]` (or a bare id), `false` when empty.
fn many2one(v: Option<&Value>) -> Option<(i64, String)> {
    match v? {
        Value::Array(pair) => Some((
            pair.first()?.as_i64()?,
            pair.get(1)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )),
        Value::Number(n) => Some((n.as_i64()?, String::new())),
        _ => None,
    }
}

fn ids_of(v: Option<&Value>) -> Vec<i64> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

/// Odoo's `"YYYY-MM-DD HH:MM:SS"` (UTC) as ISO 8601 with its zone.
fn iso_utc(odoo: &str) -> String {
    match odoo.split_once(' ') {
        Some((date, time)) => format!("{date}T{time}Z"),
        None => odoo.to_string(),
    }
}

/// An HTML note as plain text: tags dropped (a paragraph or a line break becomes a new line),
/// the common entities decoded, blank lines and spaces trimmed.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let Some(gt) = rest[lt..].find('>') else {
            rest = &rest[lt..];
            break;
        };
        let tag = rest[lt + 1..lt + gt]
            .trim_start_matches('/')
            .to_ascii_lowercase();
        let tag = tag
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or("");
        if matches!(tag, "p" | "br" | "div" | "li" | "tr") {
            out.push('\n');
        }
        rest = &rest[lt + gt + 1..];
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The picking `check` renders and `dry_run` without Odoo shows: every element filled.
pub fn sample_picking() -> Picking {
    let customer = Party {
        id: 44,
        name: "TR2 Customer GmbH".into(),
        street: Some("Hauptstrasse 12".into()),
        street2: Some("Hof 3".into()),
        zip: Some("10115".into()),
        city: Some("Berlin".into()),
        state: None,
        country_code: Some("DE".into()),
        country: Some("Germany".into()),
        phone: Some("+49 30 1234567".into()),
        email: Some("orders@tr2-customer.example".into()),
    };
    Picking {
        id: 42,
        name: "WH/OUT/00042".into(),
        origin: Some("S00042".into()),
        scheduled_date: Some("2026-11-29T18:36:30Z".into()),
        note: Some("Leave at the back door & ring twice".into()),
        carrier: Some("DHL Express".into()),
        tracking_ref: None,
        delivery: Some(customer.clone()),
        customer: Some(customer),
        lines: vec![
            Line {
                number: 1,
                move_id: 61,
                product: Product {
                    id: 88,
                    code: Some("TR2-P1".into()),
                    barcode: Some("TR218P1000001".into()),
                    name: "TR2 Export Widget".into(),
                },
                quantity: 5.0,
                reserved: Some(5.0),
                unit: "Units".into(),
            },
            Line {
                number: 2,
                move_id: 62,
                product: Product {
                    id: 89,
                    code: Some("TR2-P2".into()),
                    barcode: None,
                    name: "TR2 Export Gadget <large>".into(),
                },
                quantity: 2.5,
                reserved: Some(2.5),
                unit: "kg".into(),
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_lose_their_html() {
        assert_eq!(
            html_to_text("<p>Leave at the <b>back</b> door</p><p>Ring &amp; wait&nbsp;</p>"),
            "Leave at the back door\nRing & wait"
        );
        assert_eq!(html_to_text("plain"), "plain");
        assert_eq!(html_to_text("<p><br></p>"), "");
    }

    #[test]
    fn the_selection_adds_not_marked_and_the_ids_asked_for() {
        let export = ExportFlow {
            outbox: "/in".into(),
            model: "stock.picking".into(),
            domain: json!([["state", "=", "assigned"]]),
            template: crate::config::Template::BuiltinPicking,
            schema: None,
            filename: "{name}.xml".into(),
            mark: Some("x_edi_exported".into()),
            chatter: false,
            note_on_failure: false,
        };
        let fields = Fields {
            picking: vec!["name".into()],
            moves: vec![],
            carrier: false,
            tracking: false,
            mark: Some(("x_edi_exported".into(), MarkKind::Boolean)),
        };
        assert_eq!(
            selection_domain(&export, &fields, Some(&[7, 9])),
            json!([
                ["state", "=", "assigned"],
                ["x_edi_exported", "=", false],
                ["id", "in", [7, 9]]
            ])
        );
        let unmarked = Fields {
            mark: None,
            ..fields
        };
        assert_eq!(
            selection_domain(&export, &unmarked, None),
            json!([["state", "=", "assigned"]])
        );
    }

    #[test]
    fn odoo_values_become_document_values() {
        assert_eq!(iso_utc("2026-11-29 18:36:30"), "2026-11-29T18:36:30Z");
        assert_eq!(
            many2one(Some(&json!([9, "Wood Corner"]))),
            Some((9, "Wood Corner".into()))
        );
        assert_eq!(many2one(Some(&json!(false))), None);
        assert_eq!(text(Some(&json!(false))), None);
        assert_eq!(text(Some(&json!("  x "))), Some("x".into()));
    }
}
