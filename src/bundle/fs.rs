//! The bundle's I/O: writing a directory atomically, packing a deterministic tar.gz, and
//! verifying a directory against its `bundle.yaml`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use super::error::BundleError;
use super::model::{BUNDLE_API_VERSION, BUNDLE_FILE, BUNDLE_KIND, BundleManifest, sha256_hex};
use super::sign::{self, SIGNATURE_FILE};
use super::{Bundle, BundleFile};

/// Modification time of every tar entry: 2000-01-01T00:00:00Z.
pub const TAR_MTIME: u64 = 946_684_800;

/// A bundle path must be relative, `/`-separated, without empty, `.` or `..` segments.
/// A directory under the system's temporary directory named `<prefix>…`, removed when dropped.
pub fn temp_dir(prefix: &str) -> Result<tempfile::TempDir, BundleError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| {
            BundleError::io(
                "cannot create a temporary directory in",
                &std::env::temp_dir(),
                e,
            )
        })
}

pub fn check_bundle_path(path: &str) -> Result<(), BundleError> {
    let err = |reason: &str| BundleError::UnsafePath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.is_empty() {
        return Err(err("it is empty"));
    }
    if path.starts_with('/') {
        return Err(err("it is absolute"));
    }
    if path.contains('\\') || path.contains('\0') {
        return Err(err("it contains a backslash or NUL"));
    }
    for seg in path.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(err(
                "it must stay inside the bundle (no empty, `.` or `..` segments)",
            ));
        }
    }
    Ok(())
}

fn rel_to_path(root: &Path, rel: &str) -> PathBuf {
    let mut p = root.to_path_buf();
    for seg in rel.split('/') {
        p.push(seg);
    }
    p
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// Every directory the files need, parents before children (a parent sorts before its
/// children), each once.
fn tree_dirs(files: &BTreeMap<String, BundleFile>) -> BTreeSet<&str> {
    files
        .keys()
        .flat_map(|rel| rel.match_indices('/').map(|(i, _)| &rel[..i]))
        .collect()
}

#[cfg(unix)]
fn write_file(path: &Path, f: &BundleFile) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(&f.content)?;
    // On the open handle: the mode is exact whatever the umask, without another path lookup.
    file.set_permissions(std::fs::Permissions::from_mode(if f.executable {
        0o755
    } else {
        0o644
    }))
}

#[cfg(not(unix))]
fn write_file(path: &Path, f: &BundleFile) -> std::io::Result<()> {
    std::fs::write(path, &f.content)
}

/// Write the files into `root`, an empty directory: each directory created once, then each
/// file created, written and given its mode through one handle.
fn write_tree(root: &Path, files: &BTreeMap<String, BundleFile>) -> Result<(), BundleError> {
    for rel in tree_dirs(files) {
        let dir = rel_to_path(root, rel);
        std::fs::create_dir(&dir)
            .map_err(|e| BundleError::io("cannot create directory", &dir, e))?;
    }
    for (rel, f) in files {
        let path = rel_to_path(root, rel);
        write_file(&path, f).map_err(|e| BundleError::io("cannot write", &path, e))?;
    }
    set_mode(root, 0o755).map_err(|e| BundleError::io("cannot set permissions of", root, e))
}

/// What is at the output path now.
enum Existing {
    Nothing,
    EmptyDir,
    NonEmptyDir,
}

fn inspect_output(dir: &Path) -> Result<Existing, BundleError> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(BundleError::OutputRefused {
            dir: dir.display().to_string(),
            reason: "it is a symbolic link".into(),
        }),
        Ok(m) if m.is_dir() => {
            let mut entries =
                std::fs::read_dir(dir).map_err(|e| BundleError::io("cannot read", dir, e))?;
            Ok(if entries.next().is_none() {
                Existing::EmptyDir
            } else {
                Existing::NonEmptyDir
            })
        }
        Ok(_) => Err(BundleError::OutputNotDirectory {
            path: dir.display().to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Existing::Nothing),
        Err(e) => Err(BundleError::io("cannot inspect", dir, e)),
    }
}

/// `--force` replaces a directory; never the current directory, one of its ancestors, or
/// the home directory.
fn check_replaceable(dir: &Path) -> Result<(), BundleError> {
    let canon =
        std::fs::canonicalize(dir).map_err(|e| BundleError::io("cannot resolve", dir, e))?;
    let refuse = |reason: &str| BundleError::OutputRefused {
        dir: dir.display().to_string(),
        reason: reason.to_string(),
    };
    if let Ok(cwd) = std::env::current_dir().and_then(std::fs::canonicalize)
        && cwd.starts_with(&canon)
    {
        return Err(refuse("it is the current directory or one of its parents"));
    }
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from)
        && std::fs::canonicalize(&home).is_ok_and(|h| h == canon)
    {
        return Err(refuse("it is the home directory"));
    }
    Ok(())
}

