//! The embedded test cluster: a real kube-apiserver, scheduler and controller-manager with
//! embedded etcd and simulated GPU nodes, built from `ci/testcluster` (Go).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ClusterError;

pub const BINARY_NAME: &str = "aiconform-testcluster";
/// Repository of aiconform's own image (the agent's). The embedded cluster runs its
/// containers on simulated nodes as processes of the local aiconform binary.
pub const IMAGE_REPOSITORY: &str = "ghcr.io/aiconform/aiconform";
/// Overrides where the binary is looked up.
pub const BINARY_ENV: &str = "AICONFORM_TESTCLUSTER_BIN";

/// Whether the cluster gets a real node: a kubelet with its own containerd beside the
/// simulated nodes, on which pods really run (needs root, containerd, runc and CNI plugins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RealNode {
    /// When this machine can run it; otherwise the cluster starts without it and says why.
    #[default]
    Auto,
    /// Required: starting fails when this machine cannot run it.
    On,
    Off,
}

impl RealNode {
    fn flag(self) -> &'static str {
        match self {
            RealNode::Auto => "auto",
            RealNode::On => "on",
            RealNode::Off => "off",
        }
    }
}

/// How to start the embedded cluster.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// GPU nodes (overrides the profile's GPU pool size).
    pub nodes: Option<u32>,
    /// Profile: a YAML file or a builtin name such as `h100-sxm`.
    pub profile: Option<String>,
    /// Enable the gang (coscheduling) scheduler plugin.
    pub gang: bool,
    /// Create the `gpu.nvidia.com` DeviceClass.
    pub device_class: bool,
    /// Keep state here instead of a temp dir the cluster removes on exit.
    pub data_dir: Option<PathBuf>,
    /// Exit when this process is gone (tests pass their own pid).
    pub parent_pid: Option<u32>,
    pub start_timeout: Duration,
    pub real_node: RealNode,
    /// Image archives loaded into the real node's runtime (it pulls nothing).
    pub image_archives: Vec<PathBuf>,
    /// Image repositories whose containers the simulated nodes run as processes of a
    /// local binary (`--run-image REPOSITORY=BINARY`); by default aiconform's image runs
    /// the aiconform binary found by [`aiconform_binary`].
    pub run_images: Vec<(String, PathBuf)>,
    /// Further aiconform-testcluster flags, passed as given (fault injection such as
    /// `--operator-no-reconciler`).
    pub extra_args: Vec<String>,
    /// Stand-ins, or the upstream controllers built by `ci/upstream/build.sh` in place of them.
    pub stack: super::upstream::Stack,
    /// With the upstream stack: the cluster installs it (true), or only runs its images and
    /// leaves out the stand-ins it replaces, for `aiconform deploy` to install it (false).
    pub install_stack: bool,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            nodes: None,
            profile: None,
            gang: true,
            device_class: true,
            data_dir: None,
            parent_pid: None,
            start_timeout: Duration::from_secs(180),
            real_node: RealNode::Auto,
            image_archives: local_image_archives(),
            run_images: aiconform_binary()
                .map(|b| vec![(IMAGE_REPOSITORY.to_string(), b)])
                .unwrap_or_default(),
            extra_args: Vec::new(),
            stack: super::upstream::Stack::Standin,
            install_stack: true,
        }
    }
}

/// The aiconform binary for aiconform's image: this executable when it is aiconform, else
/// `aiconform` beside it or one directory up (test binaries live in `target/<profile>/deps`).
pub fn aiconform_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    if exe.file_name().is_some_and(|n| n == "aiconform") {
        return Some(exe);
    }
    let dir = exe.parent()?;
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join("aiconform"))
        .find(|p| p.is_file())
}

/// The script that builds the binary, relative to the source checkout.
const BUILD_SCRIPT: &str = "ci/testcluster/build.sh";

/// Source checkout this binary was built from, when it still exists (development builds).
fn source_root() -> Option<PathBuf> {
    super::source_root(BUILD_SCRIPT)
}

