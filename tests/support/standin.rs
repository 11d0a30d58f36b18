//! The Odoo stand-in: a real HTTP server on loopback speaking JSON-RPC and JSON-2 as the transcripts show.
