//! The pinned tools of `ci/tools/build.sh` for tests: helm, an OCI registry process
//! (go-containerregistry's registry, optionally with basic auth and TLS) and a Helm chart
//! repository served from `fixtures/charts` on 127.0.0.1. Every server stops when its
//! value is dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use aiconform::cluster::testing::skip;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tools directory (helm, aiconform-registry), built on first use; None (skip) or a
/// panic under `AICONFORM_REQUIRE_CLUSTER=1` when it cannot be built.
pub fn tools(test: &str) -> Option<PathBuf> {
    static TOOLS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = TOOLS.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo_root().join("ci/tools/build.sh"))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run ci/tools/build.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ci/tools/build.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let dir = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        Ok(PathBuf::from(dir))
    });
    match r {
        Ok(dir) => Some(dir.clone()),
        Err(why) => skip(test, why),
    }
}

/// Helm's own state (cache, config, repositories) kept in `home`, never the user's.
pub fn helm_env(cmd: &mut Command, home: &Path) {
    for (var, sub) in [
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_DATA_HOME", "data"),
    ] {
        cmd.env(var, home.join(sub));
    }
}

/// Run helm; panics with its output on failure; returns stdout.
pub fn helm(tools: &Path, home: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(tools.join("helm"));
    helm_env(&mut cmd, home);
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "helm {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[derive(Debug, Default, Clone)]
pub struct RegistryConfig {
    pub basic_auth: Option<(String, String)>,
    pub tls: bool,
}

/// A registry process on 127.0.0.1. It exits when dropped (its stdin closes).
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// The CA of its certificate, with TLS.
    pub ca: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(tools: &Path, config: &RegistryConfig) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(tools.join("aiconform-registry"));
        cmd.args(["--addr", "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some((u, p)) = &config.basic_auth {
            cmd.arg("--basic-auth").arg(format!("{u}:{p}"));
        }
        if config.tls {
            cmd.arg("--tls-dir").arg(dir.path());
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("LISTENING ")
            .unwrap_or_else(|| panic!("aiconform-registry printed `{line}`"))
            .to_string();
        Registry {
            child,
            addr,
            ca: config.tls.then(|| dir.path().join("ca.pem")),
            _dir: dir,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Helm chart repository (`index.yaml` + packaged charts) served over HTTP.
pub struct ChartRepo {
    pub url: String,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Package every chart of `fixtures/charts` into `out`; returns the archives.
pub fn package_charts(tools: &Path, home: &Path, out: &Path) -> Vec<PathBuf> {
    let charts = repo_root().join("fixtures/charts");
    let mut archives = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&charts)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Chart.yaml").exists())
        .map(|e| e.path())
        .collect();
    names.sort();
    for chart in names {
        let text = helm(
            tools,
            home,
            &[
                "package",
                chart.to_str().unwrap(),
                "--destination",
                out.to_str().unwrap(),
            ],
        );
        let path = text.trim().rsplit(": ").next().map(PathBuf::from).unwrap();
        archives.push(path);
    }
    archives
}

impl ChartRepo {
    /// Serve the fixture charts, indexed for their URL on 127.0.0.1.
    pub fn start(tools: &Path, home: &Path) -> ChartRepo {
        let dir = tempfile::tempdir().unwrap();
        package_charts(tools, home, dir.path());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        helm(
            tools,
            home,
            &["repo", "index", dir.path().to_str().unwrap(), "--url", &url],
        );
        let root = dir.path().to_path_buf();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().route(
                    "/{file}",
                    axum::routing::get(
                        move |axum::extract::Path(file): axum::extract::Path<String>| {
                            let root = root.clone();
                            async move {
                                if file.contains('/') || file.starts_with('.') {
                                    return Err(axum::http::StatusCode::NOT_FOUND);
                                }
                                std::fs::read(root.join(&file))
                                    .map_err(|_| axum::http::StatusCode::NOT_FOUND)
                            }
                        },
                    ),
                );
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        ChartRepo {
            url,
            dir,
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for ChartRepo {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
