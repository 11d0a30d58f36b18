//! `confirm_delivery`: a warehouse's shipping confirmation closes the picking it names. The
//! shipped quantities are set on the picking's moves (lots as move lines), the tracking number
//! on the picking, and the picking is validated; what was not shipped becomes a backorder or is
//! dropped, as the mapping says.
//!
//! Odoo enforces none of our rules (transcripts 18/145–173, 19/150–178): validating a done
//! picking answers `true` again, 7 shipped of 5 validates silently, a product that is not in
//! the picking is shipped as an extra move, and a cancelled picking's refusal never says
//! "cancelled". So every picking's state and moves are read first and the rules are ours:
//! a picking done with the same quantities is a replay and succeeds without a second
//! validation; done with other quantities, cancelled, a product not in the picking, or a
//! quantity above the demand (unless `allow_over_delivery`) fails that record.
//!
//! One batch costs: one `fields_get` per run (the move's quantity fields — `quantity` and
//! `picked` on 17+, `quantity_done` on 16 — and, when a record carries a tracking number,
//! whether `carrier_tracking_ref` exists), one `search_read` of the pickings, one of their
//! moves, the product lookups not cached yet, one `search_read` of lots when lines name them,
//! one `write` per set of moves that ship the same values (full deliveries share a handful of
//! quantities; a move with lots replaces its move lines on its own), up to `max_concurrency`
//! at once, one `load` of the tracking numbers (`.id`, `carrier_tracking_ref`; a `write` when
//! there is one), one `button_validate` for all of them with context
//! `skip_sms` and `skip_backorder` (and `picking_ids_not_to_backorder` for
//! `backorder = "none"`), split only when Odoo refuses it, and one `read` of the states after.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::batch::{At, Guard, Outcome, Sent, send_split};
use super::compare::{display, many2one_id, number, record_id, same_float, text};
use super::{Applier, Refusal, Tag, Vals, tagged};
use crate::error::Consequence;
use crate::mapping::config::{Backorder, ConfirmDeliveryMapping};
use crate::odoo::client::{Args, SearchOptions};
use crate::odoo::error::OdooError;
use crate::operation::{LookupRef, Operation};

/// How this Odoo stores a move's shipped quantity and whether it has tracking numbers, read
/// once per run with `fields_get`.
#[derive(Debug, Default)]
pub(super) struct DeliveryFields {
    done: RefCell<Option<DoneField>>,
    tracking_ref: RefCell<Option<bool>>,
}

/// The field of `stock.move` that holds what is shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DoneField {
    /// Odoo 17+: `quantity`, counted once `picked`.
    QuantityPicked,
    /// Odoo 16: `quantity_done`.
    QuantityDone,
}

impl DoneField {
    fn quantity(self) -> &'static str {
        match self {
            DoneField::QuantityPicked => "quantity",
            DoneField::QuantityDone => "quantity_done",
        }
    }

    /// A move line's quantity field.
    fn line_quantity(self) -> &'static str {
        match self {
            DoneField::QuantityPicked => "quantity",
            DoneField::QuantityDone => "qty_done",
        }
    }
}

/// One shipped line of a confirmation, as the file names it.
#[derive(Debug, Clone)]
struct Shipped {
    product: Value,
    quantity: f64,
    lot: Option<Value>,
}

/// One record: the picking it names and what was shipped.
struct Confirmation<'o> {
    tag: Tag,
    key: String,
    lines: Vec<Shipped>,
    tracking: Option<String>,
    op: &'o Operation,
}

/// A move of a picking, as read.
#[derive(Debug, Clone)]
struct MoveRead {
    id: i64,
    picking: i64,
    product: i64,
    product_name: String,
    demand: f64,
    done: f64,
    picked: bool,
    state: String,
    lines: Vec<i64>,
    location: Value,
    location_dest: Value,
}

/// A picking, as read.
#[derive(Debug, Clone)]
struct PickingRead {
    id: i64,
    name: String,
    state: String,
}

/// What a record does in Odoo.
struct Plan {
    tag: Tag,
    picking: PickingRead,
    writes: Writes,
}

/// The writes that ship a picking: values per move, and its tracking number.
struct Writes {
    moves: Vec<(i64, Value)>,
    tracking: Option<String>,
}

/// What a move ships: (quantity, lot id) parts.
type Parts = Vec<(f64, Option<i64>)>;

/// Moves whose quantities are this close count as equal (Odoo's unit rounding is far coarser).
const EPSILON_DIGITS: Option<u32> = Some(6);

