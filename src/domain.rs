//! Domain rules: workflows, orders, moves and their audit. No I/O and no async here;
//! everything that decides "may this happen?" lives in this module and is unit-tested.

pub mod access;
pub mod approval;
pub mod change;
pub mod eta;
pub mod history;
pub mod model;
pub mod order;
pub mod transition;
pub mod workflow;
