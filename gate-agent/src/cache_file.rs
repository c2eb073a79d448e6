//! Loading a signed cache file (snapshot from the server, e.g. on a USB stick)
//! into the store. The file must be signed by the configured server key, or,
//! when none is configured, by the same key as the first cache ever imported.

use std::path::{Path, PathBuf};

use shared::PublicKeyBytes;
use shared::wire::{CacheSnapshot, PayloadError, SignedPayload};

use crate::store::{ImportSummary, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CacheFileError {
    #[error("cannot read cache file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cache file {path}: {source}")]
    Payload { path: PathBuf, source: PayloadError },
    #[error("configured gate.server_key is not a valid key: {0}")]
    BadServerKey(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads and checks a cache file; returns the snapshot and who signed it.
pub fn read(
    path: &Path,
    expected_signer: Option<&PublicKeyBytes>,
) -> Result<(CacheSnapshot, PublicKeyBytes), CacheFileError> {
    let bytes = std::fs::read(path).map_err(|source| CacheFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let payload_err = |source| CacheFileError::Payload {
        path: path.to_owned(),
        source,
    };
    let envelope = SignedPayload::from_file_bytes(&bytes).map_err(payload_err)?;
    let snapshot = envelope
        .open::<CacheSnapshot>(expected_signer)
        .map_err(payload_err)?;
    Ok((snapshot, envelope.signer))
}

/// The key a cache file must be signed with: the configured one, else the
/// signer of the cache already in the store (trust on first import).
pub fn expected_signer(
    configured: Option<&str>,
    store: &Store,
) -> Result<Option<PublicKeyBytes>, CacheFileError> {
    if let Some(key) = configured {
        return key
            .parse()
            .map(Some)
            .map_err(|_| CacheFileError::BadServerKey(key.to_owned()));
    }
    Ok(store.meta("signer")?.and_then(|k| k.parse().ok()))
}

/// `gate-agent cache import FILE`.
pub fn import(
    store: &mut Store,
    path: &Path,
    configured_key: Option<&str>,
    now_ms: i64,
) -> Result<ImportSummary, CacheFileError> {
    let (snapshot, signer) = read_for(store, path, configured_key)?;
    Ok(store.import_snapshot(&snapshot, &signer, now_ms)?)
}

/// What [`import_if_newer`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    Done(ImportSummary),
    /// The file is not ahead of the cache (its cursor is at most the
    /// cache's): left alone, so an old file never rolls a gate back.
    NotNewer {
        file_cursor: u64,
        cache_cursor: u64,
    },
}

/// [`import`] only when the file's snapshot is ahead of what the store
/// holds: for a start-up hook that loads a file from the boot partition or
/// a USB stick on every start.
pub fn import_if_newer(
    store: &mut Store,
    path: &Path,
    configured_key: Option<&str>,
    now_ms: i64,
) -> Result<Imported, CacheFileError> {
    let (snapshot, signer) = read_for(store, path, configured_key)?;
    if let Some(cache_cursor) = store.meta("cursor")?.and_then(|c| c.parse::<u64>().ok())
        && cache_cursor >= snapshot.cursor
    {
        return Ok(Imported::NotNewer {
            file_cursor: snapshot.cursor,
            cache_cursor,
        });
    }
    Ok(Imported::Done(
        store.import_snapshot(&snapshot, &signer, now_ms)?,
    ))
}

/// Reads a cache file signed by the key `store` expects.
fn read_for(
    store: &Store,
    path: &Path,
    configured_key: Option<&str>,
) -> Result<(CacheSnapshot, PublicKeyBytes), CacheFileError> {
    let expected = expected_signer(configured_key, store)?;
    let (snapshot, signer) = read(path, expected.as_ref())?;
    if expected.is_none() {
        tracing::warn!(signer = %signer, "no server key configured; trusting this cache's signer from now on");
    }
    Ok((snapshot, signer))
}
