//! Shared helpers for the server tests: an in-process server on 127.0.0.1:0 and a raw HTTP
//! client for requests reqwest cannot make (partial and chunked bodies).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aiconform::recipe::Catalog;
use aiconform::recipe::source::RecipeFiles;
use aiconform::server::{Server, ServerConfig, ServerError, Shutdown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A reqwest client builder for plain-HTTP tests. The crate graph builds rustls without a
/// default crypto provider (the OCI client picks ring explicitly), so one is installed here.
pub fn http_client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy()
}

pub fn catalog() -> Catalog {
    Catalog::load(RecipeFiles::with_data_dirs(&[]).expect("builtin recipes"))
        .expect("builtin catalog loads")
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub stop: tokio::sync::oneshot::Sender<()>,
    pub handle: tokio::task::JoinHandle<Result<Shutdown, ServerError>>,
}

impl TestServer {
    pub async fn start(config: ServerConfig) -> TestServer {
        let server = Server::bind("127.0.0.1:0", Arc::new(catalog()), config)
            .await
            .expect("bind loopback");
        let addr = server.local_addr().expect("local addr");
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(
            async move {
                let _ = rx.await;
            },
            Duration::from_secs(10),
        ));
        let client = http_client()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        TestServer {
            addr,
            client,
            stop,
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let outcome = tokio::time::timeout(Duration::from_secs(15), self.handle)
            .await
            .expect("server stops in time")
            .expect("server task")
            .expect("server result");
        assert_eq!(outcome, Shutdown::Graceful);
    }
}

/// Send raw bytes (with `Connection: close`) and return (status, body).
pub async fn raw_request(addr: SocketAddr, bytes: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .expect("read");
    parse_response(&buf)
}

/// Status code and (unchunked, best effort) body of a raw HTTP/1.1 response.
pub fn parse_response(buf: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