impl<'a> Applier<'a> {
    /// Applies one batch of `confirm_delivery` operations.
    pub(super) async fn confirm_delivery(
        &self,
        confirm: &ConfirmDeliveryMapping,
        files: &[&[Operation]],
        batch: &[At],
        g: &mut Guard,
    ) -> Result<Outcome, OdooError> {
        let client = self.client;
        let mut out = Outcome::default();
        let by = confirm.picking.field.as_str();
        let mut records = Vec::new();
        for (tag, op) in g.keep(tagged(files, batch), &mut out) {
            match confirmation(tag.clone(), op, by) {
                Ok(c) => records.push(c),
                Err(r) => g.fail(tag, r, &mut out),
            }
        }
        if records.is_empty() {
            return Ok(out);
        }
        let done_field = self.done_field().await?;
        if records.iter().any(|c| c.tracking.is_some()) && !self.has_tracking_ref().await? {
            return Err(OdooError::Config {
                message: "the file carries tracking numbers, but stock.picking has no field \
                          'carrier_tracking_ref' in this Odoo (it comes with the Delivery \
                          module, stock_delivery): install it, or remove `tracking` from the \
                          mapping"
                    .into(),
            });
        }

        // The pickings and their moves, two reads for the whole batch.
        let keys: BTreeSet<&str> = records.iter().map(|c| c.key.as_str()).collect();
        let mut fields = vec!["name", "state"];
        if by != "name" {
            fields.push(by);
        }
        let read = client
            .search_read(
                "stock.picking",
                json!([[by, "in", keys]]),
                &fields,
                SearchOptions {
                    order: Some("id".into()),
                    ..SearchOptions::default()
                },
            )
            .await;
        let pickings = match read {
            Ok(p) => p,
            Err(e) if e.consequence() == Consequence::Reject => {
                g.fail_all(records.into_iter().map(|c| c.tag), &e, &mut out);
                return Ok(out);
            }
            Err(e) => return Err(e),
        };
        let mut by_key: HashMap<String, Vec<PickingRead>> = HashMap::new();
        for p in &pickings {
            let Some(id) = record_id(p) else { continue };
            by_key
                .entry(p.get(by).map(text).unwrap_or_default())
                .or_default()
                .push(PickingRead {
                    id,
                    name: p.get("name").map(text).unwrap_or_default(),
                    state: p.get("state").map(text).unwrap_or_default(),
                });
        }
        let moves = if pickings.is_empty() {
            Vec::new()
        } else {
            let ids: Vec<i64> = pickings.iter().filter_map(record_id).collect();
            let mut fields = vec![
                "picking_id",
                "product_id",
                "product_uom_qty",
                done_field.quantity(),
                "state",
                "move_line_ids",
                "location_id",
                "location_dest_id",
            ];
            if done_field == DoneField::QuantityPicked {
                fields.push("picked");
            }
            match client
                .search_read(
                    "stock.move",
                    json!([["picking_id", "in", ids]]),
                    &fields,
                    SearchOptions {
                        order: Some("id".into()),
                        ..SearchOptions::default()
                    },
                )
                .await
            {
                Ok(m) => m,
                Err(e) if e.consequence() == Consequence::Reject => {
                    g.fail_all(records.into_iter().map(|c| c.tag), &e, &mut out);
                    return Ok(out);
                }
                Err(e) => return Err(e),
            }
        };
        let mut moves_of: HashMap<i64, Vec<MoveRead>> = HashMap::new();
        for m in &moves {
            let Some(mv) = move_read(m, done_field) else {
                continue;
            };
            moves_of.entry(mv.picking).or_default().push(mv);
        }

        // Products (cached for the run) and lots, one read each.
        let refs: Vec<LookupRef> = records
            .iter()
            .flat_map(|c| c.lines.iter().map(|l| product_ref(c.op, &l.product)))
            .collect();
        // Products come with their tracking: a tracked product shipped without a lot is refused
        // here, with its name, rather than by Odoo's validation.
        self.resolve(refs.iter(), true).await?;
        let lots = self.delivery_lots(&records).await?;

        let mut plans = Vec::new();
        for c in records {
            let candidates = by_key.get(&c.key).map(Vec::as_slice).unwrap_or_default();
            match self.plan(confirm, done_field, &c, candidates, &moves_of, &lots) {
                Ok(Some((picking, writes))) => plans.push(Plan {
                    tag: c.tag,
                    picking,
                    writes,
                }),
                // Already validated with these quantities: a replay, nothing to do.
                Ok(None) => out.applied.push(c.tag),
                Err(r) => g.fail(c.tag, r, &mut out),
            }
        }

        let plans: Vec<Plan> = g
            .keep(
                plans.into_iter().map(|p| (p.tag.clone(), p)).collect(),
                &mut out,
            )
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        let written = self.write_plans(plans, g, &mut out).await?;
        if written.is_empty() {
            return Ok(out);
        }

        let picking_of: HashMap<(usize, u64), i64> = written
            .iter()
            .map(|(t, p)| ((t.file, t.record), p.id))
            .collect();
        // One validation for all; a refused call is split until the refused picking is alone.
        let mut validated = Outcome::default();
        let backorder = confirm.backorder;
        send_split(
            written,
            g,
            &mut validated,
            async |chunk: &[(Tag, PickingRead)]| {
                let ids: Vec<i64> = chunk.iter().map(|(_, p)| p.id).collect();
                let mut ctx = Args::new();
                ctx.insert("skip_sms".into(), json!(true));
                ctx.insert("skip_backorder".into(), json!(true));
                if backorder == Backorder::None {
                    ctx.insert("picking_ids_not_to_backorder".into(), json!(ids));
                }
                let answer = client
                    .call(
                        "stock.picking",
                        "button_validate",
                        Some(ids),
                        Args::new(),
                        Some(ctx),
                    )
                    .await?;
                Ok(match answer {
                    Value::Bool(true) => Sent::Applied,
                    other => Sent::Whole(Refusal {
                        message: format!(
                            "Odoo did not validate the picking: it asked for a confirmation \
                         instead ({})",
                            other
                                .get("res_model")
                                .or_else(|| other.get("name"))
                                .map(text)
                                .unwrap_or_else(|| other.to_string())
                        ),
                        exception: None,
                        field: None,
                        value: None,
                    }),
                })
            },
        )
        .await?;
        out.failed.append(&mut validated.failed);
        out.skipped.append(&mut validated.skipped);
        self.check_validated(validated.applied, &picking_of, g, &mut out)
            .await?;
        Ok(out)
    }

