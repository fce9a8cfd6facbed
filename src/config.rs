//! One typed configuration: embedded defaults, then an optional `kiln.toml`, then `KILN_*`
//! environment variables.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "kiln.toml";

/// Everything kiln needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Database URL: `sqlite://path/to/file.db` or `postgres://user@host/db`.
    /// Unset means a SQLite file `kiln.db` in `data_dir`.
    pub database_url: Option<SecretString>,
    /// Most connections kiln opens to PostgreSQL (and reader connections to SQLite).
    pub database_max_connections: u32,
    /// Address the HTTP server listens on.
    pub bind: SocketAddr,
    /// Public URL of this instance, used in tracking links and messages.
    pub base_url: Url,
    /// Folder for the SQLite database, the secret key file and photos.
    pub data_dir: PathBuf,
    /// Folder of workflow `*.toml` files; unset means the four built-in presets.
    pub workflows_dir: Option<PathBuf>,
    /// Base64url 32-byte key that seals tracking tokens; unset means a key file in `data_dir`
    /// (set it explicitly when several nodes share one database).
    pub secret_key: Option<SecretString>,
    /// Prefix of generated order references (`K` gives `K-000123`).
    pub reference_prefix: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Log filter in `tracing` syntax, e.g. `info` or `kiln=debug,info`.
    pub log: String,
    /// How the shop presents itself to customers.
    pub shop: ShopConfig,
    /// The customers' tracking pages.
    pub tracking: TrackingConfig,
    /// Where photos are kept and how big they may be.
    pub media: crate::media::StorageConfig,
    /// Messages to customers and staff, and the outbox worker.
    pub notify: crate::notify::config::NotifyConfig,
    /// Orders arriving by themselves from Stripe (and, later, other systems).
    pub intake: crate::intake::config::IntakeConfig,
    /// Staff sign-in: session lifetimes and login rate limits.
    pub staff: StaffConfig,
}

/// How the shop presents itself on tracking pages and in messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShopConfig {
    /// The shop's name.
    pub name: String,
    /// A logo file (PNG, JPEG, WebP or SVG), served by kiln so pages make no third-party request.
    pub logo: Option<PathBuf>,
    /// Brand colour, `#rrggbb` (text on it is black or white, whichever reads better).
    pub color: String,
    /// Accent colour, `#rrggbb`, for the current stage on the route map.
    pub accent: String,
    /// IANA time zone for customers who have none.
    pub timezone: String,
    /// Language for customers whose language kiln does not speak.
    pub language: String,
    /// Contact email shown to customers.
    pub email: Option<String>,
    /// Contact phone shown to customers.
    pub phone: Option<String>,
    /// The shop's website.
    pub website: Option<String>,
    /// WhatsApp number (E.164) customers may write to, linked from the tracking page.
    pub whatsapp: Option<String>,
    /// Where customers collect finished orders, shown once an order is completed.
    pub pickup_address: Option<String>,
    /// When they can, e.g. "Mon-Fri 9:00-18:00".
    pub pickup_hours: Option<String>,
}

impl Default for ShopConfig {
    fn default() -> Self {
        Self {
            name: "Kiln Workshop".to_owned(),
            logo: None,
            color: "#7a3b1d".to_owned(),
            accent: "#e07a2f".to_owned(),
            timezone: "UTC".to_owned(),
            language: "en".to_owned(),
            email: None,
            phone: None,
            website: None,
            whatsapp: None,
            pickup_address: None,
            pickup_hours: None,
        }
    }
}

/// The customers' tracking pages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingConfig {
    /// Tracking-page requests allowed per client address per minute (bursts of a third of it).
    pub rate_limit_per_minute: u32,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy you trust).
    pub trust_forwarded_for: bool,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        Self { rate_limit_per_minute: 120, trust_forwarded_for: false }
    }
}

/// Staff sign-in on the dashboard.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaffConfig {
    /// Signed out after this long without a request (e.g. "8h").
    #[serde(deserialize_with = "duration")]
    pub session_idle: std::time::Duration,
    /// Signed out this long after signing in, however active (e.g. "7d").
    #[serde(deserialize_with = "duration")]
    pub session_absolute: std::time::Duration,
    /// Sign-in attempts allowed per account per 15 minutes (bursts of all of them).
    pub login_attempts_per_account: u32,
    /// Sign-in attempts allowed per client address per 15 minutes.
    pub login_attempts_per_address: u32,
}

