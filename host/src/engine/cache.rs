//! On-disk cache of precompiled components.
//!
//! Compiling a component costs 100 ms for a small Rust guest and tens of seconds for a Python
//! one; loading a precompiled artifact costs a fraction of a millisecond. An artifact is keyed by
//! the sha256 of the component bytes and the engine's compatibility hash (wasmtime version,
//! target and every setting that changes generated code), so a stale or foreign artifact is
//! never loaded, and it is written to a temporary file and renamed so readers never see half of
//! one.

use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Feeds `Hash` output into sha256 so the compatibility hash is stable across processes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        unreachable!("only the digest is used")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The hex sha256 of a component's bytes: the identity of a component everywhere in paasm.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A directory of precompiled components for one engine configuration.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
}

impl ComponentCache {
    /// A cache in `dir` for artifacts of `engine`.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..12]);
        Self { dir, engine_key }
    }

    fn path_for(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    /// Loads the component from the cache, or compiles it and stores the artifact.
    ///
    /// A cache that cannot be written is not an error: the component is still compiled and
    /// returned, and the reason is logged.
    pub fn load_or_compile(&self, engine: &Engine, bytes: &[u8], name: &str) -> Result<Component> {
        let digest = digest(bytes);
        let path = self.path_for(&digest);
        if path.is_file() {
            // SAFETY: the file was written by `store` below from the output of
            // `Component::serialize` for an engine with the same compatibility hash (it is in the
            // file name), and is only ever replaced atomically by rename.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    tracing::debug!(component = name, path = %path.display(), "loaded precompiled component");
                    return Ok(component);
                }
                Err(e) => {
                    tracing::warn!(component = name, path = %path.display(), "ignoring unusable precompiled component: {e:#}");
                }
            }
        }
        let started = std::time::Instant::now();
        let component = Component::new(engine, bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("failed to compile component {name}"))?;
        tracing::info!(
            component = name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled component"
        );
        if let Err(e) = self.store(&component, &path) {
            tracing::warn!(component = name, dir = %self.dir.display(), "cannot cache precompiled component: {e:#}");
        }
        Ok(component)
    }

    fn store(&self, component: &Component, path: &Path) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let artifact = component.serialize()?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(&artifact)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path)?;
        Ok(())
    }
}
