//! Fields and models as the ORM describes them: field types with their Odoo names and empty
//! values, a field's flags (required, readonly, stored, relation, selection, default) and a
//! model's description and default order.

use std::collections::BTreeMap;

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Char,
    Text,
    Html,
    Integer,
    Float,
    Boolean,
    Selection,
    Date,
    Datetime,
    Many2one,
    One2many,
    Many2many,
}

impl Ty {
    pub(crate) fn odoo_name(self) -> &'static str {
        match self {
            Ty::Char => "char",
            Ty::Text => "text",
            Ty::Html => "html",
            Ty::Integer => "integer",
            Ty::Float => "float",
            Ty::Boolean => "boolean",
            Ty::Selection => "selection",
            Ty::Date => "date",
            Ty::Datetime => "datetime",
            Ty::Many2one => "many2one",
            Ty::One2many => "one2many",
            Ty::Many2many => "many2many",
        }
    }

    pub(crate) fn from_odoo(name: &str) -> Option<Ty> {
        Some(match name {
            "char" => Ty::Char,
            "text" => Ty::Text,
            "html" => Ty::Html,
            "integer" => Ty::Integer,
            "float" | "monetary" => Ty::Float,
            "boolean" => Ty::Boolean,
            "selection" => Ty::Selection,
            "date" => Ty::Date,
            "datetime" => Ty::Datetime,
            "many2one" => Ty::Many2one,
            "one2many" => Ty::One2many,
            "many2many" => Ty::Many2many,
            _ => return None,
        })
    }

    /// The value an unset field reads as.
    pub(crate) fn empty(self) -> Value {
        match self {
            Ty::Boolean => json!(false),
            Ty::Integer => json!(0),
            Ty::Float => json!(0.0),
            Ty::One2many | Ty::Many2many => json!([]),
            _ => json!(false),
        }
    }

    pub(crate) fn x2many(self) -> bool {
        matches!(self, Ty::One2many | Ty::Many2many)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) ty: Ty,
    pub(crate) string: String,
    pub(crate) required: bool,
    pub(crate) readonly: bool,
    pub(crate) store: bool,
    pub(crate) relation: Option<String>,
    /// One2many: the many2one on `relation` pointing back.
    pub(crate) inverse: Option<String>,
    pub(crate) selection: Vec<(String, String)>,
    pub(crate) default: Option<Value>,
    /// A `product.product` field that lives on its template.
    pub(crate) inherited: bool,
    pub(crate) custom: bool,
}

/// The decimal places Odoo rounds a float field to when it stores it (`fields_get`'s
/// `digits`): prices have none on Odoo 19 (`digits: false`, stored exactly: 19/87, 19/98) and
/// 2 on 17 and 18 (2.675 → 2.68: 18/80, 18/91); other floats (quantities, weight) 2 on all.
pub(crate) fn float_digits(version: u32, field: &str) -> Option<u32> {
    match field {
        "list_price" | "standard_price" | "lst_price" if version >= 19 => None,
        _ => Some(2),
    }
}

pub(crate) fn fd(name: &str, ty: Ty, string: &str) -> Field {
    Field {
        name: name.into(),
        ty,
        string: string.into(),
        required: false,
        readonly: false,
        store: !ty.x2many() || ty == Ty::Many2many,
        relation: None,
        inverse: None,
        selection: Vec::new(),
        default: None,
        inherited: false,
        custom: false,
    }
}

impl Field {
    pub(crate) fn req(mut self) -> Self {
        self.required = true;
        self
    }
    pub(crate) fn ro(mut self) -> Self {
        self.readonly = true;
        self
    }
    /// Computed, not stored.
    pub(crate) fn computed(mut self) -> Self {
        self.store = false;
        self.readonly = true;
        self
    }
    /// Not stored but writable (computed with an inverse, or related).
    pub(crate) fn unstored(mut self) -> Self {
        self.store = false;
        self
    }
    pub(crate) fn rel(mut self, model: &str) -> Self {
        self.relation = Some(model.into());
        self
    }
    pub(crate) fn inv(mut self, field: &str) -> Self {
        self.inverse = Some(field.into());
        self.store = false;
        self
    }
    pub(crate) fn sel(mut self, options: &[(&str, &str)]) -> Self {
        self.selection = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }
    pub(crate) fn def(mut self, v: Value) -> Self {
        self.default = Some(v);
        self
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ModelDef {
    pub(crate) name: String,
    /// `_description`, used in messages ("Model: Product (product.template)").
    pub(crate) description: String,
    /// `_order`.
    pub(crate) order: String,
    pub(crate) fields: BTreeMap<String, Field>,
}
