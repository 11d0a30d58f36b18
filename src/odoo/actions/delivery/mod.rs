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
//!
//! The parts: this module runs a batch (read the pickings and moves, plan, write, validate,
//! check what Odoo did); `plan` matches each confirmation to its picking's moves and applies our
//! rules; `write` sends the move values and tracking numbers; `fields` asks what this Odoo has.

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

mod fields;
mod plan;
mod write;

use plan::{confirmation, move_read, product_ref, refusal_on};

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
}

#[cfg(test)]
mod tests {
    use super::plan::{allocate, move_vals};
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
