//! The running appliance: [`run`] builds the state, starts the background tasks (pruner,
//! usage flusher, watchdog, cameras, Protect controllers, alert engine, webhooks, MQTT) and
//! serves HTTP until told to stop.
//!
//! `run(config, deps, listener, shutdown)` takes an already-bound listener and a shutdown future,
//! so tests start the real server on port 0 and stop it when they like.

pub use crate::state::{
    ensure_admin, open_data_dir, AppState, Deps, StartError, INITIAL_PASSWORD_FILE,
};

use crate::config::Config;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Serves the appliance on `listener` until `shutdown` completes, then stops gracefully: no new
/// connections, in-flight requests get up to 10 s, pending usage counters are written.
pub async fn run(
    cfg: Config,
    deps: Deps,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let tls = match &cfg.tls {
        Some((cert, key)) => Some(crate::tls::acceptor(cert, key).map_err(StartError::Tls)?),
        None => None,
    };
    let state = tokio::task::spawn_blocking(move || AppState::start(cfg, deps))
        .await
        .map_err(|e| StartError::Tls(format!("start-up task failed: {e}")))??;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let pruner = tokio::spawn(crate::retention::run_pruner(
        state.retention.clone(),
        state.store.clone(),
        state.clock.clone(),
        state.settings.clone(),
        stop_rx.clone(),
    ));
    let alerts = tokio::spawn(crate::alerts::engine::run(
        Arc::new(crate::alerts::engine::Env {
            store: state.store.clone(),
            clock: state.clock.clone(),
            bus: state.bus.clone(),
            links: state.links.clone(),
            outbox: state.outbox.clone(),
        }),
        state.bus.subscribe("alerts"),
        stop_rx.clone(),
    ));
    let webhooks = tokio::spawn(crate::alerts::webhook::run(
        Arc::new(crate::alerts::webhook::Env {
            store: state.store.clone(),
            keys: state.keys.clone(),
            clock: state.clock.clone(),
            wake: state.outbox.clone(),
        }),
        stop_rx.clone(),
    ));
    // MQTT: the saved settings, then the client (it connects only when enabled).
    match crate::mqtt::config::load(&state.store, &state.keys).await {
        Ok(rt) => state.mqtt.apply(rt),
        Err(e) => tracing::warn!(error = %e, "cannot read the MQTT settings; MQTT stays off"),
    }
    let mqtt = tokio::spawn(crate::mqtt::service::run(
        Arc::new(crate::mqtt::service::Env {
            store: state.store.clone(),
            clock: state.clock.clone(),
            cameras: state.cameras.clone(),
            links: state.links.clone(),
            data_dir: state.cfg.data_dir.clone(),
        }),
        state.mqtt.control(),
        state.bus.subscribe("mqtt"),
        stop_rx.clone(),
    ));
    // Background: write API-key usage every 10 s.
    let flusher = {
        let state = state.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                    _ = stop.changed() => break,
                }
                if let Err(e) = state.usage.flush(&state.store).await {
                    tracing::warn!(error = %e, "could not write API key usage; will retry");
                }
                state.login_limiter.prune();
            }
        })
    };

    tracing::info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        tls = tls.is_some(),
        data_dir = %state.cfg.data_dir.display(),
        "argus is serving"
    );
    match state.settings().await {
        Ok(s) => state.detector.set_min_score(s.detection_min_score),
        Err(e) => tracing::warn!(error = ?e, "cannot read settings; detector minimum score 0.5"),
    }
    state.cameras.start_enabled().await;
    state.controllers.start_enabled().await;
    // systemd (Type=notify): ready now; the watchdog is fed while the database answers.
    crate::sdnotify::notify("READY=1\nSTATUS=serving");
    let watchdog = crate::sdnotify::watchdog_interval().map(|every| {
        let state = state.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                if state.store.ping().await {
                    crate::sdnotify::notify("WATCHDOG=1");
                } else {
                    tracing::error!("the database does not answer; not feeding the watchdog");
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => break,
                }
            }
        })
    });
    let server = crate::http::serve(listener, state.clone(), tls, stop_rx.clone());
    tokio::pin!(server);
    tokio::select! {
        _ = &mut server => {}
        _ = shutdown => {
            tracing::info!("shutting down");
            let _ = stop_tx.send(true);
            if tokio::time::timeout(Duration::from_secs(10), &mut server).await.is_err() {
                tracing::warn!("connections still open after 10 s; closing them");
            }
        }
    }
    let _ = stop_tx.send(true);
    crate::sdnotify::notify("STOPPING=1");
    if let Some(w) = watchdog {
        let _ = w.await;
    }
    state.cameras.stop_all().await;
    state.controllers.stop_all().await;
    let _ = flusher.await;
    let _ = pruner.await;
    let _ = alerts.await;
    let _ = webhooks.await;
    let _ = mqtt.await;
    if let Err(e) = state.usage.flush(&state.store).await {
        tracing::warn!(error = %e, "could not write API key usage at shutdown");
    }
    Ok(())
}