impl Bundle {
    /// Write the bundle to `dir`: into a temp dir beside it, then renamed into place, so a
    /// failure never leaves a half bundle. A non-empty `dir` is refused unless `force`, which
    /// replaces it entirely.
    pub fn write_to(&self, dir: &Path, force: bool) -> Result<(), BundleError> {
        for rel in self.files.keys() {
            check_bundle_path(rel)?;
        }
        let existing = inspect_output(dir)?;
        if let Existing::NonEmptyDir = existing {
            if !force {
                return Err(BundleError::OutputNotEmpty {
                    dir: dir.display().to_string(),
                });
            }
            check_replaceable(dir)?;
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .map_err(|e| BundleError::io("cannot create directory", &parent, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".aiconform-bundle-")
            .tempdir_in(&parent)
            .map_err(|e| BundleError::io("cannot create a temporary directory in", &parent, e))?;
        // On error the TempDir is dropped and removes what was written.
        write_tree(tmp.path(), &self.files)?;

        match existing {
            Existing::Nothing => {}
            Existing::EmptyDir => {
                std::fs::remove_dir(dir).map_err(|e| BundleError::io("cannot replace", dir, e))?
            }
            Existing::NonEmptyDir => {
                // Move the old bundle aside (inside a temp dir that removes it when dropped),
                // move the new one in, and put the old one back if that fails.
                let trash = tempfile::Builder::new()
                    .prefix(".aiconform-bundle-old-")
                    .tempdir_in(&parent)
                    .map_err(|e| {
                        BundleError::io("cannot create a temporary directory in", &parent, e)
                    })?;
                let old = trash.path().join("old");
                std::fs::rename(dir, &old)
                    .map_err(|e| BundleError::io("cannot move aside", dir, e))?;
                if let Err(e) = std::fs::rename(tmp.path(), dir) {
                    let _ = std::fs::rename(&old, dir);
                    return Err(BundleError::io("cannot move the new bundle to", dir, e));
                }
                let _ = tmp.keep();
                drop(trash);
                return Ok(());
            }
        }
        std::fs::rename(tmp.path(), dir)
            .map_err(|e| BundleError::io("cannot move the new bundle to", dir, e))?;
        let _ = tmp.keep();
        Ok(())
    }

    /// A gzip-compressed tar of the bundle: entries sorted by path, directories first, fixed
    /// mtime/uid/gid/modes, so equal bundles give equal bytes.
    pub fn to_tar_gz(&self) -> Result<Vec<u8>, BundleError> {
        let tar_err = |e: std::io::Error| BundleError::Encode {
            what: "bundle archive".into(),
            message: e.to_string(),
        };
        let mut entries: BTreeMap<String, Option<&BundleFile>> = BTreeMap::new();
        for (rel, f) in &self.files {
            check_bundle_path(rel)?;
            let mut prefix = String::new();
            let segs: Vec<&str> = rel.split('/').collect();
            for seg in &segs[..segs.len() - 1] {
                prefix.push_str(seg);
                prefix.push('/');
                entries.entry(prefix.clone()).or_insert(None);
            }
            entries.insert(rel.clone(), Some(f));
        }
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(gz);
        builder.mode(tar::HeaderMode::Deterministic);
        for (path, file) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mtime(TAR_MTIME);
            header.set_uid(0);
            header.set_gid(0);
            match file {
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    builder
                        .append_data(&mut header, &path, std::io::empty())
                        .map_err(tar_err)?;
                }
                Some(f) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(if f.executable { 0o755 } else { 0o644 });
                    header.set_size(f.content.len() as u64);
                    builder
                        .append_data(&mut header, &path, f.content.as_slice())
                        .map_err(tar_err)?;
                }
            }
        }
        let gz = builder.into_inner().map_err(tar_err)?;
        gz.finish().map_err(tar_err)
    }

    /// Read an archive written by [`Bundle::to_tar_gz`]. Only regular files and directories
    /// with safe bundle paths are accepted; `origin` names the archive in errors.
    pub fn from_tar_gz(bytes: &[u8], origin: &str) -> Result<Bundle, BundleError> {
        let files = Self::files_from_tar_gz(bytes, origin)?;
        if !files.files.contains_key(BUNDLE_FILE) {
            return Err(not_a_bundle(
                Path::new(origin),
                format!("no {BUNDLE_FILE} in the archive"),
            ));
        }
        Ok(files)
    }

    /// The files of an archive written by [`Bundle::to_tar_gz`], whatever they are (no
    /// `bundle.yaml` needed): for other artifacts packed the same way.
    pub fn files_from_tar_gz(bytes: &[u8], origin: &str) -> Result<Bundle, BundleError> {
        let bad = |reason: String| BundleError::NotABundle {
            dir: origin.to_string(),
            reason,
        };
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        let mut files = BTreeMap::new();
        let entries = archive
            .entries()
            .map_err(|e| bad(format!("not a tar.gz archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(format!("corrupt archive: {e}")))?;
            let path = entry
                .path()
                .map_err(|e| bad(format!("corrupt archive: {e}")))?
                .to_string_lossy()
                .into_owned();
            match entry.header().entry_type() {
                tar::EntryType::Directory => continue,
                tar::EntryType::Regular => {}
                other => {
                    return Err(bad(format!(
                        "{path} is a {other:?} entry; a bundle holds only files"
                    )));
                }
            }
            check_bundle_path(&path)?;
            let executable = entry.header().mode().unwrap_or(0o644) & 0o100 != 0;
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content)
                .map_err(|e| bad(format!("cannot read {path}: {e}")))?;
            if files
                .insert(
                    path.clone(),
                    BundleFile {
                        content,
                        executable,
                    },
                )
                .is_some()
            {
                return Err(bad(format!("{path} appears twice")));
            }
        }
        Ok(Bundle { files })
    }

    /// Add `bundle.yaml.sig`: the signature of `bundle.yaml` with `key`.
    pub fn sign(&mut self, key: &p256::ecdsa::SigningKey) -> Result<(), BundleError> {
        let manifest = self
            .files
            .get(BUNDLE_FILE)
            .ok_or_else(|| not_a_bundle(Path::new("(in memory)"), format!("no {BUNDLE_FILE}")))?;
        let signature = sign::sign(key, &manifest.content);
        self.files.insert(
            SIGNATURE_FILE.to_string(),
            BundleFile {
                content: signature.into_bytes(),
                executable: false,
            },
        );
        Ok(())
    }
}

