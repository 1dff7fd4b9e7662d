//! How a snapshot is laid out in ConfigMaps, which hold at most 1 MiB each.
//!
//! A snapshot that fits is stored as text under `snapshot.yaml`, readable with `kubectl`. A
//! larger one is gzipped into `binaryData` under `snapshot.yaml.gz`; when even that is too
//! large, the compressed bytes are split over the named ConfigMap and `<name>-part-N`
//! ConfigMaps. The head ConfigMap says how many parts there are and the sha256 of the
//! compressed whole, so a reader never stitches together parts of two different writes.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use sha2::{Digest, Sha256};

/// Key of a plain-text snapshot.
pub const TEXT_KEY: &str = "snapshot.yaml";
/// Key of a gzipped snapshot (or of one part of it).
pub const GZIP_KEY: &str = "snapshot.yaml.gz";
/// Annotation on the head ConfigMap: number of ConfigMaps the compressed snapshot spans.
pub const PARTS_ANNOTATION: &str = "aiconform.dev/snapshot-parts";
/// Annotation on the head ConfigMap: sha256 of the whole compressed snapshot.
pub const DIGEST_ANNOTATION: &str = "aiconform.dev/snapshot-sha256";
/// Label on part ConfigMaps: the head ConfigMap's name.
pub const PART_OF_LABEL: &str = "aiconform.dev/snapshot-of";

/// Payload bytes per ConfigMap: under the API server's 1 MiB limit with room for metadata
/// and for base64 growth of `binaryData` in the request.
const PAYLOAD_MAX_BYTES: usize = 768 * 1024;

/// What one ConfigMap of a stored snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// `name` for the head, `name-part-N` for the others.
    pub name: String,
    pub data: BTreeMap<String, String>,
    pub binary_data: BTreeMap<String, Vec<u8>>,
    pub annotations: BTreeMap<String, String>,
    /// Set on parts after the head.
    pub part_of: Option<String>,
}

/// A stored snapshot that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("ConfigMap {name} has neither `{TEXT_KEY}` nor `{GZIP_KEY}`")]
    Empty { name: String },
    #[error("ConfigMap {name}: {message}")]
    Invalid { name: String, message: String },
    #[error(
        "the parts of {name} do not add up to the snapshot written (sha256 differs); it may be being rewritten: read it again"
    )]
    Digest { name: String },
}

/// Name of the `index`th part (1-based; the head is part 0).
pub fn part_name(head: &str, index: usize) -> String {
    format!("{head}-part-{index}")
}

/// Lay out `text` over as few ConfigMaps as it needs.
pub fn encode(name: &str, text: &str) -> Vec<Part> {
    if text.len() <= PAYLOAD_MAX_BYTES {
        return vec![Part {
            name: name.into(),
            data: [(TEXT_KEY.to_string(), text.to_string())].into(),
            binary_data: BTreeMap::new(),
            annotations: BTreeMap::new(),
            part_of: None,
        }];
    }
    let compressed = gzip(text.as_bytes());
    let chunks: Vec<&[u8]> = compressed.chunks(PAYLOAD_MAX_BYTES).collect();
    let annotations: BTreeMap<String, String> = [
        (PARTS_ANNOTATION.to_string(), chunks.len().to_string()),
        (
            DIGEST_ANNOTATION.to_string(),
            hex(&Sha256::digest(&compressed)),
        ),
    ]
    .into();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| Part {
            name: if i == 0 {
                name.into()
            } else {
                part_name(name, i)
            },
            data: BTreeMap::new(),
            binary_data: [(GZIP_KEY.to_string(), chunk.to_vec())].into(),
            annotations: if i == 0 {
                annotations.clone()
            } else {
                BTreeMap::new()
            },
            part_of: (i > 0).then(|| name.to_string()),
        })
        .collect()
}

/// How many ConfigMaps the snapshot whose head is `head` spans (1 when not split).
pub fn parts_count(head: &Part) -> Result<usize, LayoutError> {
    match head.annotations.get(PARTS_ANNOTATION) {
        None => Ok(1),
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=4096).contains(n))
            .ok_or_else(|| LayoutError::Invalid {
                name: head.name.clone(),
                message: format!("annotation {PARTS_ANNOTATION} is `{n}`, not a part count"),
            }),
    }
}