/// Where the binary is: `$AICONFORM_TESTCLUSTER_BIN`, beside this executable, in
/// `target/testcluster/` of the build tree, or in the source checkout's target dir.
pub fn locate_binary() -> Result<PathBuf, ClusterError> {
    if let Some(p) = std::env::var_os(BINARY_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(ClusterError::BinaryMissing(format!(
                "{BINARY_ENV}={} is not a file",
                p.display()
            )))
        };
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join(BINARY_NAME));
        // target/debug/aiconform (or target/debug/deps/test-…) → target/testcluster/
        for up in dir.ancestors().take(3) {
            candidates.push(up.join("testcluster").join(BINARY_NAME));
        }
    }
    if let Some(root) = source_root() {
        candidates.push(root.join("target/testcluster").join(BINARY_NAME));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            ClusterError::BinaryMissing(format!(
                "looked in {}; build it with ci/testcluster/build.sh (needs Go) or set {BINARY_ENV}",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// Image archives built by `ci/image/build.sh` (`target/image/*.tar`), sorted.
pub fn local_image_archives() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        dirs.extend(dir.ancestors().take(3).map(|d| d.join("image")));
    }
    if let Some(root) = source_root() {
        dirs.push(root.join("target/image"));
    }
    let Some(dir) = dirs.into_iter().find(|d| d.is_dir()) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "tar"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Locate the binary, building it from the source checkout if it is missing.
pub fn ensure_binary(progress: &dyn Fn(&str)) -> Result<PathBuf, ClusterError> {
    let missing = match locate_binary() {
        Ok(p) => return Ok(p),
        Err(e) => e,
    };
    // Only a source checkout can build it, and an explicit override is never replaced.
    let Some(root) = source_root().filter(|_| std::env::var_os(BINARY_ENV).is_none()) else {
        return Err(missing);
    };
    progress(
        "building the embedded test cluster (first build downloads Kubernetes modules: several minutes)",
    );
    super::run_build_script(&root, BUILD_SCRIPT)?;
    locate_binary()
}

/// The upstream build for an upstream stack (built when missing), `None` for stand-ins.
fn upstream_dir(
    opts: &EmbeddedOptions,
    progress: &dyn Fn(&str),
) -> Result<Option<PathBuf>, ClusterError> {
    match opts.stack {
        super::upstream::Stack::Standin => Ok(None),
        super::upstream::Stack::Upstream => super::upstream::ensure(progress).map(Some),
    }
}

/// A started embedded cluster. Dropping it stops the cluster (unless detached).
#[derive(Debug)]
pub struct RunningCluster {
    child: Option<Child>,
    pub pid: u32,
    pub kubeconfig: PathBuf,
    pub log_file: PathBuf,
    /// The real node's name, or why the cluster has none.
    pub real_node: Result<String, String>,
    /// Holds the ready-file and stdout log for clusters without a data dir.
    _scratch: Option<tempfile::TempDir>,
}

impl RunningCluster {
    /// Start and wait until the cluster reports ready. `progress` receives its status lines.
    pub fn start(opts: &EmbeddedOptions, progress: &dyn Fn(&str)) -> Result<Self, ClusterError> {
        let binary = ensure_binary(progress)?;
        let upstream = upstream_dir(opts, progress)?;
        Self::start_with(&binary, upstream.as_deref(), opts, progress, false)
    }

    /// Start in its own process group so it outlives this process (`aiconform cluster up`).
    pub fn start_detached(
        opts: &EmbeddedOptions,
        progress: &dyn Fn(&str),
    ) -> Result<Self, ClusterError> {
        let binary = ensure_binary(progress)?;
        let upstream = upstream_dir(opts, progress)?;
        Self::start_with(&binary, upstream.as_deref(), opts, progress, true)
    }

    fn start_with(
        binary: &Path,
        upstream: Option<&Path>,
        opts: &EmbeddedOptions,
        progress: &dyn Fn(&str),
        detached: bool,
    ) -> Result<Self, ClusterError> {
        let io = |context: String| move |source| ClusterError::Io { context, source };
        let (scratch, state_dir) = match &opts.data_dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(io(format!("cannot create {}", d.display())))?;
                (None, d.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("aiconform-cluster-")
                    .tempdir()
                    .map_err(io("cannot create a temp dir".into()))?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let ready_file = state_dir.join("ready");
        let _ = std::fs::remove_file(&ready_file);
        let stdout_log = state_dir.join("testcluster.out");
        let out = File::create(&stdout_log)
            .map_err(io(format!("cannot create {}", stdout_log.display())))?;
        let err = out
            .try_clone()
            .map_err(io("cannot duplicate log handle".into()))?;

        let mut cmd = Command::new(binary);
        cmd.arg("--ready-file").arg(&ready_file);
        cmd.arg(format!("--gang={}", opts.gang));
        if !opts.device_class {
            cmd.arg("--no-deviceclass");
        }
        cmd.args(&opts.extra_args);
        if let Some(n) = opts.nodes {
            cmd.arg("--nodes").arg(n.to_string());
        }
        if let Some(p) = &opts.profile {
            cmd.arg("--profile").arg(p);
        }
        if let Some(d) = &opts.data_dir {
            cmd.arg("--data-dir").arg(d);
            cmd.arg("--kubeconfig").arg(d.join("kubeconfig"));
        }
        if let Some(pid) = opts.parent_pid {
            cmd.arg("--parent-pid").arg(pid.to_string());
        }
        for (repo, binary) in &opts.run_images {
            cmd.arg("--run-image")
                .arg(format!("{repo}={}", binary.display()));
        }
        cmd.arg("--start-timeout")
            .arg(format!("{}s", opts.start_timeout.as_secs()));
        cmd.arg(format!("--real-node={}", opts.real_node.flag()));
        for archive in &opts.image_archives {
            cmd.arg("--image-archive").arg(archive);
        }
        if let Some(dir) = upstream {
            // Real software binds wildcard addresses: each pod needs its own network.
            cmd.arg("--upstream-dir").arg(dir).arg("--pod-netns");
            if !opts.install_stack {
                cmd.arg("--upstream-images-only");
            }
        }
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        if detached {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd
            .spawn()
            .map_err(io(format!("cannot start {}", binary.display())))?;
        let pid = child.id();
        let mut running = RunningCluster {
            child: Some(child),
            pid,
            kubeconfig: PathBuf::new(),
            log_file: state_dir.join("cluster.log"),
            real_node: Err("not reported".into()),
            _scratch: scratch,
        };
        let kubeconfig =
            running.wait_ready(&ready_file, &stdout_log, opts.start_timeout, progress)?;
        running.kubeconfig = kubeconfig;
        running.real_node = std::fs::read_to_string(&stdout_log)
            .ok()
            .and_then(|text| text.lines().find_map(parse_real_node_line))
            .unwrap_or_else(|| Err("the cluster did not report a real node".into()));
        if detached {
            running.child = None;
        }
        Ok(running)
    }

    /// Waits for the ready file, following the cluster's progress lines. The cluster writes
    /// the file itself once every component is ready; we check at a short interval and stop
    /// early if the process dies.
    fn wait_ready(
        &mut self,
        ready_file: &Path,
        stdout_log: &Path,
        timeout: Duration,
        progress: &dyn Fn(&str),
    ) -> Result<PathBuf, ClusterError> {
        let deadline = Instant::now() + timeout;
        let mut last_line = String::new();
        loop {
            if let Ok(content) = std::fs::read_to_string(ready_file) {
                let path = content.trim();
                if !path.is_empty() {
                    return Ok(PathBuf::from(path));
                }
            }
            if let Some(line) = last_nonempty_line(stdout_log)
                && line != last_line
            {
                progress(&line);
                last_line = line;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(ClusterError::NotReady {
                    message: format!("the cluster process exited ({status})"),
                    log_tail: tail(stdout_log, 20),
                });
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(ClusterError::NotReady {
                    message: format!("not ready after {}s", timeout.as_secs()),
                    log_tail: tail(stdout_log, 20),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within 20 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = terminate_pid(child.id(), Duration::from_secs(20));
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RunningCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Send SIGTERM and wait for the process to go away; SIGKILL after `grace`.
/// Returns true if the process was running.
pub fn terminate_pid(pid: u32, grace: Duration) -> bool {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let pid = Pid::from_raw(pid as i32);
    if kill(pid, Signal::SIGTERM).is_err() {
        return false;
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !pid_alive(pid.as_raw() as u32) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = kill(pid, Signal::SIGKILL);
    true
}

/// True if a process with this pid exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3 after the parenthesised command name is the state; Z is a zombie.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// The cluster's `REAL-NODE on NAME IP` / `REAL-NODE off: REASON` line.
pub fn parse_real_node_line(line: &str) -> Option<Result<String, String>> {
    let rest = line.trim().strip_prefix("REAL-NODE ")?;
    if let Some(on) = rest.strip_prefix("on ") {
        return Some(Ok(on
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()));
    }
    Some(Err(rest
        .strip_prefix("off:")
        .unwrap_or(rest)
        .trim()
        .to_string()))
}

fn last_nonempty_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
