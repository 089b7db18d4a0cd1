//! The resource engine's database: the instances it created (their parameters and keys) and
//! the queue of offline jobs. SQLite, one file in the data directory, migrations tracked with
//! `PRAGMA user_version`.
//!
//! The control panel passes an instance's parameters only when it creates or updates it; the
//! other operations name the instance by key, so the engine keeps each instance's parameters
//! (sensitive ones included: the file is readable by its owner only).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE instances (resource TEXT NOT NULL, parent TEXT NOT NULL, lkey TEXT NOT NULL,
                             record TEXT NOT NULL, PRIMARY KEY (resource, parent, lkey));
     CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, request TEXT NOT NULL,
                        state TEXT NOT NULL, outcome TEXT, created REAL NOT NULL,
                        finished REAL);",
];

/// A failure of the engine's database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("resource database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("resource database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("resource database holds a malformed record: {0}")]
    Record(#[from] serde_json::Error),
}

/// What the engine keeps of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The logical key as the caller gave it (not folded).
    pub key: String,
    /// The physical key, as JSON (`{"num": 3}` / `{"str": "x"}`), if any.
    pub pkey: Option<serde_json::Value>,
    /// The instance parameters (config attributes are not stored: they come from the
    /// configuration at each call).
    pub params: std::collections::BTreeMap<String, String>,
    pub suspended: bool,
}

/// A queued offline operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub request: serde_json::Value,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    pub outcome: Option<serde_json::Value>,
}

/// The open database.
pub struct InstanceStore {
    db: Mutex<Connection>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl InstanceStore {
    /// Opens (creating and migrating) the database at `path`; `None` keeps it in memory.
    pub fn open(path: Option<&Path>) -> Result<Self, StoreError> {
        let display = path.map_or("(memory)".into(), |p| p.display().to_string());
        let open_error = |source| StoreError::Open {
            path: display.clone(),
            source,
        };
        let mut db = match path {
            Some(path) => Connection::open(path),
            None => Connection::open_in_memory(),
        }
        .map_err(open_error)?;
        if let Some(path) = path {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
            db.pragma_update(None, "journal_mode", "WAL")
                .map_err(open_error)?;
            // With WAL, NORMAL keeps every committed transaction across a crash of the
            // process (only a power loss may take the last ones) at a fraction of FULL's cost.
            db.pragma_update(None, "synchronous", "NORMAL")
                .map_err(open_error)?;
        }
        let version: i64 = db
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_error)?;
        let tx = db.transaction().map_err(open_error)?;
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            tx.execute_batch(migration).map_err(open_error)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(open_error)?;
        }
        tx.commit().map_err(open_error)?;
        Ok(Self { db: Mutex::new(db) })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(
        &self,
        resource: &str,
        parent: &str,
        lkey: &str,
    ) -> Result<Option<Record>, StoreError> {
        let text: Option<String> = self
            .db()
            .query_row(
                "SELECT record FROM instances WHERE resource = ?1 AND parent = ?2 AND lkey = ?3",
                params![resource, parent, lkey],
                |r| r.get(0),
            )
            .optional()?;
        Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
    }

    pub fn put(
        &self,
        resource: &str,
        parent: &str,
        lkey: &str,
        record: &Record,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(record)?;
        self.db().execute(
            "INSERT INTO instances (resource, parent, lkey, record) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (resource, parent, lkey) DO UPDATE SET record = excluded.record",
            params![resource, parent, lkey, text],
        )?;
        Ok(())
    }

    pub fn delete(&self, resource: &str, parent: &str, lkey: &str) -> Result<(), StoreError> {
        self.db().execute(
            "DELETE FROM instances WHERE resource = ?1 AND parent = ?2 AND lkey = ?3",
            params![resource, parent, lkey],
        )?;
        Ok(())
    }

    /// The instances of `resource` under `parent`, by folded logical key.
    pub fn list(&self, resource: &str, parent: &str) -> Result<Vec<(String, Record)>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT lkey, record FROM instances WHERE resource = ?1 AND parent = ?2 ORDER BY lkey",
        )?;
        let rows = stmt.query_map(params![resource, parent], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (lkey, text) = row?;
            out.push((lkey, serde_json::from_str(&text)?));
        }
        Ok(out)
    }

    /// Every record of `resource`, whatever its parent (for allocating managed keys).
    pub fn all(&self, resource: &str) -> Result<Vec<Record>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT record FROM instances WHERE resource = ?1")?;
        let rows = stmt.query_map(params![resource], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }

    /// Whether any instance lives under the instance whose path is `path` (a prefix).
    pub fn has_children(&self, path: &str) -> Result<bool, StoreError> {
        let count: i64 = self.db().query_row(
            "SELECT count(*) FROM instances WHERE parent = ?1 OR parent LIKE ?2 ESCAPE '\\'",
            params![
                path,
                format!(
                    "{}/%",
                    path.replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                )
            ],
            |r| r.get(0),
        )?;
        Ok(count > 0)
    }

    /// Queues a job; its id.
    pub fn enqueue(&self, request: &serde_json::Value) -> Result<i64, StoreError> {
        let db = self.db();
        db.execute(
            "INSERT INTO jobs (request, state, created) VALUES (?1, 'queued', ?2)",
            params![request.to_string(), now()],
        )?;
        Ok(db.last_insert_rowid())
    }

    pub fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        let row: Option<(String, String, Option<String>)> = self
            .db()
            .query_row(
                "SELECT request, state, outcome FROM jobs WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((request, state, outcome)) = row else {
            return Ok(None);
        };
        Ok(Some(Job {
            id,
            request: serde_json::from_str(&request)?,
            state,
            outcome: outcome.map(|o| serde_json::from_str(&o)).transpose()?,
        }))
    }

    /// The oldest job not finished (a `running` one first: it was interrupted by a restart).
    pub fn next_job(&self) -> Result<Option<Job>, StoreError> {
        let id: Option<i64> = self
            .db()
            .query_row(
                "SELECT id FROM jobs WHERE state IN ('queued', 'running')
                 ORDER BY state = 'running' DESC, id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match id {
            Some(id) => self.job(id),
            None => Ok(None),
        }
    }

    pub fn set_job(
        &self,
        id: i64,
        state: &str,
        outcome: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let finished = matches!(state, "done" | "failed").then(now);
        self.db().execute(
            "UPDATE jobs SET state = ?2, outcome = ?3, finished = ?4 WHERE id = ?1",
            params![id, state, outcome.map(|o| o.to_string()), finished],
        )?;
        Ok(())
    }
}