/// Check `DIR/bundle.yaml.sig` against `DIR/bundle.yaml` with the public key at `key_path`.
/// Together with [`verify`] (every file against the hashes in `bundle.yaml`) this proves
/// the whole bundle is as signed.
pub fn verify_signature(dir: &Path, key_path: &Path) -> Result<(), BundleError> {
    let key_pem = std::fs::read_to_string(key_path)
        .map_err(|e| BundleError::io("cannot read public key", key_path, e))?;
    let key = sign::parse_public_key(&key_pem, &key_path.display().to_string())?;
    let manifest_path = dir.join(BUNDLE_FILE);
    let manifest = std::fs::read(&manifest_path)
        .map_err(|e| BundleError::io("cannot read", &manifest_path, e))?;
    let sig_path = dir.join(SIGNATURE_FILE);
    let signature = match std::fs::read(&sig_path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BundleError::Unsigned {
                dir: dir.display().to_string(),
            });
        }
        Err(e) => return Err(BundleError::io("cannot read", &sig_path, e)),
    };
    sign::verify(
        &key,
        &manifest,
        &signature,
        &sig_path.display().to_string(),
        &manifest_path.display().to_string(),
        &key_path.display().to_string(),
    )?;
    Ok(())
}

/// A listed file whose content (or kind) differs from `bundle.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    pub path: String,
    pub reason: String,
}

/// The result of [`verify`]: every difference between a directory and its `bundle.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    pub dir: PathBuf,
    pub manifest: BundleManifest,
    /// Files listed and found unchanged.
    pub ok: usize,
    pub changed: Vec<FileProblem>,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub signature: SignatureState,
}

/// What is known of a bundle's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureState {
    /// No `bundle.yaml.sig`.
    Unsigned,
    /// `bundle.yaml.sig` is there but was not checked (that needs the public key,
    /// [`verify_signature`]); until it is, matching `bundle.yaml` proves nothing, since
    /// `bundle.yaml` itself may have been edited.
    NotChecked,
    /// Checked with this public key.
    Valid { key: String },
}

