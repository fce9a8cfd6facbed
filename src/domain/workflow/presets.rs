//! The four built-in workflows, embedded from the repository's `workflows/` folder.

/// `(file name, TOML source)` of each preset.
pub const PRESETS: [(&str, &str); 4] = [
    ("workflows/jewelry.toml", include_str!("../../../workflows/jewelry.toml")),
    ("workflows/jobshop.toml", include_str!("../../../workflows/jobshop.toml")),
    ("workflows/print.toml", include_str!("../../../workflows/print.toml")),
    ("workflows/stone.toml", include_str!("../../../workflows/stone.toml")),
];
