//! Odoo client
