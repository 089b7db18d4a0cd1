//! `paasm:platform/state`: persistent key/value bytes scoped to one service on one node.
//!
//! [`StateStore`] keeps the values in SQLite (one table, keyed by scope and key) and serves
//! reads from an in-memory copy, since this process is the only writer of its scope. A call's
//! writes are buffered in its [`PlatformCtx`] (reads see them) and applied in one transaction
//! when the call returns normally, so a trap never leaves half of a call's writes behind.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, RwLock};

use rusqlite::{Connection, params};

use super::PlatformCtx;
use crate::engine::platform_bindings::state::Host;

/// A failure of the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("state database write failed: {0}")]
    Write(#[from] rusqlite::Error),
}

/// The persistent state of one service scope.
pub struct StateStore {
    scope: String,
    db: Mutex<Connection>,
    values: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl StateStore {
    /// Opens (creating if needed) the database at `path` and loads the values of `scope`.
    pub fn open(path: &Path, scope: &str) -> Result<Self, StateError> {
        let open_error = |source| StateError::Open {
            path: path.display().to_string(),
            source,
        };
        let db = Connection::open(path).map_err(open_error)?;
        Self::init(db, scope).map_err(open_error)
    }

    /// A store that lives only as long as the process (for tools and tests).
    pub fn in_memory(scope: &str) -> Result<Self, StateError> {
        let db = Connection::open_in_memory().map_err(|source| StateError::Open {
            path: ":memory:".into(),
            source,
        })?;
        Self::init(db, scope).map_err(|source| StateError::Open {
            path: ":memory:".into(),
            source,
        })
    }

    fn init(db: Connection, scope: &str) -> Result<Self, rusqlite::Error> {
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS state (
                scope TEXT NOT NULL,
                key TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (scope, key)
            )",
        )?;
        let mut values = BTreeMap::new();
        {
            let mut stmt = db.prepare("SELECT key, value FROM state WHERE scope = ?1")?;
            let rows = stmt.query_map(params![scope], |row| Ok((row.get(0)?, row.get(1)?)))?;
            for row in rows {
                let (key, value): (String, Vec<u8>) = row?;
                values.insert(key, value);
            }
        }
        Ok(Self {
            scope: scope.to_string(),
            db: Mutex::new(db),
            values: RwLock::new(values),
        })
    }

    /// The committed value of `key`.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.values
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// The committed keys starting with `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.values
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Applies a batch of writes (`None` deletes) in one transaction.
    pub fn apply(&self, writes: BTreeMap<String, Option<Vec<u8>>>) -> Result<(), StateError> {
        let mut db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        let tx = db.transaction()?;
        for (key, value) in &writes {
            match value {
                Some(value) => tx.execute(
                    "INSERT INTO state (scope, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value",
                    params![self.scope, key, value],
                )?,
                None => tx.execute(
                    "DELETE FROM state WHERE scope = ?1 AND key = ?2",
                    params![self.scope, key],
                )?,
            };
        }
        tx.commit()?;
        let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
        for (key, value) in writes {
            match value {
                Some(value) => values.insert(key, value),
                None => values.remove(&key),
            };
        }
        Ok(())
    }
}

impl Host for PlatformCtx {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        if let Some(pending) = self.pending.get(&key) {
            return Ok(pending.clone());
        }
        Ok(self.host.state.get(&key))
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<()> {
        self.pending.insert(key, Some(value));
        Ok(())
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.pending.insert(key, None);
        Ok(())
    }

    fn keys(&mut self, prefix: String) -> wasmtime::Result<Vec<String>> {
        let mut keys: std::collections::BTreeSet<String> =
            self.host.state.keys(&prefix).into_iter().collect();
        for (key, value) in self.pending.range(prefix.clone()..) {
            if !key.starts_with(&prefix) {
                break;
            }
            match value {
                Some(_) => keys.insert(key.clone()),
                None => keys.remove(key),
            };
        }
        Ok(keys.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_survive_reopening_and_scopes_are_separate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let a = StateStore::open(&path, "a").unwrap();
            let mut writes = BTreeMap::new();
            writes.insert("k1".to_string(), Some(b"v1".to_vec()));
            writes.insert("k2".to_string(), Some(b"v2".to_vec()));
            a.apply(writes).unwrap();
            let mut delete = BTreeMap::new();
            delete.insert("k2".to_string(), None);
            a.apply(delete).unwrap();
        }
        let a = StateStore::open(&path, "a").unwrap();
        assert_eq!(a.get("k1"), Some(b"v1".to_vec()));
        assert_eq!(a.get("k2"), None);
        assert_eq!(a.keys("k"), vec!["k1".to_string()]);
        let b = StateStore::open(&path, "b").unwrap();
        assert_eq!(b.get("k1"), None);
    }
}