impl Default for StaffConfig {
    fn default() -> Self {
        Self {
            session_idle: std::time::Duration::from_secs(8 * 3600),
            session_absolute: std::time::Duration::from_secs(7 * 24 * 3600),
            login_attempts_per_account: 10,
            login_attempts_per_address: 30,
        }
    }
}

impl StaffConfig {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.session_idle < std::time::Duration::from_secs(1) {
            return Err(("staff.session_idle", "must be at least 1s".to_owned()));
        }
        if self.session_absolute < self.session_idle {
            return Err(("staff.session_absolute", "must not be shorter than staff.session_idle".to_owned()));
        }
        if self.login_attempts_per_account == 0 {
            return Err(("staff.login_attempts_per_account", "must be at least 1".to_owned()));
        }
        if self.login_attempts_per_address == 0 {
            return Err(("staff.login_attempts_per_address", "must be at least 1".to_owned()));
        }
        Ok(())
    }
}

fn duration<'de, D: serde::Deserializer<'de>>(de: D) -> Result<std::time::Duration, D::Error> {
    let text = String::deserialize(de)?;
    humantime::parse_duration(&text).map_err(serde::de::Error::custom)
}

/// Whether `raw` is a `#rrggbb` colour.
pub fn is_hex_color(raw: &str) -> bool {
    raw.len() == 7 && raw.starts_with('#') && raw[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: None,
            database_max_connections: 16,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_url: Url::parse("http://localhost:8080/").expect("static URL parses"),
            data_dir: PathBuf::from("kiln-data"),
            workflows_dir: None,
            secret_key: None,
            reference_prefix: "K".to_owned(),
            max_body_bytes: 1024 * 1024,
            log: "info".to_owned(),
            shop: ShopConfig::default(),
            tracking: TrackingConfig::default(),
            media: crate::media::StorageConfig::default(),
            notify: crate::notify::config::NotifyConfig::default(),
            intake: crate::intake::config::IntakeConfig::default(),
            staff: StaffConfig::default(),
        }
    }
}

