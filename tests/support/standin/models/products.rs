//! Products: a template and its variant created and written together (the variant's own
//! fields apart from those it inherits), and the barcode uniqueness constraint.

use serde_json::json;

use super::super::Vals;
use super::super::errors::{Fail, format_list};
use super::super::orm::{Env, as_id, truthy};

impl Env<'_> {
    /// Splits `product.product` values into the template's and the variant's own.
    pub(crate) fn split_product_vals(&self, vals: &Vals) -> (Vals, Vals) {
        let mut tmpl = Vals::new();
        let mut own = Vals::new();
        for (k, v) in vals {
            let inherited = self
                .field("product.product", k)
                .is_some_and(|f| f.inherited);
            if inherited {
                tmpl.insert(k.clone(), v.clone());
            } else {
                own.insert(k.clone(), v.clone());
            }
        }
        if let Some(active) = vals.get("active") {
            tmpl.insert("active".into(), active.clone());
        }
        (tmpl, own)
    }

    pub(crate) fn create_template(&mut self, vals: &Vals) -> Result<i64, Fail> {
        self.check_vals_fields("product.template", vals)?;
        let mut tmpl_vals = vals.clone();
        let mut variant_vals = Vals::new();
        for key in ["default_code", "barcode"] {
            if let Some(v) = tmpl_vals.remove(key) {
                variant_vals.insert(key.into(), v);
            }
        }
        if let Some(active) = vals.get("active") {
            variant_vals.insert("active".into(), active.clone());
        }
        let tmpl = self.plain_create("product.template", &tmpl_vals)?;
        variant_vals.insert("product_tmpl_id".into(), json!(tmpl));
        let variant = self.plain_create("product.product", &variant_vals)?;
        self.check_barcodes(&[variant], true)?;
        self.check_fail_values("product.product", &[variant])?;
        Ok(tmpl)
    }

    pub(crate) fn create_product(&mut self, vals: &Vals) -> Result<i64, Fail> {
        self.check_vals_fields("product.product", vals)?;
        let (tmpl_vals, mut own_vals) = self.split_product_vals(vals);
        let tmpl = match own_vals.get("product_tmpl_id").and_then(as_id) {
            Some(t) => {
                if !tmpl_vals.is_empty() {
                    self.plain_write("product.template", &[t], &tmpl_vals)?;
                }
                t
            }
            None => self.plain_create("product.template", &tmpl_vals)?,
        };
        own_vals.insert("product_tmpl_id".into(), json!(tmpl));
        let variant = self.plain_create("product.product", &own_vals)?;
        self.check_barcodes(&[variant], false)?;
        self.check_fail_values("product.template", &[tmpl])?;
        Ok(variant)
    }

    /// Odoo's barcode constraint on `product.product`. A product created through its
    /// template shows without its code in the message (transcript 18/31).
    pub(crate) fn check_barcodes(
        &self,
        variants: &[i64],
        new_via_template: bool,
    ) -> Result<(), Fail> {
        for &p in variants {
            let barcode = self.raw("product.product", p, "barcode");
            let Some(code) = barcode.as_str().filter(|s| !s.is_empty()) else {
                continue;
            };
            let same: Vec<i64> = self
                .where_eq("product.product", "barcode", &barcode)
                .into_iter()
                .filter(|&o| truthy(&self.raw("product.product", o, "active")))
                .collect();
            if same.len() > 1 {
                let names: Vec<String> = same
                    .iter()
                    .map(|&o| {
                        if new_via_template && o == p {
                            self.str_of("product.product", o, "name")
                        } else {
                            self.display_name("product.product", o)
                        }
                    })
                    .collect();
                return Err(Fail::validation(format!(
                    "Barcode(s) already assigned:\n\n- Barcode \"{code}\" already assigned to product(s): {}\n\nNote: products that you don't have access to will not be shown above.",
                    // 17 joins the names with commas (17/35); 18 and 19 say "a and b".
                    if self.v() == 17 {
                        names.join(", ")
                    } else {
                        format_list(&names)
                    }
                )));
            }
        }
        Ok(())
    }
}