impl VerifyReport {
    /// Check the signature with the public key at `key` (see [`verify_signature`]) and
    /// record it as valid.
    pub fn check_signature(&mut self, key: &Path) -> Result<(), BundleError> {
        verify_signature(&self.dir, key)?;
        self.signature = SignatureState::Valid {
            key: key.display().to_string(),
        };
        Ok(())
    }
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }

    pub fn problem_count(&self) -> usize {
        self.changed.len() + self.missing.len() + self.extra.len()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        if self.is_ok() {
            let what = format!(
                "{} files match {BUNDLE_FILE} (recipe {} {}, aiconform {})",
                self.ok, m.recipe.name, m.recipe.digest, m.tool_version
            );
            return match &self.signature {
                SignatureState::Unsigned => {
                    write!(f, "bundle {} is intact: {what}", self.dir.display())
                }
                SignatureState::NotChecked => write!(
                    f,
                    "bundle {}: {what}; signed, signature not checked (pass --key): {BUNDLE_FILE} itself may have been edited",
                    self.dir.display()
                ),
                SignatureState::Valid { key } => write!(
                    f,
                    "bundle {} is intact and signed: {what}; signature {SIGNATURE_FILE} is valid for {key}",
                    self.dir.display()
                ),
            };
        }
        writeln!(
            f,
            "bundle {} does not match {BUNDLE_FILE}: {} changed, {} missing, {} extra ({} files intact)",
            self.dir.display(),
            self.changed.len(),
            self.missing.len(),
            self.extra.len(),
            self.ok
        )?;
        for c in &self.changed {
            writeln!(f, "  changed: {} ({})", c.path, c.reason)?;
        }
        for p in &self.missing {
            writeln!(f, "  missing: {p}")?;
        }
        for p in &self.extra {
            writeln!(f, "  extra:   {p}")?;
        }
        write!(
            f,
            "re-render the bundle with `aiconform bundle --force` to restore it"
        )
    }
}

fn not_a_bundle(dir: &Path, reason: impl Into<String>) -> BundleError {
    BundleError::NotABundle {
        dir: dir.display().to_string(),
        reason: reason.into(),
    }
}

/// Read and sanity-check `DIR/bundle.yaml`: kind, version, and that every path it names is
/// a safe bundle path listed among its files.
pub fn read_manifest(dir: &Path) -> Result<BundleManifest, BundleError> {
    let path = dir.join(BUNDLE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(not_a_bundle(dir, format!("{BUNDLE_FILE} not found")));
        }
        Err(e) => return Err(BundleError::io("cannot read", &path, e)),
    };
    let manifest: BundleManifest = crate::yaml::from_slice(&bytes, &path.display().to_string())
        .map_err(|e| not_a_bundle(dir, e.to_string()))?;
    if manifest.kind != BUNDLE_KIND || manifest.api_version != BUNDLE_API_VERSION {
        return Err(not_a_bundle(
            dir,
            format!(
                "{BUNDLE_FILE} has kind `{}` and apiVersion `{}`, expected {BUNDLE_KIND} {BUNDLE_API_VERSION}",
                manifest.kind, manifest.api_version
            ),
        ));
    }
    let mut listed = BTreeSet::new();
    for f in &manifest.files {
        check_bundle_path(&f.path).map_err(|e| not_a_bundle(dir, e.to_string()))?;
        if f.path == BUNDLE_FILE || f.path == SIGNATURE_FILE {
            return Err(not_a_bundle(dir, format!("{BUNDLE_FILE} lists {}", f.path)));
        }
        if !listed.insert(f.path.as_str()) {
            return Err(not_a_bundle(dir, format!("{} is listed twice", f.path)));
        }
    }
    for c in &manifest.components {
        let refs = c
            .values
            .iter()
            .chain(&c.manifests)
            .chain(&c.chart_archive)
            .cloned()
            .chain(
                c.kustomization
                    .as_deref()
                    .map(|k| format!("{k}/kustomization.yaml")),
            );
        for r in refs {
            if !listed.contains(r.as_str()) {
                return Err(not_a_bundle(
                    dir,
                    format!(
                        "component `{}` refers to {r}, which {BUNDLE_FILE} does not list",
                        c.name
                    ),
                ));
            }
        }
    }
    Ok(manifest)
}

