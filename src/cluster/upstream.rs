//! The upstream stack of the embedded cluster: real controllers built from their Go modules
//! by `ci/upstream/build.sh` (binaries, the images they stand for, and the manifests a
//! provider applies), installed by the cluster in place of its stand-ins.

use std::path::{Path, PathBuf};

use super::ClusterError;

/// Overrides where the upstream build is looked up.
pub const DIR_ENV: &str = "AICONFORM_UPSTREAM_DIR";

/// What serves the conformance-relevant components of the embedded cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Stack {
    /// Stand-ins written in this project (fast, and able to show faults real software cannot).
    #[default]
    Standin,
    /// Real upstream controllers where one builds here (the Prometheus Operator running the
    /// real Prometheus server, Kueue, JobSet, Kubeflow Trainer, KEDA, Karpenter's kwok
    /// provider with KWOK, Traefik's Gateway API provider); stand-ins for the rest (DCGM
    /// exporter, GPU and NIC DRA drivers, the Inference Extension gateway, custom metrics
    /// adapter, operator).
    Upstream,
}

/// One image the upstream stack runs: `REPOSITORY=BINARY VERSION [USER]` of `images.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamImage {
    pub repository: String,
    pub binary: String,
    pub version: String,
    /// The image's USER (`UID[:GID]`), empty for root.
    pub user: String,
}

/// Parse `images.txt`; a malformed line is an error naming its number.
pub fn parse_images(text: &str) -> Result<Vec<UpstreamImage>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let mapping = fields[0].split_once('=');
            match (mapping, fields.len()) {
                (Some((repo, bin)), 1..=3) if !repo.is_empty() && !bin.is_empty() => {
                    Ok(UpstreamImage {
                        repository: repo.to_string(),
                        binary: bin.to_string(),
                        version: fields.get(1).unwrap_or(&"").to_string(),
                        user: fields.get(2).unwrap_or(&"").to_string(),
                    })
                }
                _ => Err(format!(
                    "images.txt line {}: want REPOSITORY=BINARY VERSION [USER], got `{line}`",
                    i + 1
                )),
            }
        })
        .collect()
}

/// The script that builds the upstream stack, relative to the source checkout.
const BUILD_SCRIPT: &str = "ci/upstream/build.sh";

/// Source checkout this binary was built from, when it still exists.
fn source_root() -> Option<PathBuf> {
    super::source_root(BUILD_SCRIPT)
}

/// A build directory is usable when it lists its images.
fn is_build(dir: &Path) -> bool {
    dir.join("images.txt").is_file()
}

/// Where the upstream build is: `$AICONFORM_UPSTREAM_DIR`, `target/upstream` beside this
/// executable's build tree, or in the source checkout.
pub fn locate() -> Result<PathBuf, ClusterError> {
    if let Some(p) = std::env::var_os(DIR_ENV) {
        let p = PathBuf::from(p);
        return if is_build(&p) {
            Ok(p)
        } else {
            Err(ClusterError::BinaryMissing(format!(
                "{DIR_ENV}={} has no images.txt (build it with ci/upstream/build.sh)",
                p.display()
            )))
        };
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.extend(dir.ancestors().take(3).map(|d| d.join("upstream")));
    }
    if let Some(root) = source_root() {
        candidates.push(root.join("target/upstream"));
    }
    candidates.iter().find(|d| is_build(d)).cloned().ok_or_else(|| {
        ClusterError::BinaryMissing(format!(
            "upstream stack not built (looked in {}); build it with ci/upstream/build.sh (needs Go) or set {DIR_ENV}",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// Locate the upstream build, building it from the source checkout when missing or stale
/// (the script skips what is current).
pub fn ensure(progress: &dyn Fn(&str)) -> Result<PathBuf, ClusterError> {
    let Some(root) = source_root().filter(|_| std::env::var_os(DIR_ENV).is_none()) else {
        return locate();
    };
    if locate().is_err() {
        progress(
            "building the upstream stack from its Go modules (Prometheus, Prometheus Operator, Kueue, JobSet, Kubeflow Trainer, KEDA, Karpenter, KWOK, Traefik: ~40 minutes the first time)",
        );
    }
    super::run_build_script(&root, BUILD_SCRIPT)?;
    locate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_parse_and_bad_lines_are_named() {
        let text =
            "# built\nquay.io/prometheus/prometheus=prometheus/prometheus 3.16.0 65534\n\nx=y\n";
        let images = parse_images(text).expect("parse");
        assert_eq!(images.len(), 2);
        assert_eq!(images[0].repository, "quay.io/prometheus/prometheus");
        assert_eq!(images[0].binary, "prometheus/prometheus");
        assert_eq!(images[0].version, "3.16.0");
        assert_eq!(images[0].user, "65534");
        assert_eq!(images[1].version, "");
        assert_eq!(images[1].user, "");
        assert!(parse_images("a=b 1 2 3").is_err());
        let err = parse_images("ok=b 1\nno-equals 2\n").expect_err("bad line");
        assert!(err.contains("line 2"), "{err}");
        assert!(parse_images("=b 1").is_err());
    }
}