    /// Reads the validated pickings back: only a picking Odoo reports done counts as applied.
    /// The backorders created are logged with the picking they continue.
    async fn check_validated(
        &self,
        tags: Vec<Tag>,
        picking_of: &HashMap<(usize, u64), i64>,
        g: &mut Guard,
        out: &mut Outcome,
    ) -> Result<(), OdooError> {
        if tags.is_empty() {
            return Ok(());
        }
        let client = self.client;
        let ids: Vec<i64> = tags
            .iter()
            .filter_map(|t| picking_of.get(&(t.file, t.record)).copied())
            .collect();
        let states = client
            .read("stock.picking", &ids, &["name", "state"], None)
            .await?;
        let state_of: HashMap<i64, (String, String)> = states
            .iter()
            .filter_map(|p| {
                Some((
                    record_id(p)?,
                    (
                        p.get("name").map(text).unwrap_or_default(),
                        p.get("state").map(text).unwrap_or_default(),
                    ),
                ))
            })
            .collect();
        let backorders = client
            .search_read(
                "stock.picking",
                json!([["backorder_id", "in", ids]]),
                &["name", "backorder_id"],
                SearchOptions::default(),
            )
            .await?;
        for b in &backorders {
            let name = b.get("name").map(text).unwrap_or_default();
            let of = b.get("backorder_id").map(display).unwrap_or_default();
            tracing::info!(
                backorder = %name,
                of = %of,
                "what was not shipped waits in a backorder"
            );
        }
        for tag in tags {
            let id = picking_of
                .get(&(tag.file, tag.record))
                .copied()
                .unwrap_or(0);
            match state_of.get(&id) {
                Some((_, state)) if state == "done" => out.applied.push(tag),
                other => {
                    let (name, state) = other.cloned().unwrap_or_default();
                    g.fail(
                        tag,
                        Refusal {
                            message: format!(
                                "Odoo accepted the validation of picking {name}, but it is \
                                 '{state}', not done"
                            ),
                            exception: None,
                            field: None,
                            value: None,
                        },
                        out,
                    );
                }
            }
        }
        Ok(())
    }

