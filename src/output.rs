//! Writing results: atomically to files, or to stdout with `-`.

use std::io::Write;
use std::path::Path;

/// Write `bytes` to `path` via a temp file in the same directory and a rename, so readers
/// never see a half-written file and a failure leaves the old file (or nothing) in place.
/// Missing parent directories are created. No fsync: it is atomic against failures and
/// concurrent readers, not durable across a power loss (an fsync costs more than the whole
/// command on a busy disk).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// `-` means stdout; anything else is a file written atomically.
pub fn write_target(target: &str, bytes: &[u8]) -> std::io::Result<()> {
    if target == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()
    } else {
        write_atomic(Path::new(target), bytes)
    }
}

/// Output encodings offered by commands that emit documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    /// The explicit choice, else guessed from the file extension, else YAML.
    pub fn resolve(explicit: Option<Format>, target: &str) -> Format {
        explicit.unwrap_or(if target.ends_with(".json") {
            Format::Json
        } else {
            Format::Yaml
        })
    }

    pub fn render<T: serde::Serialize>(self, value: &T) -> Result<String, String> {
        match self {
            Format::Yaml => crate::yaml::to_string(value).map_err(|e| e.to_string()),
            Format::Json => serde_json::to_string_pretty(value)
                .map(|mut s| {
                    s.push('\n');
                    s
                })
                .map_err(|e| e.to_string()),
        }
    }
}
