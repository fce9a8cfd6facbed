//! kiln — a "Domino's-style" production tracker for made-to-order workshops.
//!
//! Orders move through a shop's own stages ([`domain::workflow`]); every change goes through
//! one transactional path ([`service::Service::change`]) that updates the order, appends an
//! audit event and enqueues the notifications it causes; customers follow along on a private
//! tracking page.

pub mod app;
pub mod cache;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod domain;
pub mod i18n;
pub mod intake;
pub mod live;
pub mod media;
pub mod notify;
pub mod service;
pub mod standard_webhooks;
pub mod store;
pub mod view;
pub mod web;
