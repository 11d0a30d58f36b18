//! The models: the fields edi-bridge reads and writes, with Odoo's labels, types and flags, as
//! Odoo 18 or 19 (with or without `stock_delivery`) defines them.

use std::collections::BTreeMap;

use serde_json::json;

use super::super::orm::fields::{Field, ModelDef, Ty, fd};

pub(crate) fn schema(v: u32, delivery: bool) -> BTreeMap<String, ModelDef> {
    use Ty::*;
    let mut models: BTreeMap<String, ModelDef> = BTreeMap::new();
    let mut add = |name: &str, description: &str, order: &str, fields: Vec<Field>| {
        let mut map = BTreeMap::new();
        for f in [
            fd("id", Integer, "ID").computed(),
            fd("display_name", Char, "Display Name").computed(),
            fd("create_date", Datetime, "Created on").ro(),
            fd("write_date", Datetime, "Last Updated on").ro(),
            fd("create_uid", Many2one, "Created by")
                .rel("res.users")
                .ro(),
            fd("write_uid", Many2one, "Last Updated by")
                .rel("res.users")
                .ro(),
        ] {
            map.insert(f.name.clone(), f);
        }
        for f in fields {
            map.insert(f.name.clone(), f);
        }
        models.insert(
            name.into(),
            ModelDef {
                name: name.into(),
                description: description.into(),
                order: order.into(),
                fields: map,
            },
        );
    };
    let unit_label = if v >= 19 { "Unit" } else { "Unit of Measure" };

    add(
        "res.company",
        "Companies",
        "name",
        vec![
            fd("name", Char, "Company Name").req(),
            fd("partner_id", Many2one, "Partner").rel("res.partner"),
        ],
    );
    add(
        "res.users",
        "User",
        "name, login",
        vec![
            fd("login", Char, "Login").req(),
            fd("name", Char, "Name").req(),
            fd("company_id", Many2one, "Company")
                .rel("res.company")
                .req(),
            fd("partner_id", Many2one, "Related Partner").rel("res.partner"),
            fd("lang", Char, "Language"),
            fd("tz", Char, "Timezone"),
            fd("active", Boolean, "Active").def(json!(true)),
        ],
    );
    add(
        "res.country",
        "Country",
        "name",
        vec![
            fd("name", Char, "Country Name").req(),
            fd("code", Char, "Country Code"),
        ],
    );
    add(
        "res.country.state",
        "Country state",
        "country_id, name",
        vec![
            fd("name", Char, "State Name").req(),
            fd("code", Char, "State Code").req(),
            fd("country_id", Many2one, "Country")
                .rel("res.country")
                .req(),
        ],
    );
    add(
        "res.partner",
        "Contact",
        "name, id",
        vec![
            fd("name", Char, "Name"),
            fd("type", Selection, "Address Type")
                .sel(&[
                    ("contact", "Contact"),
                    ("invoice", "Invoice Address"),
                    ("delivery", "Delivery Address"),
                    ("other", "Other Address"),
                ])
                .def(json!("contact")),
            fd("parent_id", Many2one, "Related Company").rel("res.partner"),
            fd("child_ids", One2many, "Contact")
                .rel("res.partner")
                .inv("parent_id"),
            fd("street", Char, "Street"),
            fd("street2", Char, "Street2"),
            fd("zip", Char, "Zip"),
            fd("city", Char, "City"),
            fd("state_id", Many2one, "State").rel("res.country.state"),
            fd("country_id", Many2one, "Country").rel("res.country"),
            fd("country_code", Char, "Country Code").computed(),
            fd("email", Char, "Email"),
            fd("phone", Char, "Phone"),
            fd("vat", Char, "Tax ID"),
            fd("ref", Char, "Reference"),
            fd("is_company", Boolean, "Is a Company"),
            fd("company_id", Many2one, "Company").rel("res.company"),
            fd("lang", Char, "Language"),
            fd("active", Boolean, "Active").def(json!(true)),
        ],
    );
    add(
        "uom.uom",
        unit_label,
        "id",
        vec![
            fd("name", Char, unit_label).req(),
            fd("rounding", Float, "Rounding Precision").def(json!(0.01)),
            fd("factor", Float, "Ratio").def(json!(1.0)),
            fd("active", Boolean, "Active").def(json!(true)),
        ],
    );
    add(
        "product.category",
        "Product Category",
        "complete_name, id",
        vec![
            fd("name", Char, "Name").req(),
            fd("complete_name", Char, "Complete Name"),
            fd("parent_id", Many2one, "Parent Category").rel("product.category"),
        ],
    );

    // Storable products: `type = 'consu'` + `is_storable` from 18 on; on 17 `detailed_type`
    // (required) and `type` both say 'product' and follow each other (transcripts 17/11, 17/18).
    let kinds: &[(&str, &str)] = if v < 18 {
        &[
            ("consu", "Consumable"),
            ("service", "Service"),
            ("product", "Storable Product"),
        ]
    } else {
        &[
            ("consu", "Goods"),
            ("service", "Service"),
            ("combo", "Combo"),
        ]
    };
    let mut product_type = fd("type", Selection, "Product Type")
        .sel(kinds)
        .def(json!("consu"));
    if v >= 18 {
        product_type = product_type.req();
    }
    let mut template = vec![fd("name", Char, "Name").req(), product_type];
    if v < 18 {
        template.push(
            fd("detailed_type", Selection, "Product Type")
                .req()
                .sel(kinds)
                .def(json!("consu")),
        );
    } else {
        template.push(fd("is_storable", Boolean, "Track Inventory"));
    }
    template.extend([
        fd("list_price", Float, "Sales Price").def(json!(1.0)),
        fd("standard_price", Float, "Cost"),
        fd("uom_id", Many2one, unit_label)
            .rel("uom.uom")
            .req()
            .def(json!(1)),
        fd("categ_id", Many2one, "Product Category")
            .rel("product.category")
            .def(json!(1)),
        fd("weight", Float, "Weight"),
        fd("volume", Float, "Volume"),
        fd("description", Html, "Description"),
        fd("description_sale", Text, "Sales Description"),
        fd("description_purchase", Text, "Purchase Description"),
        fd("sale_ok", Boolean, "Sales").def(json!(true)),
        fd("sequence", Integer, "Sequence").def(json!(1)),
        fd("purchase_ok", Boolean, "Purchase").def(json!(true)),
        fd("tracking", Selection, "Tracking")
            .req()
            .sel(&[
                ("serial", "By Unique Serial Number"),
                ("lot", "By Lots"),
                ("none", "By Quantity"),
            ])
            .def(json!("none")),
        fd("company_id", Many2one, "Company").rel("res.company"),
        fd("active", Boolean, "Active").def(json!(true)),
    ]);
    if v < 19 {
        template.push(
            fd("uom_po_id", Many2one, "Purchase Unit")
                .rel("uom.uom")
                .def(json!(1)),
        );
    }
    let mut template_full = template.clone();
    template_full.extend([
        fd("default_code", Char, "Internal Reference").unstored(),
        fd("barcode", Char, "Barcode").unstored(),
        fd("product_variant_id", Many2one, "Product")
            .rel("product.product")
            .computed(),
        fd("product_variant_ids", One2many, "Products")
            .rel("product.product")
            .inv("product_tmpl_id"),
        fd("qty_available", Float, "Quantity On Hand").unstored(),
        fd("virtual_available", Float, "Forecasted Quantity").computed(),
    ]);
    add("product.template", "Product", "name, id", template_full);
    let mut product = vec![
        fd("product_tmpl_id", Many2one, "Product Template")
            .rel("product.template")
            .req(),
        fd("default_code", Char, "Internal Reference"),
        fd("barcode", Char, "Barcode"),
        fd("active", Boolean, "Active").def(json!(true)),
        fd("qty_available", Float, "Quantity On Hand").unstored(),
        fd("virtual_available", Float, "Forecasted Quantity").computed(),
    ];
    for f in template {
        if f.name != "active" {
            let mut f = f;
            f.inherited = true;
            f.store = false;
            product.push(f);
        }
    }
    add(
        "product.product",
        "Product Variant",
        "default_code, name, id",
        product,
    );

    add(
        "stock.location",
        "Inventory Locations",
        "complete_name, id",
        vec![
            fd("name", Char, "Location Name").req(),
            fd("complete_name", Char, "Full Location Name"),
            fd("usage", Selection, "Location Type")
                .req()
                .sel(&[
                    ("supplier", "Vendor"),
                    ("view", "Virtual"),
                    ("internal", "Internal"),
                    ("customer", "Customer"),
                    ("inventory", "Inventory Loss"),
                    ("production", "Production"),
                    ("transit", "Transit"),
                ])
                .def(json!("internal")),
            fd("location_id", Many2one, "Parent Location").rel("stock.location"),
            fd("barcode", Char, "Barcode"),
            fd("company_id", Many2one, "Company").rel("res.company"),
            fd("active", Boolean, "Active").def(json!(true)),
        ],
    );
    add(
        "stock.warehouse",
        "Warehouse",
        "id",
        vec![
            fd("name", Char, "Warehouse").req(),
            fd("code", Char, "Short Name").req(),
            fd("lot_stock_id", Many2one, "Location Stock").rel("stock.location"),
            fd("view_location_id", Many2one, "View Location").rel("stock.location"),
            fd("company_id", Many2one, "Company").rel("res.company"),
            fd("active", Boolean, "Active").def(json!(true)),
        ],
    );
    add(
        "stock.lot",
        "Lot/Serial",
        "name, id",
        vec![
            fd("name", Char, "Lot/Serial Number").req(),
            fd("product_id", Many2one, "Product")
                .rel("product.product")
                .req(),
            fd("ref", Char, "Internal Reference"),
            fd("company_id", Many2one, "Company").rel("res.company"),
            fd("product_qty", Float, "On Hand Quantity").computed(),
        ],
    );
    add(
        "stock.quant.package",
        "Packages",
        "name, id",
        vec![fd("name", Char, "Package Reference").req()],
    );
    add(
        "stock.quant",
        "Quants",
        "id",
        vec![
            fd("product_id", Many2one, "Product")
                .rel("product.product")
                .req(),
            fd("location_id", Many2one, "Location")
                .rel("stock.location")
                .req(),
            fd("lot_id", Many2one, "Lot/Serial Number").rel("stock.lot"),
            fd("package_id", Many2one, "Package").rel("stock.quant.package"),
            fd("owner_id", Many2one, "Owner").rel("res.partner"),
            fd("quantity", Float, "Quantity").ro(),
            fd("reserved_quantity", Float, "Reserved Quantity").ro(),
            fd("inventory_quantity", Float, "Counted Quantity"),
            fd("inventory_diff_quantity", Float, "Difference").computed(),
            fd("inventory_quantity_set", Boolean, "Inventory Quantity Set"),
            fd(
                "inventory_quantity_auto_apply",
                Float,
                "Inventoried Quantity",
            )
            .unstored(),
            fd("inventory_date", Date, "Scheduled Date"),
            fd("user_id", Many2one, "Assigned To").rel("res.users"),
            fd("company_id", Many2one, "Company").rel("res.company"),
            fd("product_uom_id", Many2one, "Unit")
                .rel("uom.uom")
                .computed(),
        ],
    );
    add(
        "stock.picking.type",
        "Picking Type",
        "id",
        vec![
            fd("name", Char, "Operation Type").req(),
            fd("code", Selection, "Type of Operation").req().sel(&[
                ("incoming", "Receipt"),
                ("outgoing", "Delivery"),
                ("internal", "Internal Transfer"),
            ]),
            fd("sequence_code", Char, "Sequence Prefix"),
            fd("warehouse_id", Many2one, "Warehouse").rel("stock.warehouse"),
            fd(
                "default_location_src_id",
                Many2one,
                "Default Source Location",
            )
            .rel("stock.location"),
            fd(
                "default_location_dest_id",
                Many2one,
                "Default Destination Location",
            )
            .rel("stock.location"),
            fd("create_backorder", Selection, "Create Backorder")
                .sel(&[("ask", "Ask"), ("always", "Always"), ("never", "Never")])
                .def(json!("ask")),
            fd("active", Boolean, "Active").def(json!(true)),
        ],
    );
    let mut picking = vec![
        fd("name", Char, "Reference").ro(),
        fd("origin", Char, "Source Document"),
        fd("note", Html, "Notes"),
        fd("backorder_id", Many2one, "Back Order of")
            .rel("stock.picking")
            .ro(),
        fd("backorder_ids", One2many, "Back Orders")
            .rel("stock.picking")
            .inv("backorder_id"),
        fd("move_type", Selection, "Shipping Policy")
            .req()
            .sel(&[
                ("direct", "As soon as possible"),
                ("one", "When all products are ready"),
            ])
            .def(json!("direct")),
        fd("state", Selection, "Status")
            .ro()
            .sel(&[
                ("draft", "Draft"),
                ("waiting", "Waiting Another Operation"),
                ("confirmed", "Waiting"),
                ("assigned", "Ready"),
                ("done", "Done"),
                ("cancel", "Cancelled"),
            ])
            .def(json!("draft")),
        fd("priority", Selection, "Priority")
            .sel(&[("0", "Normal"), ("1", "Urgent")])
            .def(json!("0")),
        fd("scheduled_date", Datetime, "Scheduled Date"),
        fd("date_deadline", Datetime, "Deadline").ro(),
        fd("date", Datetime, "Creation Date"),
        fd("date_done", Datetime, "Date of Transfer").ro(),
        fd("location_id", Many2one, "Source Location")
            .rel("stock.location")
            .req(),
        fd("location_dest_id", Many2one, "Destination Location")
            .rel("stock.location")
            .req(),
        fd("move_ids", One2many, "Stock Moves")
            .rel("stock.move")
            .inv("picking_id"),
        fd("move_ids_without_package", One2many, "Stock move")
            .rel("stock.move")
            .inv("picking_id"),
        fd("picking_type_id", Many2one, "Operation Type")
            .rel("stock.picking.type")
            .req(),
        fd("picking_type_code", Selection, "Type of Operation")
            .sel(&[
                ("incoming", "Receipt"),
                ("outgoing", "Delivery"),
                ("internal", "Internal Transfer"),
            ])
            .computed(),
        fd("partner_id", Many2one, "Contact").rel("res.partner"),
        fd("company_id", Many2one, "Company")
            .rel("res.company")
            .ro(),
        fd("user_id", Many2one, "Responsible").rel("res.users"),
        fd("move_line_ids", One2many, "Operations")
            .rel("stock.move.line")
            .inv("picking_id"),
        fd("owner_id", Many2one, "Assign Owner").rel("res.partner"),
        fd("printed", Boolean, "Printed"),
        fd("is_locked", Boolean, "Is Locked").def(json!(true)),
        fd("shipping_weight", Float, "Weight for Shipping"),
    ];
    if delivery {
        picking.push(fd("carrier_id", Many2one, "Carrier").rel("delivery.carrier"));
        picking.push(fd("carrier_tracking_ref", Char, "Tracking Reference"));
    }
    add(
        "stock.picking",
        "Transfer",
        "priority desc, scheduled_date asc, id desc",
        picking,
    );
    if delivery {
        add(
            "delivery.carrier",
            "Shipping Methods",
            "name, id",
            vec![
                fd("name", Char, "Delivery Method").req(),
                fd("delivery_type", Selection, "Provider")
                    .sel(&[("fixed", "Fixed Price"), ("base_on_rule", "Based on Rules")])
                    .def(json!("fixed")),
                fd("active", Boolean, "Active").def(json!(true)),
            ],
        );
    }
    add(
        "stock.move",
        "Stock Move",
        "id",
        vec![
            fd("name", Char, "Description"),
            fd("picking_id", Many2one, "Transfer").rel("stock.picking"),
            fd("product_id", Many2one, "Product")
                .rel("product.product")
                .req(),
            fd("product_uom_qty", Float, "Demand").req(),
            fd("product_qty", Float, "Real Quantity").unstored(),
            fd("quantity", Float, "Quantity"),
            fd("product_uom", Many2one, "Unit")
                .rel("uom.uom")
                .req()
                .def(json!(1)),
            fd("picked", Boolean, "Picked"),
            fd("state", Selection, "Status")
                .ro()
                .sel(&[
                    ("draft", "New"),
                    ("waiting", "Waiting Another Move"),
                    ("confirmed", "Waiting Availability"),
                    ("partially_available", "Partially Available"),
                    ("assigned", "Available"),
                    ("done", "Done"),
                    ("cancel", "Cancelled"),
                ])
                .def(json!("draft")),
            fd("location_id", Many2one, "Source Location")
                .rel("stock.location")
                .req(),
            fd("location_dest_id", Many2one, "Destination Location")
                .rel("stock.location")
                .req(),
            fd("move_line_ids", One2many, "Move Lines")
                .rel("stock.move.line")
                .inv("move_id"),
            fd("is_inventory", Boolean, "Inventory"),
            fd("date", Datetime, "Date Scheduled"),
            fd("origin", Char, "Source Document"),
            fd("partner_id", Many2one, "Destination Address").rel("res.partner"),
            fd("picking_type_id", Many2one, "Operation Type").rel("stock.picking.type"),
            fd("company_id", Many2one, "Company").rel("res.company"),
        ],
    );
    add(
        "stock.move.line",
        "Product Moves (Stock Move Line)",
        "id",
        vec![
            fd("move_id", Many2one, "Stock Operation").rel("stock.move"),
            fd("picking_id", Many2one, "Transfer").rel("stock.picking"),
            fd("product_id", Many2one, "Product").rel("product.product"),
            fd("quantity", Float, "Quantity"),
            fd("lot_id", Many2one, "Lot/Serial Number").rel("stock.lot"),
            fd("lot_name", Char, "Lot/Serial Number Name"),
            fd("location_id", Many2one, "From").rel("stock.location"),
            fd("location_dest_id", Many2one, "To").rel("stock.location"),
            fd("picked", Boolean, "Picked"),
        ],
    );
    add(
        "stock.backorder.confirmation",
        "Backorder Confirmation",
        "id",
        vec![
            fd("pick_ids", Many2many, "Pick").rel("stock.picking"),
            fd("show_transfers", Boolean, "Show Transfers"),
        ],
    );
    add(
        "confirm.stock.sms",
        "Confirm Stock SMS",
        "id",
        vec![fd("pick_ids", Many2many, "Pick").rel("stock.picking")],
    );
    add(
        "mail.message.subtype",
        "Message subtypes",
        "id",
        vec![fd("name", Char, "Message Type").req()],
    );
    add(
        "mail.message",
        "Message",
        "id desc",
        vec![
            fd("model", Char, "Related Document Model"),
            fd("res_id", Integer, "Related Document ID"),
            fd("body", Html, "Contents"),
            fd("subject", Char, "Subject"),
            fd("message_type", Selection, "Type")
                .sel(&[
                    ("email", "Email"),
                    ("comment", "Comment"),
                    ("email_outgoing", "Outgoing Email"),
                    ("notification", "System notification"),
                    ("auto_comment", "Automated Targeted Notification"),
                    ("user_notification", "User Specific Notification"),
                ])
                .def(json!("notification")),
            fd("subtype_id", Many2one, "Subtype").rel("mail.message.subtype"),
            fd("author_id", Many2one, "Author").rel("res.partner"),
        ],
    );
    add(
        "ir.model",
        "Models",
        "model",
        vec![
            fd("model", Char, "Model").req(),
            fd("name", Char, "Model Description").req(),
            fd("state", Selection, "Type")
                .sel(&[("manual", "Custom Object"), ("base", "Base Object")])
                .def(json!("manual")),
            fd("transient", Boolean, "Transient Model"),
        ],
    );
    let ttypes: Vec<(&str, &str)> = [
        "binary",
        "boolean",
        "char",
        "date",
        "datetime",
        "float",
        "html",
        "integer",
        "json",
        "many2many",
        "many2one",
        "many2one_reference",
        "monetary",
        "one2many",
        "properties",
        "properties_definition",
        "reference",
        "selection",
        "text",
    ]
    .iter()
    .map(|t| (*t, *t))
    .collect();
    add(
        "ir.model.fields",
        "Fields",
        "name",
        vec![
            fd("name", Char, "Field Name").req(),
            fd("model", Char, "Model Name").req(),
            fd("model_id", Many2one, "Model").rel("ir.model").req(),
            fd("field_description", Char, "Field Label").req(),
            fd("ttype", Selection, "Field Type").req().sel(&ttypes),
            fd("state", Selection, "Type")
                .sel(&[("manual", "Custom Field"), ("base", "Base Field")])
                .def(json!("manual")),
            fd("relation", Char, "Related Model"),
            fd("relation_field", Char, "Related Field"),
            fd("required", Boolean, "Required"),
            fd("readonly", Boolean, "Readonly"),
            fd("store", Boolean, "Stored").def(json!(true)),
            fd("copied", Boolean, "Copied"),
            fd("index", Boolean, "Indexed"),
        ],
    );
    add(
        "ir.model.fields.selection",
        "Fields Selection",
        "sequence, id",
        vec![
            fd("field_id", Many2one, "Field")
                .rel("ir.model.fields")
                .req(),
            fd("value", Char, "Value").req(),
            fd("name", Char, "Name").req(),
        ],
    );
    // The webhook automation edi-bridge documents (18/177, 19/181, 17/119).
    add(
        "ir.actions.server",
        "Server Actions",
        "sequence,name,id",
        vec![
            fd("name", Char, "Action Name").req(),
            fd("model_id", Many2one, "Model").rel("ir.model").req(),
            fd("state", Selection, "Type")
                .req()
                .sel(&[
                    ("object_write", "Update Record"),
                    ("object_create", "Create Record"),
                    ("code", "Execute Code"),
                    ("webhook", "Send Webhook Notification"),
                    ("multi", "Execute Existing Actions"),
                ])
                .def(json!("object_write")),
            fd("webhook_url", Char, "Webhook URL"),
            fd("webhook_field_ids", Many2many, "Webhook Fields").rel("ir.model.fields"),
            fd("base_automation_id", Many2one, "Automation Rule").rel("base.automation"),
        ],
    );
    add(
        "base.automation",
        "Automation Rule",
        "id",
        vec![
            fd("name", Char, "Automation Rule Name").req(),
            fd("model_id", Many2one, "Model").rel("ir.model").req(),
            fd("trigger", Selection, "Trigger").req().sel(&[
                ("on_create_or_write", "On save"),
                ("on_state_set", "State is set to"),
                ("on_change", "On UI change"),
                ("on_unlink", "On deletion"),
                ("on_time", "Based on date field"),
                ("on_webhook", "On webhook"),
            ]),
            fd("trg_selection_field_id", Many2one, "Trigger Field")
                .rel("ir.model.fields.selection"),
            fd("filter_domain", Char, "Apply on"),
            fd("filter_pre_domain", Char, "Before Update Domain"),
            fd("trigger_field_ids", Many2many, "Trigger Fields").rel("ir.model.fields"),
            fd("action_server_ids", One2many, "Actions")
                .rel("ir.actions.server")
                .inv("base_automation_id"),
            fd("active", Boolean, "Active").def(json!(true)),
        ],
    );
    add(
        "ir.model.data",
        "Model Data",
        "module, name, id",
        vec![
            fd("name", Char, "External Identifier").req(),
            fd("module", Char, "Module").req(),
            fd("complete_name", Char, "Complete ID").computed(),
            fd("model", Char, "Model Name").req(),
            fd("res_id", Integer, "Record ID"),
            fd("noupdate", Boolean, "Non Updatable"),
        ],
    );
    models
}