/// The snapshot text from its ConfigMaps, head first.
pub fn decode(parts: &[Part]) -> Result<String, LayoutError> {
    let Some(head) = parts.first() else {
        return Err(LayoutError::Empty {
            name: String::new(),
        });
    };
    if let Some(text) = head.data.get(TEXT_KEY) {
        return Ok(text.clone());
    }
    let mut compressed = Vec::new();
    for part in parts {
        let chunk = part
            .binary_data
            .get(GZIP_KEY)
            .ok_or_else(|| LayoutError::Empty {
                name: part.name.clone(),
            })?;
        compressed.extend_from_slice(chunk);
    }
    if let Some(want) = head.annotations.get(DIGEST_ANNOTATION)
        && *want != hex(&Sha256::digest(&compressed))
    {
        return Err(LayoutError::Digest {
            name: head.name.clone(),
        });
    }
    gunzip(&compressed, super::MAX_SNAPSHOT_BYTES).map_err(|message| LayoutError::Invalid {
        name: head.name.clone(),
        message,
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Decompress, refusing output over `limit` bytes (a gzip bomb stops there).
fn gunzip(bytes: &[u8], limit: usize) -> Result<String, String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .take(limit as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("not a gzipped UTF-8 snapshot ({e})"))?;
    if text.len() > limit {
        return Err(format!("decompresses to over {limit} bytes"));
    }
    Ok(text)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text that compresses poorly, like the GPU UUIDs of an agent snapshot.
    fn incompressible(len: usize) -> String {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b'a' + (state % 26) as u8)
            })
            .collect()
    }

    #[test]
    fn small_snapshots_stay_plain_text() {
        let parts = encode("snap", "kind: Snapshot\n");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].data[TEXT_KEY], "kind: Snapshot\n");
        assert_eq!(decode(&parts).unwrap(), "kind: Snapshot\n");
    }

    #[test]
    fn large_snapshots_are_gzipped_into_one_configmap() {
        let text = "- name: gpu-node\n".repeat(200_000);
        let parts = encode("snap", &text);
        assert_eq!(parts.len(), 1);
        assert!(parts[0].data.is_empty());
        assert!(parts[0].binary_data[GZIP_KEY].len() < PAYLOAD_MAX_BYTES);
        assert_eq!(parts_count(&parts[0]).unwrap(), 1);
        assert_eq!(decode(&parts).unwrap(), text);
    }

    #[test]
    fn incompressible_snapshots_are_split_and_stitched_back() {
        let text = incompressible(3 * 1024 * 1024);
        let parts = encode("snap", &text);
        assert!(parts.len() >= 2, "{}", parts.len());
        assert_eq!(parts_count(&parts[0]).unwrap(), parts.len());
        assert_eq!(parts[1].name, "snap-part-1");
        assert_eq!(parts[1].part_of.as_deref(), Some("snap"));
        assert!(
            parts.iter().all(|p| {
                p.binary_data.values().map(Vec::len).sum::<usize>() <= PAYLOAD_MAX_BYTES
            })
        );
        assert_eq!(decode(&parts).unwrap(), text);
    }

    #[test]
    fn a_part_from_another_write_is_refused() {
        let mut parts = encode("snap", &incompressible(2 * 1024 * 1024));
        let other = encode("snap", &incompressible(2 * 1024 * 1024 + 1));
        parts[1] = other[1].clone();
        assert_eq!(
            decode(&parts).unwrap_err(),
            LayoutError::Digest {
                name: "snap".into()
            }
        );
    }

    #[test]
    fn a_bad_part_count_is_named() {
        let mut parts = encode("snap", &incompressible(2 * 1024 * 1024));
        parts[0]
            .annotations
            .insert(PARTS_ANNOTATION.into(), "many".into());
        let err = parts_count(&parts[0]).unwrap_err().to_string();
        assert!(err.contains("snapshot-parts is `many`"), "{err}");
    }
}
