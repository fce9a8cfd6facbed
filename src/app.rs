//! Building the application from configuration, separately from running it, so tests can
//! bind port 0 and talk to a real server.

use std::path::Path;

use anyhow::{Context, bail};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, redact_url};
use crate::crypto::Sealer;
use crate::domain::workflow::{self, Workflows};
use crate::service::Service;
use crate::store::Db;

/// A built application: database migrated, workflows loaded, listener bound.
pub struct App {
    listener: TcpListener,
    service: Service,
    state: crate::web::AppState,
    notifier: std::sync::Arc<crate::notify::Notifier>,
    applier: std::sync::Arc<crate::intake::Applier>,
}

/// Loads the configured workflows, or the built-in presets.
pub fn load_workflows(config: &Config) -> anyhow::Result<Workflows> {
    let loaded = match &config.workflows_dir {
        Some(dir) => workflow::load_dir(dir),
        None => workflow::load_presets(),
    };
    loaded.map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("invalid workflows:\n  {}", lines.join("\n  "))
    })
}

/// The key that seals tracking tokens: configured, or kept in `data_dir/secret.key`.
pub fn load_sealer(config: &Config) -> anyhow::Result<Sealer> {
    if let Some(key) = &config.secret_key {
        return Sealer::from_base64(key.expose_secret()).map_err(|e| anyhow::anyhow!("invalid secret_key: {e}"));
    }
    let path = config.data_dir.join("secret.key");
    if !path.exists() {
        write_new_key(&path)?;
    }
    let key = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Sealer::from_base64(&key).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn write_new_key(path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(Sealer::generate_key().as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a new secret key");
    Ok(())
}

/// Connects to and migrates the configured database, and builds the service over it.
pub async fn build_service(config: Config) -> anyhow::Result<Service> {
    let workflows = load_workflows(&config)?;
    let sealer = load_sealer(&config)?;
    let url = config.database_url();
    let db = Db::connect(&url, config.database_max_connections).await?;
    db.migrate().await?;
    tracing::info!(database = %redact_url(&url), workflows = workflows.len(), "database ready");
    let media = crate::media::Store::from_config(&config.media, &config.data_dir)?;
    tracing::info!(photos = %media, "photo store ready");
    Ok(Service::new(db, workflows, config, sealer, media))
}

impl App {
    /// Builds everything and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let bind = config.bind;
        let listener = TcpListener::bind(bind).await.with_context(|| format!("cannot listen on {bind}"))?;
        Self::with_listener(config, listener).await
    }

    /// Builds everything around a listener bound by the caller (who then knows the port
    /// before the configuration is final, e.g. to put it in `base_url`).
    pub async fn with_listener(config: Config, listener: TcpListener) -> anyhow::Result<Self> {
        let service = build_service(config).await?;
        let state = crate::web::AppState::new(service.clone())?;
        // Templates are compiled and checked here: a bad one stops start-up, not a send.
        let notifier = crate::notify::Notifier::new(service.clone())?;
        let workflows = service.workflows().keys();
        if let Err((field, message)) = service.config().intake.validate(&workflows) {
            bail!("configuration error: {field}: {message}");
        }
        let applier = crate::intake::Applier::new(service.clone())?;
        Ok(Self { listener, service, state, notifier, applier })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The outbox worker of this app (it runs inside [`App::run`] when enabled).
    pub fn notifier(&self) -> &std::sync::Arc<crate::notify::Notifier> {
        &self.notifier
    }

    /// The applier of inbound webhooks of this app (it runs inside [`App::run`]).
    pub fn applier(&self) -> &std::sync::Arc<crate::intake::Applier> {
        &self.applier
    }

    /// The service, for seeding data before serving.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Serves until `shutdown` is cancelled, then finishes in-flight requests.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let router = crate::web::router(self.state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let service = self.service.clone();
        let listener = tokio::spawn(crate::live::listen_for_changes(
            self.service.db().clone(),
            move |signal| service.on_signal(signal),
            shutdown.clone(),
        ));
        let worker = self
            .service
            .config()
            .notify
            .worker
            .enabled
            .then(|| tokio::spawn(self.notifier.clone().run(shutdown.clone())));
        // Approval reminders are sent by whichever node's worker looks first; the note they
        // leave in the log keeps every node from sending a second one.
        let reminders = self
            .service
            .config()
            .notify
            .worker
            .enabled
            .then(|| tokio::spawn(self.service.clone().remind_periodically(shutdown.clone())));
        let statistics = tokio::spawn(keep_statistics(self.service.db().clone(), shutdown.clone()));
        // Deliveries recorded before a crash are applied now: the inbox is the record.
        let applier =
            self.service.config().intake.apply.then(|| tokio::spawn(self.applier.clone().run(shutdown.clone())));
        let served =
            axum::serve(self.listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned()).await;
        shutdown.cancel();
        let _ = listener.await;
        if let Some(applier) = applier {
            let _ = applier.await;
        }
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        if let Some(reminders) = reminders {
            let _ = reminders.await;
        }
        let _ = statistics.await;
        self.service.db().close().await;
        if let Err(e) = served {
            bail!("server failed: {e}");
        }
        Ok(())
    }
}

/// How often the planner's statistics are refreshed (a no-op when nothing changed much).
const STATISTICS_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Keeps the query planner's statistics fresh: at start, then every [`STATISTICS_EVERY`].
async fn keep_statistics(db: Db, stop: CancellationToken) {
    loop {
        if let Err(e) = db.optimize().await {
            tracing::warn!(error = %e, "cannot refresh the database's statistics");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(STATISTICS_EVERY) => {}
        }
    }
}
