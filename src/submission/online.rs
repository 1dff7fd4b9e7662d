//! `submission check --online`: the URLs of a PRODUCT.yaml followed the way a reviewer follows
//! them. A link that does not answer with a success status (after redirects) is a problem at
//! its path in the YAML.

use std::time::Duration;

use futures::stream::{self, StreamExt};

use super::check::{Finding, Link};

/// At most this many URLs are fetched at once.
const CONCURRENCY: usize = 8;

/// Why `url` does not count as reachable, if it does not.
async fn problem(client: &reqwest::Client, url: &str) -> Option<String> {
    match client.get(url).send().await {
        Ok(resp) if resp.status().is_success() => None,
        Ok(resp) => Some(format!("{url} answered {}", resp.status())),
        Err(e) if e.is_timeout() => Some(format!("{url} did not answer in time")),
        Err(e) => Some(format!("{url} is unreachable: {}", root_cause(&e))),
    }
}

/// The innermost error: reqwest's outer message ("error sending request") says little.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Fetch every link (bounded concurrency, `timeout` each); one finding per link that fails,
/// in the order of `links`.
pub async fn unreachable(links: &[Link], timeout: Duration) -> Vec<Finding> {
    // reqwest is built without a default TLS provider; use ring, as kube does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("aiconform/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return vec![Finding {
                path: "(online)".into(),
                message: format!("cannot build an HTTP client: {}", root_cause(&e)),
            }];
        }
    };
    let mut found: Vec<(usize, Finding)> = stream::iter(links.iter().enumerate())
        .map(|(i, link)| {
            let client = &client;
            async move {
                problem(client, &link.url).await.map(|message| {
                    (
                        i,
                        Finding {
                            path: link.path.clone(),
                            message,
                        },
                    )
                })
            }
        })
        .buffer_unordered(CONCURRENCY)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    found.sort_by_key(|(i, _)| *i);
    found.into_iter().map(|(_, f)| f).collect()
}
