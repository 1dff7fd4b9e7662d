//! The REST API: recipes, queries and bundles over HTTP, computed by the same
//! engine as the CLI.
//!
//! Routes: `GET|POST /v1/recipe`, `GET /v1/query`, `POST /v1/bundle`, `GET /healthz`,
//! `/readyz`, `/metrics`, `/openapi.json`. Flow: [`request`] parses inputs (pure),
//! [`app`] wires handlers and middleware, [`Server`] owns the listener and shutdown.

pub mod app;
pub mod bundle;
pub mod config;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod request;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use app::{AppState, router};
pub use config::ServerConfig;
pub use error::{ApiError, ErrorResponse, ServerError};

use crate::recipe::Catalog;

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Every in-flight request finished after the shutdown signal.
    Graceful,
    /// Requests were still running when the grace period ran out; they were dropped.
    Forced,
}

/// A bound listener plus the application, ready to serve.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
}

impl Server {
    /// Bind `addr` (`host:port`; port 0 picks a free port, see [`Server::local_addr`]).
    pub async fn bind(
        addr: &str,
        catalog: Arc<Catalog>,
        config: ServerConfig,
    ) -> Result<Server, ServerError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        Ok(Server {
            listener,
            state: AppState::new(catalog, config),
        })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> Result<SocketAddr, ServerError> {
        self.listener.local_addr().map_err(ServerError::Serve)
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serve until `shutdown` resolves, then stop accepting, report not-ready, let
    /// in-flight requests finish for up to `grace`, and return.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> Result<Shutdown, ServerError> {
        let state = self.state.clone();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            state.set_draining();
            let _ = started_tx.send(());
        };
        let serve =
            axum::serve(self.listener, router(self.state.clone())).with_graceful_shutdown(signal);
        let deadline = async move {
            // If the sender is dropped without sending, the server already stopped.
            if started_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            res = serve => res.map(|()| Shutdown::Graceful).map_err(ServerError::Serve),
            () = deadline => Ok(Shutdown::Forced),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