/// Why the configuration could not be loaded; the message names the file line or variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{path}:{line}:{column}: {message}")]
    File {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// An environment variable is not valid.
    #[error("environment variable {name}: {message}")]
    Env {
        /// The variable.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The combined settings do not make sense.
    #[error("invalid setting `{field}`: {message}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// The environment variables kiln reads, and where each one goes.
const ENV: &[(&str, Setter)] = &[
    ("KILN_DATABASE_URL", |c, v| {
        c.database_url = Some(SecretString::from(v.to_owned()));
        Ok(())
    }),
    ("KILN_DATABASE_MAX_CONNECTIONS", |c, v| {
        c.database_max_connections = v.parse().map_err(|_| format!("`{v}` is not a whole number"))?;
        Ok(())
    }),
    ("KILN_BIND", |c, v| {
        c.bind = v.parse().map_err(|_| format!("`{v}` is not an address such as 127.0.0.1:8080"))?;
        Ok(())
    }),
    ("KILN_BASE_URL", |c, v| {
        c.base_url = Url::parse(v).map_err(|e| format!("`{v}` is not a URL: {e}"))?;
        Ok(())
    }),
    ("KILN_DATA_DIR", |c, v| {
        c.data_dir = PathBuf::from(v);
        Ok(())
    }),
    ("KILN_WORKFLOWS_DIR", |c, v| {
        c.workflows_dir = Some(PathBuf::from(v));
        Ok(())
    }),
    ("KILN_SECRET_KEY", |c, v| {
        c.secret_key = Some(SecretString::from(v.to_owned()));
        Ok(())
    }),
    ("KILN_REFERENCE_PREFIX", |c, v| {
        c.reference_prefix = v.to_owned();
        Ok(())
    }),
    ("KILN_MAX_BODY_BYTES", |c, v| {
        c.max_body_bytes = v.parse().map_err(|_| format!("`{v}` is not a whole number"))?;
        Ok(())
    }),
    ("KILN_LOG", |c, v| {
        c.log = v.to_owned();
        Ok(())
    }),
    ("KILN_SHOP_NAME", |c, v| {
        c.shop.name = v.to_owned();
        Ok(())
    }),
    ("KILN_SHOP_LOGO", |c, v| {
        c.shop.logo = Some(PathBuf::from(v));
        Ok(())
    }),
    ("KILN_SHOP_COLOR", |c, v| {
        c.shop.color = v.to_owned();
        Ok(())
    }),
    ("KILN_SHOP_ACCENT", |c, v| {
        c.shop.accent = v.to_owned();
        Ok(())
    }),
    ("KILN_SHOP_TIMEZONE", |c, v| {
        c.shop.timezone = v.to_owned();
        Ok(())
    }),
    ("KILN_SHOP_LANGUAGE", |c, v| {
        c.shop.language = v.to_owned();
        Ok(())
    }),
    ("KILN_SHOP_EMAIL", |c, v| {
        c.shop.email = Some(v.to_owned());
        Ok(())
    }),
    ("KILN_SHOP_PHONE", |c, v| {
        c.shop.phone = Some(v.to_owned());
        Ok(())
    }),
    ("KILN_SHOP_WEBSITE", |c, v| {
        c.shop.website = Some(v.to_owned());
        Ok(())
    }),
    ("KILN_TRACKING_RATE_LIMIT", |c, v| {
        c.tracking.rate_limit_per_minute = v.parse().map_err(|_| format!("`{v}` is not a whole number"))?;
        Ok(())
    }),
    ("KILN_TRUST_FORWARDED_FOR", |c, v| {
        c.tracking.trust_forwarded_for = v.parse().map_err(|_| format!("`{v}` is not true or false"))?;
        Ok(())
    }),
    ("KILN_MEDIA_BACKEND", |c, v| {
        c.media.backend = match v {
            "disk" => crate::media::Backend::Disk,
            "s3" => crate::media::Backend::S3,
            _ => return Err(format!("`{v}` is not `disk` or `s3`")),
        };
        Ok(())
    }),
    ("KILN_MEDIA_DISK_ROOT", |c, v| {
        c.media.disk_root = Some(PathBuf::from(v));
        Ok(())
    }),
    ("KILN_MEDIA_MAX_BYTES", |c, v| {
        c.media.max_bytes = v.parse().map_err(|_| format!("`{v}` is not a number of bytes"))?;
        Ok(())
    }),
    ("KILN_INTAKE_STRIPE_WEBHOOK_SECRETS", |c, v| {
        let stripe = c.intake.stripe.as_mut().ok_or("set up [intake.stripe] in kiln.toml first")?;
        stripe.webhook_secrets = v.split(',').map(|s| SecretString::from(s.trim().to_owned())).collect();
        Ok(())
    }),
    ("KILN_INTAKE_STRIPE_API_KEY", |c, v| {
        let stripe = c.intake.stripe.as_mut().ok_or("set up [intake.stripe] in kiln.toml first")?;
        stripe.api_key = Some(SecretString::from(v.to_owned()));
        Ok(())
    }),
    ("KILN_INTAKE_SHOPIFY_WEBHOOK_SECRETS", |c, v| {
        let shopify = c.intake.shopify.as_mut().ok_or("set up [intake.shopify] in kiln.toml first")?;
        shopify.webhook_secrets = v.split(',').map(|s| SecretString::from(s.trim().to_owned())).collect();
        Ok(())
    }),
    ("KILN_INTAKE_SHOPIFY_ACCESS_TOKEN", |c, v| {
        let shopify = c.intake.shopify.as_mut().ok_or("set up [intake.shopify] in kiln.toml first")?;
        shopify.access_token = Some(SecretString::from(v.to_owned()));
        Ok(())
    }),
    ("KILN_MEDIA_MAX_PIXELS", |c, v| {
        c.media.max_pixels = v.parse().map_err(|_| format!("`{v}` is not a number of pixels"))?;
        Ok(())
    }),
];

/// Variables with the `KILN_` prefix that are read elsewhere (the CLI).
const ENV_ELSEWHERE: &[&str] = &["KILN_CONFIG"];

/// The known name `name` is most likely a misspelling of: letters inserted, dropped, swapped
/// or replaced in at most a fifth of the name after `KILN_`, so that `KILN_DATABSE_URL` is
/// caught but a short unrelated name such as `KILN_BIN` is not taken for `KILN_BIND`.
fn closest_name<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let bare = |n: &'a str| n.strip_prefix("KILN_").unwrap_or(n);
    let name = name.strip_prefix("KILN_").unwrap_or(name);
    known
        .map(|k| (edit_distance(name, bare(k)), k))
        .filter(|(d, k)| *d * 5 <= bare(k).len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Optimal string alignment distance (Levenshtein plus adjacent swaps).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Prefixes of variables that belong to the test suite and the benchmarks, not to kiln.
const ENV_ELSEWHERE_PREFIXES: &[&str] = &["KILN_TEST_", "KILN_BENCH_"];

impl Config {
    /// Loads defaults, then `file` (or `kiln.toml` in the working directory if it exists),
    /// then the `KILN_*` variables in `env`.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let default_file = Path::new(DEFAULT_CONFIG_FILE);
        let file = file.or_else(|| default_file.exists().then_some(default_file));
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
                Self::from_toml(&path.display().to_string(), &text)?
            }
            None => Self::default(),
        };
        for warning in config.apply_env(env)? {
            // Logging is configured from this very configuration, so it is not up yet.
            eprintln!("kiln: warning: {warning}");
        }
        config.validate()?;
        Ok(config)
    }

    /// Parses a configuration file's text; errors carry the line and column.
    pub fn from_toml(path: &str, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|err| {
            let offset = err.span().map_or(0, |s| s.start).min(text.len());
            let before = &text[..offset];
            ConfigError::File {
                path: path.to_owned(),
                line: before.matches('\n').count() + 1,
                column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
                message: err.message().trim().to_owned(),
            }
        })
    }

    /// Applies `KILN_*` overrides. A name close to a real setting is refused with the closest
    /// one suggested, so typos surface; any other unknown `KILN_*` name (a wrapper script's
    /// `KILN_BIN`, say) is returned as a warning and otherwise ignored.
    pub fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        for (name, value) in env.iter().filter(|(k, _)| k.starts_with("KILN_")) {
            if ENV_ELSEWHERE.contains(&name.as_str()) || ENV_ELSEWHERE_PREFIXES.iter().any(|p| name.starts_with(p)) {
                continue;
            }
            let Some((_, set)) = ENV.iter().find(|(n, _)| n == name) else {
                let known = ENV.iter().map(|(n, _)| *n).chain(ENV_ELSEWHERE.iter().copied());
                match closest_name(name, known) {
                    Some(suggestion) => {
                        return Err(ConfigError::Env {
                            name: name.clone(),
                            message: format!("unknown setting; did you mean {suggestion}?"),
                        });
                    }
                    None => warnings.push(format!("ignoring {name}: not a kiln setting")),
                }
                continue;
            };
            set(self, value).map_err(|message| ConfigError::Env { name: name.clone(), message })?;
        }
        Ok(warnings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.base_url.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid {
                field: "base_url",
                message: "must start with http:// or https://".to_owned(),
            });
        }
        let prefix_ok = !self.reference_prefix.is_empty()
            && self.reference_prefix.len() <= 8
            && self.reference_prefix.bytes().all(|b| b.is_ascii_alphanumeric());
        if !prefix_ok {
            return Err(ConfigError::Invalid {
                field: "reference_prefix",
                message: "use 1-8 letters or digits".to_owned(),
            });
        }
        for (field, color) in [("shop.color", &self.shop.color), ("shop.accent", &self.shop.accent)] {
            if !is_hex_color(color) {
                return Err(ConfigError::Invalid {
                    field,
                    message: format!("`{color}` is not a colour written #rrggbb"),
                });
            }
        }
        if let Err(message) = crate::domain::order::TimeZone::parse(&self.shop.timezone) {
            return Err(ConfigError::Invalid { field: "shop.timezone", message });
        }
        if let Err(message) = crate::domain::order::Language::parse(&self.shop.language) {
            return Err(ConfigError::Invalid { field: "shop.language", message });
        }
        if let Err((field, message)) = self.notify.validate() {
            return Err(ConfigError::Invalid { field, message });
        }
        // Workflow names are checked once the workflows are loaded (`App::build`).
        if let Err((field, message)) = self.intake.validate(&[]) {
            return Err(ConfigError::Invalid { field, message });
        }
        if let Err((field, message)) = self.staff.validate() {
            return Err(ConfigError::Invalid { field, message });
        }
        if let Err(e) = self.media.validate() {
            return Err(ConfigError::Invalid { field: e.field, message: e.message });
        }
        if self.shop.name.trim().is_empty() {
            return Err(ConfigError::Invalid { field: "shop.name", message: "must not be empty".to_owned() });
        }
        if self.tracking.rate_limit_per_minute == 0 {
            return Err(ConfigError::Invalid {
                field: "tracking.rate_limit_per_minute",
                message: "must be at least 1".to_owned(),
            });
        }
        if self.database_max_connections == 0 {
            return Err(ConfigError::Invalid {
                field: "database_max_connections",
                message: "must be at least 1".to_owned(),
            });
        }
        if let Some(url) = &self.database_url {
            let url = url.expose_secret();
            if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Invalid {
                    field: "database_url",
                    message: "must start with sqlite:, postgres:// or postgresql://".to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The database URL to connect to, defaulting to SQLite in the data folder.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("kiln.db").display()),
        }
    }

    /// A URL under `base_url`, e.g. `url("t/abc")`.
    pub fn public_url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url.as_str().trim_end_matches('/'), path.trim_start_matches('/'))
    }
}

