//! `mmm-host`: serve the API (default), or mint a token with the local key.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use mmm_host::auth::{Claims, KeySet, LocalKey, Verifier};
use mmm_host::config::{Cli, Command, LogFormat, ServeArgs, TokenArgs};
use mmm_host::telemetry::{self, JsonLogLayer};
use mmm_host::{app, live, store, AppState};
use opentelemetry_sdk::trace::SdkTracerProvider;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(args)) => token(&args),
        Some(Command::Serve(args)) => serve(*args),
        None => serve(cli.serve),
    }
}

fn token(args: &TokenArgs) -> ExitCode {
    match mint(args) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("mmm-host: {message}");
            ExitCode::FAILURE
        }
    }
}

fn mint(args: &TokenArgs) -> Result<String, String> {
    let ttl = mmm_engine::Duration::parse(&args.ttl).map_err(|_| {
        format!(
            "--ttl `{}` is not a duration such as `30m`, `1h` or `7d`",
            args.ttl
        )
    })?;
    for role in &args.roles {
        if mmm_host::auth::Role::parse(role).is_none() {
            return Err(format!(
                "--role `{role}` is not one of admin, author, approver, service, developer"
            ));
        }
    }
    if args.tenant != "*" && !mmm_host::auth::valid_tenant(&args.tenant) {
        return Err(format!("--tenant `{}` is not a tenant id", args.tenant));
    }
    let key = LocalKey::load_or_create(&args.data_dir).map_err(|e| e.to_string())?;
    let sub = args.actor.clone().unwrap_or_else(|| {
        format!(
            "{}@{}",
            args.roles.first().map_or("user", String::as_str),
            args.tenant
        )
    });
    let ttl = u64::try_from(ttl.as_secs()).unwrap_or(0);
    key.mint(&claims(&args.tenant, &sub, &args.roles, ttl))
        .map_err(|e| e.to_string())
}

fn claims(tenant: &str, sub: &str, roles: &[String], ttl_secs: u64) -> Claims {
    let now = u64::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0);
    Claims {
        tenant_id: tenant.to_owned(),
        sub: sub.to_owned(),
        roles: roles.to_vec(),
        exp: now + ttl_secs,
        iat: Some(now),
        iss: None,
        aud: None,
    }
}

/// Logs (JSON lines or text on stderr, filtered by `RUST_LOG`, default `info`) and, with
/// an OTLP endpoint, traces. Returns the tracer provider to flush at shutdown.
fn init_telemetry(
    format: LogFormat,
    otlp_endpoint: Option<&str>,
    runtime: &tokio::runtime::Runtime,
) -> Result<Option<SdkTracerProvider>, String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    let logs = match format {
        LogFormat::Json => JsonLogLayer::new(std::io::stderr)
            .with_filter(filter())
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed(),
    };
    let provider = match telemetry::otlp_traces_url(otlp_endpoint) {
        Some(url) => Some(telemetry::provider(&url, runtime.handle().clone())?),
        None => None,
    };
    let traces = provider.as_ref().map(telemetry::trace_layers);
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .map_err(|e| format!("cannot install the log subscriber: {e}"))?;
    Ok(provider)
}

