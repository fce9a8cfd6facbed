//! `sqlx::migrate!` embeds the migrations when kiln is compiled, and cargo does not see a new
//! file under `migrations/` by itself: without this, adding a migration and nothing else
//! leaves a build that never runs it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