/// The URL with any password replaced, safe to log.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn file_errors_carry_line_and_column() {
        let err = Config::from_toml("kiln.toml", "bind = \"127.0.0.1:9000\"\nbase_url = 42\n").expect_err("bad type");
        let ConfigError::File { line, column, ref message, .. } = err else { panic!("file error: {err}") };
        assert_eq!((line, column), (2, 12));
        assert!(message.contains("invalid type"), "{message}");

        let err = Config::from_toml("kiln.toml", "\n\nshop_nmae = \"x\"\n").expect_err("unknown key");
        assert!(err.to_string().starts_with("kiln.toml:3:1: unknown field `shop_nmae`"), "{err}");

        let config =
            Config::from_toml("kiln.toml", "[shop]\nname = \"Marmi Rossi\"\ncolor = \"#224466\"\n").expect("valid");
        assert_eq!(config.shop.name, "Marmi Rossi");
        assert_eq!(config.shop.accent, ShopConfig::default().accent, "unset fields keep their defaults");
        let err = Config::from_toml("kiln.toml", "[shop]\nname = \"x\"\ncolour = \"#224466\"\n").expect_err("typo");
        assert!(err.to_string().starts_with("kiln.toml:3:1: unknown field `colour`"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file_and_names_bad_variables() {
        let mut config = Config::from_toml("kiln.toml", "bind = \"127.0.0.1:9000\"\n").expect("valid");
        config.apply_env(&env(&[("KILN_BIND", "0.0.0.0:7000"), ("KILN_TEST_DATABASE_URL", "x")])).expect("valid env");
        assert_eq!(config.bind.port(), 7000);

        let err = config.apply_env(&env(&[("KILN_BIND", "nowhere")])).expect_err("bad value");
        assert!(err.to_string().starts_with("environment variable KILN_BIND: `nowhere`"), "{err}");
        let err = config.apply_env(&env(&[("KILN_DATABSE_URL", "x")])).expect_err("typo");
        assert!(err.to_string().contains("did you mean KILN_DATABASE_URL?"), "{err}");
        let err = config.apply_env(&env(&[("KILN_SHOP_COLOUR", "x")])).expect_err("typo");
        assert!(err.to_string().contains("did you mean KILN_SHOP_COLOR?"), "{err}");

        // A wrapper script's own variable is not a typo of anything: warned about, not fatal.
        let warnings = config.apply_env(&env(&[("KILN_BIN", "/usr/bin/kiln"), ("KILN_BIND", "0.0.0.0:7001")]));
        let warnings = warnings.expect("an unrelated KILN_ variable does not stop start-up");
        assert_eq!(warnings, ["ignoring KILN_BIN: not a kiln setting"]);
        assert_eq!(config.bind.port(), 7001, "the real settings beside it still apply");
    }

    #[test]
    fn defaults_use_sqlite_in_the_data_folder_and_passwords_are_redacted() {
        let config = Config::default();
        assert_eq!(config.database_url(), "sqlite://kiln-data/kiln.db");
        assert_eq!(config.public_url("/t/abc"), "http://localhost:8080/t/abc");
        assert_eq!(redact_url("postgres://kiln:hunter2@db/kiln"), "postgres://kiln:***@db/kiln");
    }

    #[test]
    fn settings_are_validated_together() {
        let config = Config { reference_prefix: "K-".to_owned(), ..Config::default() };
        assert!(matches!(config.validate(), Err(ConfigError::Invalid { field: "reference_prefix", .. })));
        let config = Config { database_url: Some(SecretString::from("mysql://x".to_owned())), ..Config::default() };
        assert!(matches!(config.validate(), Err(ConfigError::Invalid { field: "database_url", .. })));
        let mut config = Config::default();
        config.shop.color = "red".to_owned();
        assert!(matches!(config.validate(), Err(ConfigError::Invalid { field: "shop.color", .. })));
        let mut config = Config::default();
        config.shop.timezone = "Europe/Atlantis".to_owned();
        assert!(matches!(config.validate(), Err(ConfigError::Invalid { field: "shop.timezone", .. })));
    }
}