fn serve(args: ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mmm-host: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let traces = match init_telemetry(args.log_format, args.otlp_endpoint.as_deref(), &runtime) {
        Ok(provider) => provider,
        Err(message) => {
            eprintln!("mmm-host: {message}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    if let Some(provider) = traces {
        // The spans still queued go out (bounded by the exporter's time-out) while the
        // runtime that sends them still runs.
        let flushed = runtime
            .block_on(async { tokio::task::spawn_blocking(move || provider.shutdown()).await });
        if let Ok(Err(e)) = flushed {
            tracing::warn!(error = %e, "traces: the last spans could not be exported");
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("mmm-host: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: ServeArgs) -> Result<(), String> {
    mmm_host::auth::keys::private_dir(&args.data_dir)
        .map_err(|e| format!("{}: {e}", args.data_dir.display()))?;
    let mut local_key = None;
    let keys = if let Some(path) = &args.jwks_file {
        KeySet::from_jwks_file(path).map_err(|e| e.to_string())?
    } else if let Some(url) = &args.jwks_url {
        KeySet::from_jwks_url(url, Duration::from_secs(args.jwks_refetch_seconds))
            .await
            .map_err(|e| e.to_string())?
    } else {
        let key = LocalKey::load_or_create(&args.data_dir).map_err(|e| e.to_string())?;
        let keys = KeySet::fixed(vec![key.verification_key()]);
        local_key = Some(key);
        keys
    };
    let verifier = Verifier::new(keys, args.jwt_issuer.clone(), args.jwt_audience.clone());
    let store = store::connect(&args.database_url())
        .await
        .map_err(|e| format!("cannot open the database: {e}"))?;
    let config = mmm_host::engine_setup::engine_config(args.engine_settings.as_deref())?;
    let plugins = mmm_host::plugins::Plugins::from_args(&args, &store, &config.timeouts)?;
    plugins
        .fatigue
        .load(&*store, config.fatigue_max_actors)
        .await
        .map_err(|e| format!("loading the fatigue history: {e}"))?;
    let setup =
        mmm_host::engine_setup::build(&args, &store, |builder| plugins.apply(builder)).await?;
    let state = AppState::with_engine_and_metrics(
        Arc::clone(&store),
        verifier,
        args.settings(),
        setup.engine,
        Arc::clone(&plugins.metrics),
    )
    .with_fatigue(plugins.fatigue.clone())
    .with_chain(setup.chain, Duration::from_millis(args.receipts_linger_ms))
    .with_console(console_config(&args)?);
    let log = Arc::clone(&state.decisions);
    // Bounded so that, with the requests in flight before it, SIGTERM ends the host
    // within 10 s even when the database has gone away.
    let flush_bound = Duration::from_secs(args.shutdown_grace_seconds.min(5));
    state
        .shutdown
        .on_shutdown(
            "commit pending decisions and receipts",
            move || async move {
                if !log.flush(flush_bound).await {
                    tracing::error!(
                        backlog = log.backlog(),
                        "decisions were left uncommitted at shutdown"
                    );
                }
            },
        )
        .await;
    plugins.start(&state).await?;
    mmm_host::delivery::worker::spawn(
        Arc::clone(&store),
        Arc::clone(&state.metrics),
        Arc::clone(&state.clock),
        mmm_host::delivery::worker::DeliveryConfig::from_args(&args),
        Arc::clone(&state.delivery_wake),
        &state.shutdown,
    )
    .await?;
    if let Some(dir) = args.seed_dir() {
        let imported = live::import_seed(&*store, &dir, jiff::Timestamp::now())
            .await
            .map_err(|e| {
                format!(
                    "importing playbooks from {}: {}",
                    dir.display(),
                    describe(&e)
                )
            })?;
        if imported.playbooks > 0 {
            tracing::info!(playbooks = imported.playbooks, experiments = imported.experiments, dir = %dir.display(), "first start: imported playbooks");
        }
    }
    if let Err(e) = state.live.reload(&*store).await {
        tracing::error!(error = %e, "loading the playbook set failed; /ready answers 503 until it loads");
    }
    let follower = Arc::clone(&state.live)
        .follow(
            Arc::clone(&store),
            Duration::from_millis(args.revision_poll_ms),
            state.shutdown.stopping(),
        )
        .await;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    // Broker intakes (`--nats-url`, `--amqp-url`), once the playbook set is loaded: they
    // stop taking messages when the shutdown begins and are waited for before the
    // decision log's last flush.
    let intakes = mmm_host::intake::Intakes::start(&state, &args)?;
    if let Some(key) = &local_key {
        let roles = vec!["admin".to_owned()];
        let token = key
            .mint(&claims("demo", "demo-admin", &roles, 24 * 3600))
            .map_err(|e| e.to_string())?;
        println!("mmm-host listening on http://{}", args.listen);
        println!(
            "console: http://{}/ui/ (sign in with the token below)",
            args.listen
        );
        println!("admin token for tenant `demo` (local use only, valid 24 h):");
        println!("{token}");
    }
    tracing::info!(listen = %args.listen, database = store.backend(), "serving");
    let shutdown = Arc::clone(&state.shutdown);
    let hooks = Arc::clone(&state.shutdown);
    let grace = Duration::from_secs(args.shutdown_grace_seconds);
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            mmm_host::shutdown::signal().await;
            tracing::info!("stopping: finishing requests in flight");
            shutdown.begin();
        })
        .await
        .map_err(|e| format!("serving: {e}"))?;
    // Every request in flight has been answered: now the work that must follow the last
    // one (the receipts outbox's final flush, for instance).
    follower.abort();
    intakes.join().await;
    hooks.run_hooks(grace).await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The console's settings from the flags: the session key (created in the data directory
/// on first start unless a file is named), the public URL, the session length and the
/// OpenID Connect client.
fn console_config(args: &ServeArgs) -> Result<mmm_host::console::ConsoleConfig, String> {
    let key_file = args
        .session_key_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("session.key"));
    let key = mmm_host::console::load_or_create_key(&key_file)?;
    let ttl = mmm_engine::Duration::parse(&args.session_ttl).map_err(|_| {
        format!(
            "--session-ttl `{}` is not a duration such as `30m`, `8h` or `1d`",
            args.session_ttl
        )
    })?;
    let oidc = match (&args.oidc_issuer, &args.oidc_client_id) {
        (Some(issuer), Some(client_id)) => Some(mmm_host::console::oidc::OidcClient::new(
            issuer,
            client_id,
            args.oidc_client_secret.clone(),
            &args.oidc_scopes,
        )?),
        _ => None,
    };
    mmm_host::console::ConsoleConfig::new(
        key,
        args.public_url.as_deref(),
        Duration::from_millis(u64::try_from(ttl.as_millis()).unwrap_or(0)),
        oidc,
    )
}

fn describe(e: &mmm_host::error::AppError) -> String {
    match e {
        mmm_host::error::AppError::Invalid { errors, detail, .. } => {
            let lines: Vec<String> = errors
                .iter()
                .map(|i| {
                    format!(
                        "{}:{}:{}: {}",
                        i.file.as_deref().unwrap_or("?"),
                        i.line.unwrap_or(1),
                        i.column.unwrap_or(1),
                        i.message
                    )
                })
                .collect();
            format!("{detail}\n{}", lines.join("\n"))
        }
        other => other.to_string(),
    }
}
