//! The manager's embedded database: its lifecycle state, history and nodes, so that a
//! restarted manager process recovers its service.
//!
//! SQLite (one file in the manager's VAR directory). The schema is created by the migrations
//! below, tracked with `PRAGMA user_version`. Every change is one transaction: the history is
//! append-only, the node table is replaced as a whole (a service has tens of nodes, not
//! millions), so what is on disk is always a state the manager was in.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use super::state::{Lifecycle, ServiceState, StateChange};

/// Schema migrations, applied in order; `PRAGMA user_version` counts the applied ones.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE service (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE history (seq INTEGER PRIMARY KEY, time REAL NOT NULL, state TEXT NOT NULL,
                           reason TEXT NOT NULL);
     CREATE TABLE nodes (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, vmid TEXT NOT NULL,
                         ip TEXT NOT NULL, private_ip TEXT NOT NULL, cloud TEXT NOT NULL,
                         role TEXT NOT NULL, created REAL NOT NULL);",
    // Node time charged to the frontend: periods billed per node (id and creation time, so a
    // reused id starts afresh). Kept apart from `nodes`, which is replaced as a whole.
    "CREATE TABLE billing (node TEXT NOT NULL, created REAL NOT NULL, billed INTEGER NOT NULL,
                           PRIMARY KEY (node, created));",
];

/// A failure of the manager's database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("manager database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "manager database {path} was written by a newer paasm (schema {found}, this one knows {known})"
    )]
    TooNew {
        path: String,
        found: i64,
        known: usize,
    },
    #[error("manager database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("manager database holds an unknown state {0:?}")]
    BadState(String),
}

/// A node as the manager keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredNode {
    pub id: String,
    pub vmid: String,
    pub ip: String,
    pub private_ip: String,
    pub cloud: String,
    pub role: String,
    /// Seconds since the Unix epoch.
    pub created: f64,
}

/// What the database held when it was opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub lifecycle: Lifecycle,
    pub nodes: Vec<StoredNode>,
}

/// The open database.
pub struct ManagerStore {
    db: Mutex<Connection>,
}

impl ManagerStore {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| open_error(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        }
        let mut db = Connection::open(path).map_err(open_error)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        db.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        let version: i64 = db
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_error)?;
        if version as usize > MIGRATIONS.len() {
            return Err(StoreError::TooNew {
                path: path.display().to_string(),
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        let tx = db.transaction().map_err(open_error)?;
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(migration).map_err(open_error)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(open_error)?;
        }
        tx.commit().map_err(open_error)?;
        Ok(Self { db: Mutex::new(db) })
    }

    /// What was saved, or `None` for a new database.
    pub fn load(&self) -> Result<Option<Saved>, StoreError> {
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        let state: Option<String> = db
            .query_row("SELECT value FROM service WHERE key = 'state'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(state) = state else {
            return Ok(None);
        };
        let parse = |s: String| -> Result<ServiceState, StoreError> {
            serde_json::from_value(serde_json::Value::String(s.clone()))
                .map_err(|_| StoreError::BadState(s))
        };
        let mut history = Vec::new();
        let mut stmt = db.prepare("SELECT time, state, reason FROM history ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, f64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })?;
        for row in rows {
            let (time, state, reason) = row?;
            history.push(StateChange {
                time,
                state: parse(state)?,
                reason,
            });
        }
        let lifecycle = Lifecycle::restore(parse(state)?, history);
        let mut stmt = db.prepare(
            "SELECT id, vmid, ip, private_ip, cloud, role, created FROM nodes ORDER BY seq",
        )?;
        let nodes = stmt
            .query_map([], |r| {
                Ok(StoredNode {
                    id: r.get(0)?,
                    vmid: r.get(1)?,
                    ip: r.get(2)?,
                    private_ip: r.get(3)?,
                    cloud: r.get(4)?,
                    role: r.get(5)?,
                    created: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Saved { lifecycle, nodes }))
    }

    /// The periods already billed, per node (id, creation time).
    pub fn billed(&self) -> Result<Vec<(String, f64, i64)>, StoreError> {
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = db.prepare("SELECT node, created, billed FROM billing")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Records the periods billed of these nodes, in one transaction, forgetting nodes that
    /// are gone (`keep` lists the nodes still there).
    pub fn set_billed(
        &self,
        billed: &[(String, f64, i64)],
        keep: &[(String, f64)],
    ) -> Result<(), StoreError> {
        let mut db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        let tx = db.transaction()?;
        for (node, created, count) in billed {
            tx.execute(
                "INSERT INTO billing (node, created, billed) VALUES (?1, ?2, ?3)
                 ON CONFLICT (node, created) DO UPDATE SET billed = excluded.billed",
                params![node, created, count],
            )?;
        }
        let existing: Vec<(String, f64)> = {
            let mut stmt = tx.prepare("SELECT node, created FROM billing")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?
        };
        for (node, created) in existing {
            let kept = keep.iter().any(|(n, c)| *n == node && *c == created)
                || billed.iter().any(|(n, c, _)| *n == node && *c == created);
            if !kept {
                tx.execute(
                    "DELETE FROM billing WHERE node = ?1 AND created = ?2",
                    params![node, created],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Saves the lifecycle (its new history entries) and the node list, in one transaction.
    pub fn save(&self, lifecycle: &Lifecycle, nodes: &[StoredNode]) -> Result<(), StoreError> {
        let mut db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        let tx = db.transaction()?;
        tx.execute(
            "INSERT INTO service (key, value) VALUES ('state', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![lifecycle.state().as_str()],
        )?;
        let stored: i64 = tx.query_row("SELECT count(*) FROM history", [], |r| r.get(0))?;
        for (seq, change) in lifecycle.history().iter().enumerate().skip(stored as usize) {
            tx.execute(
                "INSERT INTO history (seq, time, state, reason) VALUES (?1, ?2, ?3, ?4)",
                params![
                    seq as i64,
                    change.time,
                    change.state.as_str(),
                    change.reason
                ],
            )?;
        }
        tx.execute("DELETE FROM nodes", [])?;
        for (seq, n) in nodes.iter().enumerate() {
            tx.execute(
                "INSERT INTO nodes (seq, id, vmid, ip, private_ip, cloud, role, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    seq as i64,
                    n.id,
                    n.vmid,
                    n.ip,
                    n.private_ip,
                    n.cloud,
                    n.role,
                    n.created
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::state::Operation;

    fn node(id: &str) -> StoredNode {
        StoredNode {
            id: id.into(),
            vmid: id.trim_start_matches("iaas").into(),
            ip: "127.0.0.2".into(),
            private_ip: "127.0.0.2".into(),
            cloud: "iaas".into(),
            role: "helloworld".into(),
            created: 3.5,
        }
    }

    #[test]
    fn state_history_and_nodes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("var/manager.sqlite");
        let store = ManagerStore::open(&path).unwrap();
        assert!(store.load().unwrap().is_none());
        let mut l = Lifecycle::new(1.0);
        l.begin(Operation::Startup, 2.0).unwrap();
        l.finish(Ok(()), 3.0);
        store.save(&l, &[node("iaas1")]).unwrap();
        l.begin(Operation::AddNodes, 4.0).unwrap();
        store.save(&l, &[node("iaas1"), node("iaas2")]).unwrap();
        drop(store);

        let saved = ManagerStore::open(&path).unwrap().load().unwrap().unwrap();
        assert_eq!(saved.lifecycle.state(), ServiceState::Adapting);
        assert_eq!(saved.lifecycle.history(), l.history());
        assert_eq!(saved.nodes, [node("iaas1"), node("iaas2")]);
    }
}
