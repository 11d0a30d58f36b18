//! Writing what the plans ship: grouped move writes and the tracking numbers.

use super::*;

impl<'a> Applier<'a> {
    /// Writes what the plans ship: moves that get the same values in one `write` (a batch of
    /// full deliveries shares a handful of quantities), moves with lots on their own, up to
    /// `max_concurrency` calls at once; the tracking numbers in one `load` (each on its own if
    /// Odoo refuses it). A grouped write Odoo refuses is sent
    /// again per picking, so only the picking at fault fails. Returns the pickings written.
    pub(super) async fn write_plans(
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
}