    /// What record `c` writes on its picking, `None` for a replay of a done picking, or why it
    /// fails.
    fn plan(
        &self,
        confirm: &ConfirmDeliveryMapping,
        done_field: DoneField,
        c: &Confirmation<'_>,
        candidates: &[PickingRead],
        moves_of: &HashMap<i64, Vec<MoveRead>>,
        lots: &HashMap<(String, i64), Vec<i64>>,
    ) -> Result<Option<(PickingRead, Writes)>, Refusal> {
        let by = confirm.picking.field.as_str();
        let picking_refusal = |message: String| Refusal {
            message,
            exception: None,
            field: Some(by.to_string()),
            value: Some(c.key.clone()),
        };
        // The products shipped, looked up; several lines of a product add up.
        let mut shipped: BTreeMap<i64, Vec<(f64, Option<Value>)>> = BTreeMap::new();
        let mut named: HashMap<i64, String> = HashMap::new();
        for line in &c.lines {
            let r = product_ref(c.op, &line.product);
            let product = self.looked_up("product_id", &r)?;
            named.insert(product, text(&line.product));
            shipped
                .entry(product)
                .or_default()
                .push((line.quantity, line.lot.clone()));
        }
        let total = |product: &i64| -> f64 {
            shipped
                .get(product)
                .map(|l| l.iter().map(|(q, _)| q).sum())
                .unwrap_or(0.0)
        };
        if shipped.keys().all(|p| total(p) <= 0.0) {
            return Err(picking_refusal(format!(
                "the confirmation of {by} '{}' ships nothing (every quantity is 0)",
                c.key
            )));
        }

        if candidates.is_empty() {
            return Err(picking_refusal(format!(
                "no picking with {by} '{}' in Odoo",
                c.key
            )));
        }
        // A replay: a done picking of this key shipped exactly this.
        let empty = Vec::new();
        let moves = |p: &PickingRead| moves_of.get(&p.id).unwrap_or(&empty);
        let same_as_done = |p: &PickingRead| {
            let mut done: BTreeMap<i64, f64> = BTreeMap::new();
            for m in moves(p).iter().filter(|m| m.state == "done") {
                *done.entry(m.product).or_default() += m.done;
            }
            let products: BTreeSet<i64> = done.keys().chain(shipped.keys()).copied().collect();
            products.iter().all(|p| {
                same_float(
                    done.get(p).copied().unwrap_or(0.0),
                    total(p),
                    EPSILON_DIGITS,
                )
            })
        };
        if candidates
            .iter()
            .any(|p| p.state == "done" && same_as_done(p))
        {
            return Ok(None);
        }
        let open: Vec<&PickingRead> = candidates
            .iter()
            .filter(|p| !matches!(p.state.as_str(), "done" | "cancel"))
            .collect();
        let picking = match open.as_slice() {
            [one] => *one,
            [] => {
                let p = &candidates[0];
                if p.state == "cancel" {
                    return Err(picking_refusal(format!(
                        "picking {} is cancelled in Odoo: a cancelled delivery cannot be \
                         shipped",
                        p.name
                    )));
                }
                let mut done: BTreeMap<i64, (String, f64)> = BTreeMap::new();
                for m in moves(p).iter().filter(|m| m.state == "done") {
                    let e = done
                        .entry(m.product)
                        .or_insert((m.product_name.clone(), 0.0));
                    e.1 += m.done;
                }
                let mut differences = Vec::new();
                let products: BTreeSet<i64> = done.keys().chain(shipped.keys()).copied().collect();
                for product in products {
                    let was = done.get(&product).map_or(0.0, |d| d.1);
                    let now = total(&product);
                    if !same_float(was, now, EPSILON_DIGITS) {
                        let name = named
                            .get(&product)
                            .cloned()
                            .or_else(|| done.get(&product).map(|d| d.0.clone()))
                            .unwrap_or_default();
                        differences.push(format!(
                            "{name}: {} shipped, this file says {}",
                            qty(was),
                            qty(now)
                        ));
                    }
                }
                return Err(picking_refusal(format!(
                    "picking {} was already validated with other quantities ({}); nothing \
                     was changed",
                    p.name,
                    differences.join("; ")
                )));
            }
            many => {
                return Err(picking_refusal(format!(
                    "{} open pickings have {by} '{}' ({}): name the picking instead",
                    many.len(),
                    c.key,
                    many.iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        };
        if picking.state == "draft" {
            return Err(picking_refusal(format!(
                "picking {} is a draft in Odoo (not confirmed yet): confirm it before it \
                 is shipped",
                picking.name
            )));
        }

        let open_moves: Vec<&MoveRead> = moves(picking)
            .iter()
            .filter(|m| !matches!(m.state.as_str(), "done" | "cancel"))
            .collect();
        let in_picking: BTreeSet<i64> = open_moves.iter().map(|m| m.product).collect();
        for (product, name) in &named {
            if !in_picking.contains(product) {
                let holds: BTreeSet<&str> =
                    open_moves.iter().map(|m| m.product_name.as_str()).collect();
                return Err(Refusal {
                    message: format!(
                        "product '{name}' is not in picking {} (it holds {})",
                        picking.name,
                        holds.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                    exception: None,
                    field: Some("product_id".into()),
                    value: Some(name.clone()),
                });
            }
        }
        let mut moves_vals = Vec::new();
        for (product, lines) in &shipped {
            let of_product: Vec<&MoveRead> = open_moves
                .iter()
                .copied()
                .filter(|m| m.product == *product)
                .collect();
            let demand: f64 = of_product.iter().map(|m| m.demand).sum();
            let total = total(product);
            let name = &named[product];
            if total > demand
                && !same_float(total, demand, EPSILON_DIGITS)
                && !confirm.allow_over_delivery
            {
                return Err(Refusal {
                    message: format!(
                        "product '{name}': {} shipped, but picking {} asks for {} (a quantity \
                         above the demand is refused; allow_over_delivery = true ships it)",
                        qty(total),
                        picking.name,
                        qty(demand)
                    ),
                    exception: None,
                    field: Some("quantity".into()),
                    value: Some(qty(total)),
                });
            }
            let tracked = matches!(
                self.tracking.borrow().get(product).map(String::as_str),
                Some("lot" | "serial")
            );
            if tracked && lines.iter().any(|(q, lot)| *q > 0.0 && lot.is_none()) {
                return Err(Refusal {
                    message: format!(
                        "product '{name}' is tracked by lot or serial number: each of its \
                         lines needs a lot"
                    ),
                    exception: None,
                    field: Some("lot_id".into()),
                    value: None,
                });
            }
            // Lots: each named lot must exist for the product.
            let mut chunks: Parts = Vec::new();
            for (q, lot) in lines {
                let lot = match lot {
                    None => None,
                    Some(lot) => match lots.get(&(text(lot), *product)).map(Vec::as_slice) {
                        Some([id]) => Some(*id),
                        Some([_, _, ..]) => {
                            return Err(Refusal {
                                message: format!(
                                    "lot '{}' of product '{name}' is not unique in Odoo",
                                    text(lot)
                                ),
                                exception: None,
                                field: Some("lot_id".into()),
                                value: Some(text(lot)),
                            });
                        }
                        _ => {
                            return Err(Refusal {
                                message: format!(
                                    "lot '{}' of product '{name}' not found in Odoo",
                                    text(lot)
                                ),
                                exception: None,
                                field: Some("lot_id".into()),
                                value: Some(text(lot)),
                            });
                        }
                    },
                };
                if *q > 0.0 {
                    chunks.push((*q, lot));
                }
            }
            for (mv, parts) in allocate(&of_product, chunks) {
                moves_vals.push((mv.id, move_vals(done_field, mv, &parts)));
            }
        }
        // Moves of products the file does not list ship nothing.
        for m in &open_moves {
            if shipped.contains_key(&m.product) {
                continue;
            }
            let vals = match done_field {
                DoneField::QuantityPicked if m.picked => json!({"picked": false}),
                DoneField::QuantityDone if m.done != 0.0 => json!({"quantity_done": 0.0}),
                _ => continue,
            };
            moves_vals.push((m.id, vals));
        }
        Ok(Some((
            picking.clone(),
            Writes {
                moves: moves_vals,
                tracking: c.tracking.clone(),
            },
        )))
    }

    /// Writes what the plans ship: moves that get the same values in one `write` (a batch of
    /// full deliveries shares a handful of quantities), moves with lots on their own, up to
    /// `max_concurrency` calls at once; the tracking numbers in one `load` (each on its own if
    /// Odoo refuses it). A grouped write Odoo refuses is sent
    /// again per picking, so only the picking at fault fails. Returns the pickings written.
    async fn write_plans(
        &self,
        plans: Vec<Plan>,
        g: &mut Guard,
        out: &mut Outcome,
    ) -> Result<Vec<(Tag, PickingRead)>, OdooError> {
        struct Unit {
            model: &'static str,
            ids: Vec<i64>,
            vals: Vals,
            plans: Vec<usize>,
        }
        let mut units: Vec<Unit> = Vec::new();
        let mut shared: HashMap<String, usize> = HashMap::new();
        for (i, plan) in plans.iter().enumerate() {
            for (mv, vals) in &plan.writes.moves {
                let Value::Object(vals) = vals else { continue };
                let key = Value::Object(vals.clone()).to_string();
                let alone = vals.contains_key("move_line_ids");
                match shared.get(&key) {
                    Some(&u) if !alone => {
                        units[u].ids.push(*mv);
                        if !units[u].plans.contains(&i) {
                            units[u].plans.push(i);
                        }
                    }
                    _ => {
                        shared.insert(key, units.len());
                        units.push(Unit {
                            model: "stock.move",
                            ids: vec![*mv],
                            vals: vals.clone(),
                            plans: vec![i],
                        });
                    }
                }
            }
        }
        let tracked: Vec<usize> = (0..plans.len())
            .filter(|&i| plans[i].writes.tracking.is_some())
            .collect();
        // Tracking numbers differ per picking: one `load` with a `.id` column writes them all.
        let mut one_by_one = Vec::new();
        if tracked.len() > 1 {
            let rows: Vec<Vec<String>> = tracked
                .iter()
                .map(|&i| {
                    vec![
                        plans[i].picking.id.to_string(),
                        plans[i].writes.tracking.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            match self
                .client
                .load(
                    "stock.picking",
                    &[".id", "carrier_tracking_ref"],
                    rows,
                    None,
                )
                .await
            {
                Ok(loaded) if loaded.ids.is_some() => {}
                // Refused (all or nothing): each on its own, to find the one at fault.
                Ok(_) => one_by_one = tracked,
                Err(e) if e.consequence() == Consequence::Reject => one_by_one = tracked,
                Err(e) => return Err(e),
            }
        } else {
            one_by_one = tracked;
        }
        for i in one_by_one {
            let mut vals = Vals::new();
            vals.insert(
                "carrier_tracking_ref".into(),
                json!(plans[i].writes.tracking.clone().unwrap_or_default()),
            );
            units.push(Unit {
                model: "stock.picking",
                ids: vec![plans[i].picking.id],
                vals,
                plans: vec![i],
            });
        }
        let client = self.client;
        let answers: Vec<Result<(), OdooError>> = futures::stream::iter(
            units
                .iter()
                .map(|u| client.write(u.model, &u.ids, u.vals.clone(), None)),
        )
        .buffered(self.lanes)
        .collect()
        .await;
        let mut refused: BTreeMap<usize, Refusal> = BTreeMap::new();
        let mut again: BTreeSet<usize> = BTreeSet::new();
        for (unit, answer) in units.iter().zip(answers) {
            match answer {
                Ok(()) => {}
                Err(e) if e.consequence() == Consequence::Reject => match unit.plans.as_slice() {
                    [one] => {
                        let plan = &plans[*one];
                        refused.insert(
                            *one,
                            refusal_on(&plan.picking, "writing the shipped quantities", &e),
                        );
                    }
                    several => again.extend(several),
                },
                Err(e) => return Err(e),
            }
        }
        // A refused grouped write: each of its pickings on its own, its moves and tracking
        // number in one write through `move_ids`.
        for i in again {
            if refused.contains_key(&i) {
                continue;
            }
            let plan = &plans[i];
            let mut vals = Vals::new();
            vals.insert(
                "move_ids".into(),
                Value::Array(
                    plan.writes
                        .moves
                        .iter()
                        .map(|(mv, v)| json!([1, mv, v]))
                        .collect(),
                ),
            );
            if let Some(tracking) = &plan.writes.tracking {
                vals.insert("carrier_tracking_ref".into(), json!(tracking));
            }
            match client
                .write("stock.picking", &[plan.picking.id], vals, None)
                .await
            {
                Ok(()) => {}
                Err(e) if e.consequence() == Consequence::Reject => {
                    refused.insert(
                        i,
                        refusal_on(&plan.picking, "writing the shipped quantities", &e),
                    );
                }
                Err(e) => return Err(e),
            }
        }
        let mut written = Vec::new();
        for (i, plan) in plans.into_iter().enumerate() {
            match refused.remove(&i) {
                Some(r) => g.fail(plan.tag, r, out),
                None => written.push((plan.tag, plan.picking)),
            }
        }
        Ok(written)
    }

    /// The move quantity fields of this Odoo, asked once per run.
    async fn done_field(&self) -> Result<DoneField, OdooError> {
        if let Some(known) = *self.delivery.done.borrow() {
            return Ok(known);
        }
        let fields = self
            .client
            .fields_get(
                "stock.move",
                Some(&["quantity", "picked", "quantity_done"]),
                &["type"],
            )
            .await?;
        let done = if fields.contains_key("picked") && fields.contains_key("quantity") {
            DoneField::QuantityPicked
        } else if fields.contains_key("quantity_done") {
            DoneField::QuantityDone
        } else {
            return Err(OdooError::Config {
                message: "stock.move has neither 'quantity' and 'picked' (Odoo 17+) nor \
                          'quantity_done' (Odoo 16): this Odoo's stock module is not one \
                          edi-bridge knows"
                    .into(),
            });
        };
        *self.delivery.done.borrow_mut() = Some(done);
        Ok(done)
    }

    /// Whether `stock.picking` has `carrier_tracking_ref`, asked once per run.
    async fn has_tracking_ref(&self) -> Result<bool, OdooError> {
        if let Some(known) = *self.delivery.tracking_ref.borrow() {
            return Ok(known);
        }
        let fields = self
            .client
            .fields_get("stock.picking", Some(&["carrier_tracking_ref"]), &["type"])
            .await?;
        let has = fields.contains_key("carrier_tracking_ref");
        *self.delivery.tracking_ref.borrow_mut() = Some(has);
        Ok(has)
    }

    /// The lots the lines name, per (name, product): one `search_read`.
    async fn delivery_lots(
        &self,
        records: &[Confirmation<'_>],
    ) -> Result<HashMap<(String, i64), Vec<i64>>, OdooError> {
        let mut names = BTreeSet::new();
        let mut products = BTreeSet::new();
        for c in records {
            for l in &c.lines {
                if let Some(lot) = &l.lot
                    && let Ok(p) = self.looked_up("product_id", &product_ref(c.op, &l.product))
                {
                    names.insert(text(lot));
                    products.insert(p);
                }
            }
        }
        let mut found: HashMap<(String, i64), Vec<i64>> = HashMap::new();
        if names.is_empty() {
            return Ok(found);
        }
        let lots = self
            .client
            .search_read(
                "stock.lot",
                json!([["name", "in", names], ["product_id", "in", products]]),
                &["name", "product_id"],
                SearchOptions::default(),
            )
            .await;
        let lots = match lots {
            Ok(l) => l,
            // Refused as data: every line with a lot then fails as "not found".
            Err(e) if e.consequence() == Consequence::Reject => return Ok(found),
            Err(e) => return Err(e),
        };
        for lot in &lots {
            if let (Some(id), Some(product)) =
                (record_id(lot), lot.get("product_id").and_then(many2one_id))
            {
                found
                    .entry((lot.get("name").map(text).unwrap_or_default(), product))
                    .or_default()
                    .push(id);
            }
        }
        Ok(found)
    }
}

/// The product lookup of one line of `op`.
fn product_ref(op: &Operation, product: &Value) -> LookupRef {
    let (model, field) = op
        .lookups
        .get("product_id")
        .map(|r| (r.model.clone(), r.field.clone()))
        .unwrap_or_else(|| ("product.product".into(), "default_code".into()));
    LookupRef {
        model,
        field,
        value: product.clone(),
    }
}

/// Reads a record's confirmation out of its operation.
fn confirmation<'o>(tag: Tag, op: &'o Operation, by: &str) -> Result<Confirmation<'o>, Refusal> {
    let bad = |message: &str| Refusal {
        message: message.to_string(),
        exception: None,
        field: None,
        value: None,
    };
    let key = op
        .key
        .get(by)
        .map(text)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| bad(&format!("the confirmation names no picking {by}")))?;
    let lines = op
        .values
        .get("lines")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the confirmation has no lines"))?
        .iter()
        .map(|l| {
            let product = l.get("product_id").cloned().unwrap_or(Value::Null);
            let quantity = l
                .get("quantity")
                .and_then(number)
                .ok_or_else(|| bad("a line's quantity is not a number"))?;
            Ok(Shipped {
                product,
                quantity,
                lot: l.get("lot_id").cloned(),
            })
        })
        .collect::<Result<Vec<_>, Refusal>>()?;
    Ok(Confirmation {
        tag,
        key,
        lines,
        tracking: op.values.get("carrier_tracking_ref").map(text),
        op,
    })
}

fn move_read(m: &Map<String, Value>, done_field: DoneField) -> Option<MoveRead> {
    Some(MoveRead {
        id: record_id(m)?,
        picking: m.get("picking_id").and_then(many2one_id)?,
        product: m.get("product_id").and_then(many2one_id)?,
        product_name: m.get("product_id").map(display).unwrap_or_default(),
        demand: m.get("product_uom_qty").and_then(number).unwrap_or(0.0),
        done: m.get(done_field.quantity()).and_then(number).unwrap_or(0.0),
        picked: m.get("picked").is_some_and(|v| v == &Value::Bool(true)),
        state: m.get("state").map(text).unwrap_or_default(),
        lines: m
            .get("move_line_ids")
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default(),
        location: m
            .get("location_id")
            .map(|v| json!(many2one_id(v)))
            .unwrap_or(Value::Null),
        location_dest: m
            .get("location_dest_id")
            .map(|v| json!(many2one_id(v)))
            .unwrap_or(Value::Null),
    })
}

/// Spreads a product's shipped quantities over its moves in order: each move up to its demand,
/// whatever is above the demand on the last one. Every move of the product is listed (a move
/// that gets nothing with no parts).
fn allocate<'m>(moves: &[&'m MoveRead], chunks: Parts) -> Vec<(&'m MoveRead, Parts)> {
    let mut result: Vec<(&MoveRead, Parts)> = moves.iter().map(|m| (*m, Vec::new())).collect();
    let Some(last) = result.len().checked_sub(1) else {
        return result;
    };
    let mut i = 0;
    let mut room = moves[0].demand;
    for (mut q, lot) in chunks {
        while q > 0.0 {
            if i < last && room <= 0.0 {
                i += 1;
                room = moves[i].demand;
                continue;
            }
            let take = if i == last { q } else { q.min(room) };
            result[i].1.push((take, lot));
            q -= take;
            room -= take;
        }
    }
    result
}

/// The values one move gets: the quantity shipped on it, picked, and its move lines replaced
/// by one per lot when lots are named.
fn move_vals(done_field: DoneField, mv: &MoveRead, parts: &[(f64, Option<i64>)]) -> Value {
    let quantity: f64 = parts.iter().map(|(q, _)| q).sum();
    let mut vals = Map::new();
    vals.insert(done_field.quantity().into(), json!(quantity));
    if done_field == DoneField::QuantityPicked {
        vals.insert("picked".into(), json!(quantity > 0.0));
    }
    if parts.iter().any(|(_, lot)| lot.is_some()) {
        let mut commands: Vec<Value> = mv.lines.iter().map(|l| json!([2, l])).collect();
        for (q, lot) in parts {
            let mut line = Map::new();
            line.insert("product_id".into(), json!(mv.product));
            line.insert("location_id".into(), mv.location.clone());
            line.insert("location_dest_id".into(), mv.location_dest.clone());
            line.insert(done_field.line_quantity().into(), json!(q));
            if let Some(lot) = lot {
                line.insert("lot_id".into(), json!(lot));
            }
            if done_field == DoneField::QuantityPicked {
                line.insert("picked".into(), json!(true));
            }
            commands.push(json!([0, 0, line]));
        }
        vals.insert("move_line_ids".into(), Value::Array(commands));
    }
    Value::Object(vals)
}

/// Odoo's refusal of something done to `picking`, naming it.
fn refusal_on(picking: &PickingRead, doing: &str, e: &OdooError) -> Refusal {
    let mut r = Refusal::odoo(e);
    r.message = format!("{doing} on picking {}: {}", picking.name, r.message);
    r
}

/// A quantity as people write it: 5, 2.5.
fn qty(q: f64) -> String {
    text(&json!(q))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mv(id: i64, demand: f64) -> MoveRead {
        MoveRead {
            id,
            picking: 1,
            product: 7,
            product_name: "[A] A".into(),
            demand,
            done: 0.0,
            picked: false,
            state: "assigned".into(),
            lines: vec![],
            location: json!(8),
            location_dest: json!(5),
        }
    }

    #[test]
    fn shipped_quantities_fill_moves_in_order_and_the_rest_goes_on_the_last() {
        let (a, b) = (mv(1, 5.0), mv(2, 3.0));
        let moves = [&a, &b];
        let spread = allocate(&moves, vec![(4.0, None), (2.0, Some(9))]);
        let got: Vec<(i64, Parts)> = spread.iter().map(|(m, p)| (m.id, p.clone())).collect();
        assert_eq!(
            got,
            vec![
                (1, vec![(4.0, None), (1.0, Some(9))]),
                (2, vec![(1.0, Some(9))])
            ]
        );
        let over = allocate(&moves, vec![(10.0, None)]);
        assert_eq!(over[0].1, vec![(5.0, None)]);
        assert_eq!(over[1].1, vec![(5.0, None)]);
        let short = allocate(&moves, vec![(2.0, None)]);
        assert_eq!(short[0].1, vec![(2.0, None)]);
        assert!(short[1].1.is_empty());
    }

    #[test]
    fn a_move_with_lots_replaces_its_move_lines() {
        let mut m = mv(1, 5.0);
        m.lines = vec![40];
        let vals = move_vals(
            DoneField::QuantityPicked,
            &m,
            &[(3.0, Some(9)), (2.0, Some(10))],
        );
        assert_eq!(vals["quantity"], json!(5.0));
        assert_eq!(vals["picked"], json!(true));
        let lines = vals["move_line_ids"].as_array().unwrap();
        assert_eq!(lines[0], json!([2, 40]));
        assert_eq!(lines[1][2]["lot_id"], json!(9));
        assert_eq!(lines[2][2]["quantity"], json!(2.0));
        let plain = move_vals(DoneField::QuantityDone, &m, &[(5.0, None)]);
        assert_eq!(plain, json!({"quantity_done": 5.0}));
    }
}