/// Every regular file (and anything else that is not a directory) under `root`, as bundle
/// paths. Symbolic links are reported, never followed.
fn walk(root: &Path) -> Result<BTreeMap<String, std::fs::FileType>, BundleError> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| BundleError::io("cannot read", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| BundleError::io("cannot read", &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{prefix}{name}");
            let ft = entry
                .file_type()
                .map_err(|e| BundleError::io("cannot inspect", &entry.path(), e))?;
            if ft.is_dir() {
                stack.push((entry.path(), format!("{rel}/")));
            } else {
                out.insert(rel, ft);
            }
        }
    }
    Ok(out)
}

/// Check `dir` against its `bundle.yaml`: every listed file present with the recorded
/// SHA-256 (and executable bit), and no file that is not listed.
pub fn verify(dir: &Path) -> Result<VerifyReport, BundleError> {
    let manifest = read_manifest(dir)?;
    let mut found = walk(dir)?;
    found.remove(BUNDLE_FILE);
    // The signature signs bundle.yaml, so bundle.yaml cannot list it; verify_signature checks it.
    let signed = found.get(SIGNATURE_FILE).is_some_and(|ft| ft.is_file());
    if signed {
        found.remove(SIGNATURE_FILE);
    }
    let mut changed = Vec::new();
    let mut missing = Vec::new();
    let mut ok = 0;
    for entry in &manifest.files {
        let Some(ft) = found.remove(&entry.path) else {
            missing.push(entry.path.clone());
            continue;
        };
        if !ft.is_file() {
            changed.push(FileProblem {
                path: entry.path.clone(),
                reason: if ft.is_symlink() {
                    "is a symbolic link, expected a regular file".into()
                } else {
                    "is not a regular file".into()
                },
            });
            continue;
        }
        let path = rel_to_path(dir, &entry.path);
        let bytes = std::fs::read(&path).map_err(|e| BundleError::io("cannot read", &path, e))?;
        let actual = sha256_hex(&bytes);
        if actual != entry.sha256 {
            changed.push(FileProblem {
                path: entry.path.clone(),
                reason: format!(
                    "sha256 {} but {BUNDLE_FILE} records {}",
                    short(&actual),
                    short(&entry.sha256)
                ),
            });
            continue;
        }
        if entry.executable && !is_executable(&path) {
            changed.push(FileProblem {
                path: entry.path.clone(),
                reason: "is no longer executable".into(),
            });
            continue;
        }
        ok += 1;
    }
    Ok(VerifyReport {
        dir: dir.to_path_buf(),
        manifest,
        ok,
        changed,
        missing,
        extra: found.into_keys().collect(),
        signature: if signed {
            SignatureState::NotChecked
        } else {
            SignatureState::Unsigned
        },
    })
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o100 != 0)
}

#[cfg(not(unix))]
fn is_executable(_path: &Path) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_paths() {
        for ok in ["a", "01-x/values.yaml", "a/b/c"] {
            check_bundle_path(ok).unwrap();
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a\\b",
            "a/",
        ] {
            assert!(check_bundle_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tar_is_deterministic_and_ordered() {
        let mut files = BTreeMap::new();
        files.insert(
            "b/x.yaml".to_string(),
            BundleFile {
                content: b"x".to_vec(),
                executable: false,
            },
        );
        files.insert(
            "a.sh".to_string(),
            BundleFile {
                content: b"#!/bin/sh\n".to_vec(),
                executable: true,
            },
        );
        let b = Bundle { files };
        let one = b.to_tar_gz().unwrap();
        assert_eq!(one, b.to_tar_gz().unwrap());
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(one.as_slice()));
        let entries: Vec<(String, u32, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("a.sh".to_string(), 0o755, TAR_MTIME),
                ("b/".to_string(), 0o755, TAR_MTIME),
                ("b/x.yaml".to_string(), 0o644, TAR_MTIME),
            ]
        );
    }

    #[test]
    fn tree_dirs_lists_each_directory_once_parents_first() {
        let file = || BundleFile {
            content: vec![],
            executable: false,
        };
        let files: BTreeMap<String, BundleFile> = ["a.sh", "b/x", "b/y/z", "b/y/w", "b-c/d"]
            .into_iter()
            .map(|p| (p.to_string(), file()))
            .collect();
        assert_eq!(
            tree_dirs(&files).into_iter().collect::<Vec<_>>(),
            ["b", "b-c", "b/y"]
        );
    }

    #[test]
    fn tar_refuses_unsafe_paths() {
        let mut files = BTreeMap::new();
        files.insert(
            "../evil".to_string(),
            BundleFile {
                content: vec![],
                executable: false,
            },
        );
        assert!(matches!(
            Bundle { files }.to_tar_gz(),
            Err(BundleError::UnsafePath { .. })
        ));
    }
}
