//! The integration suite: real HTTP against a real server on SQLite, or on PostgreSQL when
//! `KILN_TEST_DATABASE_URL` is set.

mod helpers;

mod audit;
mod browser;
mod cli;
mod errors;
mod moves;
mod nodes;
mod orders;
mod tracking;
mod tracking_links;
