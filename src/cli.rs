//! The command line: `serve`, `migrate`, `workflow check`, `token create|list|revoke`,
//! `user add|list|disable`, `import`, `reconcile`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::app::{App, build_service};
use crate::config::Config;
use crate::domain::workflow::{self, WorkflowError};
use crate::service::Scope;

/// kiln — a production tracker for made-to-order workshops.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about)]
struct Cli {
    /// Configuration file (default: ./kiln.toml when it exists).
    #[arg(long, global = true, env = "KILN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (API and pages).
    Serve {
        /// Load demo workshops and orders into an empty database, and print a token and links.
        #[arg(long)]
        demo: bool,
    },
    /// Run only the outbox worker (send notifications), e.g. on another machine.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Work with workflow files.
    Workflow {
        #[command(subcommand)]
        command: WorkflowCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage the shop's staff accounts (dashboard sign-in).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Import data from files.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Create the orders a sender's webhooks missed, from its API.
    Reconcile {
        #[command(subcommand)]
        command: ReconcileCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ReconcileCommand {
    /// List Stripe's complete Checkout Sessions and create the orders of paid ones kiln does
    /// not have; running it twice creates nothing the second time.
    Stripe {
        /// How far back, e.g. `3d`, `12h`.
        #[arg(long, default_value = "3d", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
    },
    /// List Shopify's orders (Admin API) and create the ones kiln does not have; running it
    /// twice creates nothing the second time.
    Shopify {
        /// How far back, e.g. `3d`, `12h`.
        #[arg(long, default_value = "3d", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
    },
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Import orders from a CSV file: one row per line item, keyed by `external_id` (see
    /// docs/intake.md); running the same file again changes nothing.
    Orders {
        /// The CSV file.
        file: PathBuf,
        /// Check every row and report, but write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum WorkflowCommand {
    /// Validate workflow files or folders; problems are printed as FILE:LINE:COLUMN: message.
    Check {
        /// Files or folders of `*.toml` workflows.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Write the built-in presets into a folder, to start your own.
    Export {
        /// Target folder (created if missing; existing files are kept).
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user. The password is asked for on a terminal, read from standard input with
    /// `--password-stdin`, or generated and printed with `--generate-password`.
    Add {
        /// Sign-in email.
        #[arg(long)]
        email: String,
        /// `owner` (everything), `operator` (moves, photos, notes, retries) or `viewer` (read only).
        #[arg(long, value_parser = ["owner", "operator", "viewer"])]
        role: String,
        /// Display name (default: the email's local part).
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of standard input (for scripts).
        #[arg(long, conflicts_with = "generate_password")]
        password_stdin: bool,
        /// Generate a strong password and print it once.
        #[arg(long)]
        generate_password: bool,
    },
    /// List users and their roles.
    List,
    /// Disable a user: they cannot sign in and their open sessions end at once.
    Disable {
        /// The user's email.
        email: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token; it is printed once and only its hash is kept.
    Create {
        /// Who or what will use it (recorded as the actor of its changes).
        #[arg(long)]
        name: String,
        /// `read` or `write`.
        #[arg(long, value_parser = ["read", "write"])]
        scope: String,
    },
    /// List tokens (never their secret part).
    List,
    /// Revoke a token by id.
    Revoke {
        /// Token id, as `token list` shows.
        id: i64,
    },
}

/// Parses the command line and runs the command.
pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let config = match Config::load(cli.config.as_deref(), &env) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("kiln: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config.log);
    let outcome = match cli.command {
        Command::Serve { demo } => serve(config, demo).await,
        Command::Worker => worker(config).await,
        Command::Migrate => build_service(config).await.map(|s| {
            println!("migrations applied");
            drop(s);
        }),
        Command::Workflow { command: WorkflowCommand::Check { paths } } => return check_workflows(&paths),
        Command::Workflow { command: WorkflowCommand::Export { dir } } => export_presets(&dir),
        Command::Token { command } => token(config, command).await,
        Command::User { command } => user(config, command).await,
        Command::Import { command: ImportCommand::Orders { file, dry_run } } => {
            return import_orders(config, &file, dry_run).await;
        }
        Command::Reconcile { command: ReconcileCommand::Stripe { since } } => reconcile_stripe(config, since).await,
        Command::Reconcile { command: ReconcileCommand::Shopify { since } } => reconcile_shopify(config, since).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kiln: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where `user add` gets the password from.
fn read_new_password(from_stdin: bool, generate: bool) -> anyhow::Result<(String, bool)> {
    if generate {
        return Ok((crate::crypto::random_token(15), true));
    }
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok((line.trim_end_matches(['\r', '\n']).to_owned(), false));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!("no terminal to ask for the password: use --password-stdin or --generate-password");
    }
    let first = rpassword::prompt_password("Password: ")?;
    let again = rpassword::prompt_password("Again: ")?;
    if first != again {
        anyhow::bail!("the two passwords differ");
    }
    Ok((first, false))
}

async fn user(config: Config, command: UserCommand) -> anyhow::Result<()> {
    use crate::domain::access::Role;
    // Ask before connecting, so a typo in the password does not cost a migration check.
    let password = match &command {
        UserCommand::Add { password_stdin, generate_password, .. } => {
            Some(read_new_password(*password_stdin, *generate_password)?)
        }
        _ => None,
    };
    let service = build_service(config).await?;
    match command {
        UserCommand::Add { email, role, name, .. } => {
            let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
            let (password, generated) = password.unwrap_or_default();
            let new = crate::service::NewUser { email: &email, name: name.as_deref(), role, password: &password };
            let user = service.add_user(new, "cli").await.map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
            println!("added {} ({}) as {}", user.email, user.name, user.role);
            if generated {
                println!("password (shown once): {password}");
            }
        }
        UserCommand::List => {
            let users = service.users().await.map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
            println!("{:<36} {:<24} {:<9} {:<10} CREATED", "EMAIL", "NAME", "ROLE", "STATE");
            for u in users {
                let state = if u.disabled_at.is_some() { "disabled" } else { "active" };
                let created = crate::store::from_ms(u.created_at).format("%Y-%m-%d");
                println!("{:<36} {:<24} {:<9} {:<10} {created}", u.email, u.name, u.role, state);
            }
        }
        UserCommand::Disable { email } => {
            let user = service
                .user_by_email(&email)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.chain()))?
                .ok_or_else(|| anyhow::anyhow!("no user has the email {email}"))?;
            service.set_user_disabled(user.id, true, "cli").await.map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
            println!("disabled {}; their sessions have ended", user.email);
        }
    }
    Ok(())
}

async fn reconcile_stripe(config: Config, since: std::time::Duration) -> anyhow::Result<()> {
    let from = chrono::Utc::now() - chrono::Duration::from_std(since).unwrap_or(chrono::Duration::days(3));
    let service = build_service(config).await?;
    let applier = crate::intake::Applier::new(service)?;
    let report = applier.reconcile_stripe(from).await.map_err(|e| anyhow::anyhow!(e))?;
    for id in &report.created {
        println!("created the order of {id}");
    }
    for (id, why) in &report.failed {
        println!("could not handle {id}: {why}");
    }
    println!(
        "{} complete sessions since {}: {} orders created, {} already present, {} unpaid, {} failed",
        report.listed,
        from.format("%Y-%m-%d %H:%M UTC"),
        report.created.len(),
        report.present,
        report.unpaid,
        report.failed.len()
    );
    if report.failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} sessions could not be handled", report.failed.len())
    }
}

async fn reconcile_shopify(config: Config, since: std::time::Duration) -> anyhow::Result<()> {
    let from = chrono::Utc::now() - chrono::Duration::from_std(since).unwrap_or(chrono::Duration::days(3));
    let service = build_service(config).await?;
    let applier = crate::intake::Applier::new(service)?;
    let report = applier.reconcile_shopify(from).await.map_err(|e| anyhow::anyhow!(e))?;
    for key in &report.created {
        println!("created the order of Shopify order {key}");
    }
    for (key, why) in &report.failed {
        println!("could not handle {key}: {why}");
    }
    println!(
        "{} Shopify orders since {}: {} orders created, {} already present, {} cancelled, {} failed",
        report.listed,
        from.format("%Y-%m-%d %H:%M UTC"),
        report.created.len(),
        report.present,
        report.unpaid,
        report.failed.len()
    );
    if report.failed.is_empty() { Ok(()) } else { anyhow::bail!("{} orders could not be handled", report.failed.len()) }
}

/// `kiln import orders`: exit code 0 when every row was imported (or skipped as imported
/// before), 1 when some rows were refused, 2 when the file could not be read.
async fn import_orders(config: Config, file: &std::path::Path, dry_run: bool) -> ExitCode {
    use crate::intake::csv_import;
    let shown = file.display().to_string();
    let opened = std::fs::File::open(file);
    let size = opened.as_ref().ok().and_then(|f| f.metadata().ok()).map_or(0, |m| m.len());
    let Ok(input) = opened else {
        eprintln!("kiln: cannot open {shown}");
        return ExitCode::from(2);
    };
    let service = match build_service(config).await {
        Ok(service) => service,
        Err(e) => {
            eprintln!("kiln: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = indicatif::ProgressBar::new(size);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} [{bar:40}] {msg} ({eta} left)")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let result =
        csv_import::import_orders(&service, std::io::BufReader::new(input), dry_run, |bytes| bar.set_position(bytes))
            .await;
    bar.finish_and_clear();
    let summary = match result {
        Ok(summary) => summary,
        Err(csv_import::ImportError::Service(e)) => {
            eprintln!("kiln: import stopped: {}", e.chain());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("{shown}:{e}");
            return ExitCode::from(2);
        }
    };
    for p in &summary.problems {
        let column = if p.column.is_empty() { String::new() } else { format!(" {}:", p.column) };
        eprintln!("{shown}:{}:{column} {}", p.line, p.reason);
    }
    if summary.rows_refused > summary.problems.len() as u64 {
        eprintln!("… and {} more refused rows", summary.rows_refused - summary.problems.len() as u64);
    }
    let verb = if dry_run { "would create" } else { "created" };
    println!(
        "{} rows: {verb} {} orders, skipped {} imported before, refused {} orders ({} rows){}",
        summary.rows,
        summary.created,
        summary.skipped,
        summary.refused,
        summary.rows_refused,
        if dry_run { " — dry run, nothing written" } else { "" }
    );
    if summary.rows_refused > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn init_tracing(default: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let app = App::build(config).await?;
    let config = app.service().config().clone();
    if demo {
        let summary = crate::demo::seed(app.service()).await?;
        crate::demo::print_banner(&config, app.port(), &summary);
    } else {
        tracing::info!(port = app.port(), url = %config.base_url, "kiln is listening");
    }
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("shutting down");
            on_signal.cancel();
        }
    });
    app.run(shutdown).await
}

async fn worker(config: Config) -> anyhow::Result<()> {
    let service = build_service(config).await?;
    let notifier = crate::notify::Notifier::new(service.clone())?;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    notifier.run(shutdown).await;
    service.db().close().await;
    Ok(())
}

fn check_workflows(paths: &[PathBuf]) -> ExitCode {
    let mut errors: Vec<WorkflowError> = Vec::new();
    for path in paths {
        let result = if path.is_dir() {
            workflow::load_dir(path)
                .map(|wfs| wfs.iter().map(|w| format!("{} ({} stages)", w.key, w.stages.len())).collect::<Vec<_>>())
        } else {
            let name = path.display().to_string();
            match std::fs::read_to_string(path) {
                Ok(text) => workflow::parse_workflow(&name, &text)
                    .map(|w| vec![format!("{} ({} stages)", w.key, w.stages.len())]),
                Err(e) => {
                    Err(vec![WorkflowError { file: name, line: 1, column: 1, message: format!("cannot read: {e}") }])
                }
            }
        };
        match result {
            Ok(found) => println!("{}: ok: {}", path.display(), found.join(", ")),
            Err(mut errs) => errors.append(&mut errs),
        }
    }
    for e in &errors {
        eprintln!("{e}");
    }
    if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn export_presets(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in workflow::PRESETS {
        let file = std::path::Path::new(name).file_name().map(PathBuf::from).unwrap_or_else(|| PathBuf::from(name));
        let target = dir.join(file);
        if target.exists() {
            println!("kept {}", target.display());
        } else {
            std::fs::write(&target, text)?;
            println!("wrote {}", target.display());
        }
    }
    Ok(())
}

async fn token(config: Config, command: TokenCommand) -> anyhow::Result<()> {
    let service = build_service(config).await?;
    match command {
        TokenCommand::Create { name, scope } => {
            let scope = Scope::parse(&scope).map_err(anyhow::Error::msg)?;
            let (token, info) = service.create_token(&name, scope).await?;
            println!("{token}");
            eprintln!("token {} `{}` ({}) created; it is shown only now", info.id, info.name, info.scope);
        }
        TokenCommand::List => {
            for t in service.list_tokens().await? {
                let state = if t.revoked_at.is_some() { "revoked" } else { "active" };
                println!(
                    "{:>4}  {:<24} {:<5} {}…  {}  {}",
                    t.id,
                    t.name,
                    t.scope,
                    t.prefix,
                    t.created().format("%Y-%m-%d %H:%M"),
                    state
                );
            }
        }
        TokenCommand::Revoke { id } => {
            if service.revoke_token(id).await? {
                println!("token {id} revoked");
            } else {
                anyhow::bail!("no active token with id {id}");
            }
        }
    }
    service.db().close().await;
    Ok(())
}
