//! `serve`: open the store, start the engine with the app's workflows, serve the HTTP API, the
//! web UI, metrics and webhooks; stop cleanly on Ctrl-C or SIGTERM.

mod args;
mod queues;
pub(crate) mod window;

use std::io::Write;
use std::time::Duration;

use tether_core::Registry;
use tether_engine::Engine;
use tether_server::ServerOptions;
use tether_store::redact_url;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use self::args::ServeArgs;
use crate::error::CommandError;

/// How long requests in flight (long-polls included) may take to finish after a stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serve `registry`'s workflows until Ctrl-C or SIGTERM.
pub(crate) async fn run(
    args: ServeArgs,
    api_token: Option<String>,
    registry: Registry,
) -> Result<(), CommandError> {
    args.check(api_token.as_deref())?;
    // Many clients at once need many descriptors: take all the system allows.
    match tether_server::raise_fd_limit() {
        Ok(Some(n)) => tracing::info!(limit = n, "open-file limit"),
        Ok(None) => tracing::info!("open-file limit: unlimited"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }

    // Bind first: a port in use should not leave a new database file behind.
    let listener = TcpListener::bind(&args.addr).await.map_err(|e| {
        CommandError::Failed(format!(
            "cannot listen on {} (--addr): {e}; stop what uses it, or pick another --addr \
                 (`--addr 127.0.0.1:0` takes any free port)",
            args.addr
        ))
    })?;
    let store = crate::store::open(&args.open_options()).await?;
    let local = listener
        .local_addr()
        .map_err(|e| CommandError::Failed(format!("cannot read the listening address: {e}")))?;

    if api_token.is_none() && !local.ip().is_loopback() {
        eprintln!(
            "tether: warning: listening on {local} without an API token: anyone who can reach \
             it can start, resume and cancel runs; set --api-token (or TETHER_API_TOKEN)"
        );
    }
    let link_keys = args.link_keys()?;
    if link_keys.is_generated() {
        // A log line, not a bare stderr line: `--log-format json` keeps every line JSON.
        tracing::warn!(
            "no --link-key (TETHER_LINK_KEYS): resume links are signed with a key made at \
             start; they stop working when this process restarts and are refused by other nodes"
        );
    }
    let config = args.engine_config(local);
    let engine = Engine::start(store, registry, config);
    tracing::info!(
        db = %redact_url(&args.db),
        node = %engine.node_id(),
        auth = api_token.is_some(),
        link_keys = %link_keys.kids().join(", "),
        workflows = %engine.registry().workflow_names().join(", "),
        "engine started"
    );

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let options = ServerOptions {
        stopping: Some(stop_rx.clone()),
        api_token,
        body_timeout: args.body_timeout(),
        link_keys,
        ..ServerOptions::default()
    };
    let router = tether_server::router(engine.clone(), options);
    let mut server = tokio::spawn(tether_server::serve_with(
        listener,
        router,
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        },
        args.serve_limits(),
    ));

    // The same line whatever the binary is called: scripts wait for it.
    announce(&format!("tether listening on http://{local}"));

    let outcome = tokio::select! {
        () = stop_signal() => {
            tracing::info!("stopping");
            let _ = stop_tx.send(true);
            match tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await {
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; closing them");
                    server.abort();
                }
            }
            Ok(())
        }
        res = &mut server => match res {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CommandError::Failed(format!("the server stopped: {e}"))),
            Err(e) => Err(CommandError::Failed(format!("the server stopped: {e}"))),
        },
    };
    engine.shutdown().await;
    tracing::info!("stopped");
    outcome
}

/// Print the one stdout line that says the server is ready.
fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        tracing::warn!("{line} (could not write to stdout)");
    }
}

/// Completes on Ctrl-C, or SIGTERM on unix.
async fn stop_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
