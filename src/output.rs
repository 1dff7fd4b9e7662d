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

/// Encodings of commands that print a report: a table for people, YAML or JSON for tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Yaml,
    Json,
}

impl ReportFormat {
    /// `table` through `render_table`, else the document.
    pub fn render<T: serde::Serialize>(
        self,
        value: &T,
        render_table: impl FnOnce(&T) -> String,
    ) -> Result<String, String> {
        match self {
            ReportFormat::Table => Ok(render_table(value)),
            ReportFormat::Yaml => Format::Yaml.render(value),
            ReportFormat::Json => Format::Json.render(value),
        }
    }
}

/// A plain-text table: columns padded to their widest cell (two spaces apart), the last
/// column unpadded, one line per row.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            s.push_str(cell);
            if i < last {
                s.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_pads_all_but_the_last_column() {
        let t = super::table(
            &["A", "BB", "C"],
            &[vec!["xyz".into(), "1".into(), "last".into()]],
        );
        assert_eq!(t, "A    BB  C\nxyz  1   last\n");
    }
}
