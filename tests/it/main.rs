//! The integration suite: real HTTP against a real server on SQLite, or on PostgreSQL when
//! `KILN_TEST_DATABASE_URL` is set.

mod helpers;
mod import;
mod intake;
mod intake_checkout;
mod intake_shopify;

/// Photos as phones and attackers make them, shared with the library's unit tests.
#[path = "../../src/media/tests/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

mod approval;
mod audit;
mod browser;
mod chromium;
mod cli;
mod contract;
mod errors;
mod holds;
mod moves;
mod nodes;
mod notifications;
mod ops;
mod ops_browser;
mod order_search;
mod orders;
mod outbox;
mod peers;
mod photos;
mod tracking;
mod tracking_links;
mod writes;
