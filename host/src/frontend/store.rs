//! The frontend's database: users, API tokens, credits and their ledger, services.
//!
//! Two backends behind one API: SQLite (one file, the default) and PostgreSQL (for several
//! frontends behind a load balancer). Every operation is written once, as plain SQL over the
//! small [`Tx`] interface, and runs in one transaction of whichever backend is open; the SQL
//! uses `$1, $2, ...` placeholders (rewritten to `?1, ?2` for SQLite). The schema comes from
//! the same migration files for both (`migrations/*.sql`, where `{{ID}}` becomes each
//! backend's auto-incrementing key), tracked in `schema_migrations`; on PostgreSQL an advisory
//! lock keeps frontends starting at once from migrating twice.
//!
//! Both backends are driven synchronously on tokio's blocking pool (rusqlite, and the
//! `postgres` crate, the blocking face of `tokio-postgres`), so every operation is one closure
//! that either commits as a whole or changes nothing.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// The migrations, in order; the version of each is its position, from 1.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_init.sql")];

/// The advisory lock PostgreSQL frontends take while migrating ("paasm" in ASCII).
const MIGRATION_LOCK: i64 = 0x0070_6161_736d;

/// A failure of the frontend's database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "invalid database address {0:?}: expected a file path, sqlite:PATH or postgres://USER@HOST:PORT/DB"
    )]
    Address(String),
    #[error("username {0:?} is taken")]
    UserExists(String),
    #[error("not enough credit: {available} left, {needed} needed")]
    NotEnoughCredit { available: i64, needed: i64 },
    #[error("no user {0}")]
    NoUser(i64),
    #[error("database was written by a newer paasm (schema {found}, this one knows {known})")]
    TooNew { found: i64, known: i64 },
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("database: {0}")]
    Io(#[from] std::io::Error),
    #[error("database: unexpected column {column}: {message}")]
    Column { column: usize, message: String },
    #[error("database: the worker stopped: {0}")]
    Join(String),
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    #[serde(skip)]
    pub password_hash: String,
    pub admin: bool,
    pub credit: i64,
    pub created: i64,
}

/// A service as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    pub id: i64,
    pub name: String,
    pub service_type: String,
    pub state: String,
    pub reason: String,
    pub manager: String,
    pub vmid: String,
    pub cloud: String,
    pub owner: i64,
    #[serde(skip)]
    pub secret_hash: String,
    pub created: i64,
    pub changed: i64,
}

/// One change of a user's credit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    pub id: i64,
    pub service_id: Option<i64>,
    pub amount: i64,
    pub balance: i64,
    pub reason: String,
    pub at: i64,
}

/// What creating a service needs.
pub struct NewService {
    pub name: String,
    pub service_type: String,
    pub cloud: String,
    pub owner: i64,
    pub secret_hash: String,
}

/// The fields of a service to change.
#[derive(Debug, Default, Clone)]
pub struct ServiceUpdate {
    pub name: Option<String>,
    pub state: Option<String>,
    pub reason: Option<String>,
    pub manager: Option<String>,
    pub vmid: Option<String>,
}

/// A statement parameter.
#[derive(Debug, Clone, Copy)]
pub enum P<'a> {
    I(i64),
    T(&'a str),
    /// NULL in a BIGINT column.
    NullInt,
    /// NULL in a TEXT column.
    NullText,
}

/// A column value read back.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    I(i64),
    T(String),
    Null,
}

type Row = Vec<V>;

fn int(row: &Row, i: usize) -> Result<i64, StoreError> {
    match row.get(i) {
        Some(V::I(n)) => Ok(*n),
        other => Err(StoreError::Column {
            column: i,
            message: format!("expected an integer, found {other:?}"),
        }),
    }
}

fn opt_int(row: &Row, i: usize) -> Result<Option<i64>, StoreError> {
    match row.get(i) {
        Some(V::Null) => Ok(None),
        _ => int(row, i).map(Some),
    }
}

fn text(row: &Row, i: usize) -> Result<String, StoreError> {
    match row.get(i) {
        Some(V::T(s)) => Ok(s.clone()),
        other => Err(StoreError::Column {
            column: i,
            message: format!("expected text, found {other:?}"),
        }),
    }
}

/// What an operation does with its transaction: the same on both backends.
pub trait Tx {
    fn rows(&mut self, sql: &str, params: &[P]) -> Result<Vec<Row>, StoreError>;
    fn exec(&mut self, sql: &str, params: &[P]) -> Result<u64, StoreError>;
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;
    /// Which backend: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
}

/// `$N` placeholders as SQLite's `?N`.
fn sqlite_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

impl rusqlite::ToSql for P<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            P::I(n) => ToSqlOutput::Owned(Value::Integer(*n)),
            P::T(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            P::NullInt | P::NullText => ToSqlOutput::Owned(Value::Null),
        })
    }
}

impl Tx for rusqlite::Transaction<'_> {
    fn rows(&mut self, sql: &str, params: &[P]) -> Result<Vec<Row>, StoreError> {
        let mut statement = self.prepare_cached(&sqlite_sql(sql))?;
        let columns = statement.column_count();
        let mut rows = statement.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                use rusqlite::types::ValueRef;
                values.push(match row.get_ref(i)? {
                    ValueRef::Integer(n) => V::I(n),
                    ValueRef::Text(t) => V::T(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Null => V::Null,
                    other => {
                        return Err(StoreError::Column {
                            column: i,
                            message: format!("unexpected {:?}", other.data_type()),
                        });
                    }
                });
            }
            out.push(values);
        }
        Ok(out)
    }

    fn exec(&mut self, sql: &str, params: &[P]) -> Result<u64, StoreError> {
        let mut statement = self.prepare_cached(&sqlite_sql(sql))?;
        Ok(statement.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.execute_batch(sql)?)
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

fn pg_params<'a>(params: &'a [P<'a>]) -> Vec<Box<dyn postgres::types::ToSql + Sync + 'a>> {
    params
        .iter()
        .map(|p| -> Box<dyn postgres::types::ToSql + Sync + 'a> {
            match p {
                P::I(n) => Box::new(*n),
                P::T(s) => Box::new(*s),
                P::NullInt => Box::new(None::<i64>),
                P::NullText => Box::new(None::<&str>),
            }
        })
        .collect()
}

impl Tx for postgres::Transaction<'_> {
    fn rows(&mut self, sql: &str, params: &[P]) -> Result<Vec<Row>, StoreError> {
        use postgres::types::Type;
        let boxed = pg_params(params);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            boxed.iter().map(|b| b.as_ref()).collect();
        let rows = self.query(sql, &refs)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut values = Vec::with_capacity(row.len());
            for (i, column) in row.columns().iter().enumerate() {
                let ty = column.type_();
                values.push(if *ty == Type::INT8 {
                    row.try_get::<_, Option<i64>>(i)?.map_or(V::Null, V::I)
                } else if *ty == Type::INT4 {
                    row.try_get::<_, Option<i32>>(i)?
                        .map_or(V::Null, |n| V::I(n.into()))
                } else if *ty == Type::TEXT || *ty == Type::VARCHAR {
                    row.try_get::<_, Option<String>>(i)?.map_or(V::Null, V::T)
                } else {
                    return Err(StoreError::Column {
                        column: i,
                        message: format!("unexpected type {ty}"),
                    });
                });
            }
            out.push(values);
        }
        Ok(out)
    }

    fn exec(&mut self, sql: &str, params: &[P]) -> Result<u64, StoreError> {
        let boxed = pg_params(params);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            boxed.iter().map(|b| b.as_ref()).collect();
        Ok(self.execute(sql, &refs)?)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.batch_execute(sql)?)
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}

enum Backend {
    Sqlite(Mutex<rusqlite::Connection>),
    Postgres {
        url: String,
        client: Mutex<Option<Box<postgres::Client>>>,
    },
}

impl Drop for Backend {
    /// The `postgres` client closes its connection by blocking on its own runtime, which must
    /// not happen on a thread that drives async tasks: it is closed on a thread of its own.
    fn drop(&mut self) {
        if let Backend::Postgres { client, .. } = self
            && let Some(client) = client.get_mut().unwrap_or_else(|e| e.into_inner()).take()
        {
            let _ = std::thread::spawn(move || drop(client)).join();
        }
    }
}

/// The frontend's database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
}

/// Applies the migrations this build knows that the database lacks.
fn migrate(tx: &mut dyn Tx) -> Result<(), StoreError> {
    let (id, lock) = match tx.backend() {
        "postgres" => ("BIGSERIAL PRIMARY KEY", true),
        _ => ("INTEGER PRIMARY KEY AUTOINCREMENT", false),
    };
    if lock {
        tx.batch(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))?;
    }
    tx.batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations \
         (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
    )?;
    let found = tx.rows(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        &[],
    )?;
    let found = found.first().map(|r| int(r, 0)).transpose()?.unwrap_or(0);
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch(&sql.replace("{{ID}}", id))?;
        tx.exec(
            "INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)",
            &[P::I(i as i64 + 1), P::I(super::now())],
        )?;
    }
    Ok(())
}

const USER_COLUMNS: &str = "id, username, password_hash, admin, credit, created";
const SERVICE_COLUMNS: &str =
    "id, name, type, state, reason, manager, vmid, cloud, owner, secret_hash, created, changed";

fn user_row(r: &Row) -> Result<User, StoreError> {
    Ok(User {
        id: int(r, 0)?,
        username: text(r, 1)?,
        password_hash: text(r, 2)?,
        admin: int(r, 3)? != 0,
        credit: int(r, 4)?,
        created: int(r, 5)?,
    })
}

fn service_row(r: &Row) -> Result<Service, StoreError> {
    Ok(Service {
        id: int(r, 0)?,
        name: text(r, 1)?,
        service_type: text(r, 2)?,
        state: text(r, 3)?,
        reason: text(r, 4)?,
        manager: text(r, 5)?,
        vmid: text(r, 6)?,
        cloud: text(r, 7)?,
        owner: int(r, 8)?,
        secret_hash: text(r, 9)?,
        created: int(r, 10)?,
        changed: int(r, 11)?,
    })
}

fn one<T>(
    rows: Vec<Row>,
    f: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    rows.first().map(f).transpose()
}

/// Changes a user's credit by `delta` and appends the ledger row, refusing to go below 0.
fn adjust(
    tx: &mut dyn Tx,
    user_id: i64,
    delta: i64,
    service_id: Option<i64>,
    reason: &str,
    now: i64,
) -> Result<i64, StoreError> {
    // One conditional statement: concurrent frontends on one PostgreSQL cannot overdraw.
    let updated = tx.rows(
        "UPDATE users SET credit = credit + $1 WHERE id = $2 AND credit + $1 >= 0 RETURNING credit",
        &[P::I(delta), P::I(user_id)],
    )?;
    let balance = match updated.first() {
        Some(row) => int(row, 0)?,
        None => {
            let found = tx.rows("SELECT credit FROM users WHERE id = $1", &[P::I(user_id)])?;
            return match found.first() {
                Some(row) => Err(StoreError::NotEnoughCredit {
                    available: int(row, 0)?,
                    needed: -delta,
                }),
                None => Err(StoreError::NoUser(user_id)),
            };
        }
    };
    tx.exec(
        "INSERT INTO ledger (user_id, service_id, amount, balance, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            P::I(user_id),
            service_id.map_or(P::NullInt, P::I),
            P::I(delta),
            P::I(balance),
            P::T(reason),
            P::I(now),
        ],
    )?;
    Ok(balance)
}

impl Store {
    /// Opens the database at `address`: `postgres://...` or `postgresql://...` is
    /// PostgreSQL; `sqlite:PATH` or a plain path is a SQLite file (its directory is created).
    /// Applies the migrations it lacks.
    pub async fn open(address: &str) -> Result<Store, StoreError> {
        let address = address.trim().to_string();
        let backend = if address.starts_with("postgres://") || address.starts_with("postgresql://")
        {
            Backend::Postgres {
                url: address,
                client: Mutex::new(None),
            }
        } else {
            let path = PathBuf::from(address.strip_prefix("sqlite:").unwrap_or(&address));
            if path.as_os_str().is_empty() || address.contains("://") {
                return Err(StoreError::Address(address));
            }
            let connection = tokio::task::spawn_blocking(move || {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                let connection = rusqlite::Connection::open(&path)?;
                connection.busy_timeout(std::time::Duration::from_secs(5))?;
                connection.pragma_update(None, "journal_mode", "WAL")?;
                connection.pragma_update(None, "foreign_keys", "ON")?;
                Ok::<_, StoreError>(connection)
            })
            .await
            .map_err(|e| StoreError::Join(e.to_string()))??;
            Backend::Sqlite(Mutex::new(connection))
        };
        let store = Store {
            backend: Arc::new(backend),
        };
        store.run(|tx| migrate(tx)).await?;
        Ok(store)
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match *self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// Runs `f` in one transaction on the blocking pool; commits when it returns Ok.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T, StoreError> + Send + 'static,
    {
        let backend = self.backend.clone();
        tokio::task::spawn_blocking(move || match &*backend {
            Backend::Sqlite(connection) => {
                let mut connection = connection.lock().unwrap_or_else(|e| e.into_inner());
                let mut tx = connection
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let value = f(&mut tx)?;
                tx.commit()?;
                Ok(value)
            }
            Backend::Postgres { url, client } => {
                let mut guard = client.lock().unwrap_or_else(|e| e.into_inner());
                if guard.as_ref().is_none_or(|c| c.is_closed()) {
                    *guard = Some(Box::new(postgres::Client::connect(url, postgres::NoTls)?));
                }
                let Some(client) = guard.as_mut() else {
                    unreachable!("connected above");
                };
                let mut tx = client.transaction()?;
                let value = f(&mut tx)?;
                tx.commit()?;
                Ok(value)
            }
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    pub async fn user_count(&self) -> Result<i64, StoreError> {
        self.run(|tx| {
            let rows = tx.rows("SELECT COUNT(*) FROM users", &[])?;
            Ok(one(rows, |r| int(r, 0))?.unwrap_or(0))
        })
        .await
    }

    /// Inserts the user and, when `credit > 0`, its first ledger row, in one transaction.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        admin: bool,
        credit: i64,
        now: i64,
    ) -> Result<User, StoreError> {
        let (name, hash) = (username.to_string(), password_hash.to_string());
        self.run(move |tx| {
            let taken = tx.rows("SELECT id FROM users WHERE username = $1", &[P::T(&name)])?;
            if !taken.is_empty() {
                return Err(StoreError::UserExists(name));
            }
            let rows = tx.rows(
                &format!(
                    "INSERT INTO users (username, password_hash, admin, credit, created) \
                     VALUES ($1, $2, $3, 0, $4) RETURNING {USER_COLUMNS}"
                ),
                &[P::T(&name), P::T(&hash), P::I(admin.into()), P::I(now)],
            )?;
            let mut user = one(rows, user_row)?.ok_or(StoreError::NoUser(0))?;
            if credit > 0 {
                user.credit = adjust(tx, user.id, credit, None, "initial credit", now)?;
            }
            Ok(user)
        })
        .await
        .map_err(|e| match e {
            // A concurrent insert of the same name loses on the UNIQUE constraint.
            StoreError::Sqlite(ref s) if s.to_string().contains("UNIQUE") => {
                StoreError::UserExists(username.to_string())
            }
            StoreError::Postgres(ref p)
                if p.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) =>
            {
                StoreError::UserExists(username.to_string())
            }
            other => other,
        })
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.run(move |tx| {
            let rows = tx.rows(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
                &[P::I(id)],
            )?;
            one(rows, user_row)
        })
        .await
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let username = username.to_string();
        self.run(move |tx| {
            let rows = tx.rows(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"),
                &[P::T(&username)],
            )?;
            one(rows, user_row)
        })
        .await
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.run(|tx| {
            let rows = tx.rows(
                &format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"),
                &[],
            )?;
            rows.iter().map(user_row).collect()
        })
        .await
    }

    pub async fn add_token(
        &self,
        user_id: i64,
        token_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let hash = token_hash.to_string();
        self.run(move |tx| {
            tx.exec(
                "INSERT INTO tokens (token_hash, user_id, created) VALUES ($1, $2, $3)",
                &[P::T(&hash), P::I(user_id), P::I(now)],
            )?;
            Ok(())
        })
        .await
    }

    /// The user of a token issued at `not_before` or later (older tokens have expired).
    pub async fn user_by_token(
        &self,
        token_hash: &str,
        not_before: i64,
    ) -> Result<Option<User>, StoreError> {
        let hash = token_hash.to_string();
        self.run(move |tx| {
            let rows = tx.rows(
                "SELECT u.id, u.username, u.password_hash, u.admin, u.credit, u.created \
                 FROM tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = $1 AND t.created >= $2",
                &[P::T(&hash), P::I(not_before)],
            )?;
            one(rows, user_row)
        })
        .await
    }

    pub async fn remove_token(&self, token_hash: &str) -> Result<bool, StoreError> {
        let hash = token_hash.to_string();
        self.run(move |tx| {
            Ok(tx.exec("DELETE FROM tokens WHERE token_hash = $1", &[P::T(&hash)])? > 0)
        })
        .await
    }

    /// Adds `delta` (negative: a charge) to the user's credit with a ledger row, in one
    /// transaction; refuses with [`StoreError::NotEnoughCredit`], changing nothing, when the
    /// balance would go below 0. Returns the new balance.
    pub async fn adjust_credit(
        &self,
        user_id: i64,
        delta: i64,
        service_id: Option<i64>,
        reason: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let reason = reason.to_string();
        self.run(move |tx| adjust(tx, user_id, delta, service_id, &reason, now))
            .await
    }

    /// The user's ledger, newest first, at most `limit` rows.
    pub async fn ledger(&self, user_id: i64, limit: i64) -> Result<Vec<LedgerEntry>, StoreError> {
        self.run(move |tx| {
            let rows = tx.rows(
                "SELECT id, service_id, amount, balance, reason, at FROM ledger \
                 WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
                &[P::I(user_id), P::I(limit)],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(LedgerEntry {
                        id: int(r, 0)?,
                        service_id: opt_int(r, 1)?,
                        amount: int(r, 2)?,
                        balance: int(r, 3)?,
                        reason: text(r, 4)?,
                        at: int(r, 5)?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Inserts the service (state PREINIT) and charges `charge` credits for it, in one
    /// transaction: with too little credit nothing is written.
    pub async fn create_service(
        &self,
        new: NewService,
        charge: i64,
        now: i64,
    ) -> Result<Service, StoreError> {
        self.run(move |tx| {
            let rows = tx.rows(
                &format!(
                    "INSERT INTO services (name, type, state, cloud, owner, secret_hash, created, changed) \
                     VALUES ($1, $2, 'PREINIT', $3, $4, $5, $6, $6) RETURNING {SERVICE_COLUMNS}"
                ),
                &[
                    P::T(&new.name),
                    P::T(&new.service_type),
                    P::T(&new.cloud),
                    P::I(new.owner),
                    P::T(&new.secret_hash),
                    P::I(now),
                ],
            )?;
            let service = one(rows, service_row)?.ok_or(StoreError::NoUser(new.owner))?;
            if charge > 0 {
                adjust(
                    tx,
                    new.owner,
                    -charge,
                    Some(service.id),
                    &format!("service {} ({}) created", service.id, service.service_type),
                    now,
                )?;
            }
            Ok(service)
        })
        .await
    }

    pub async fn service(&self, id: i64) -> Result<Option<Service>, StoreError> {
        self.run(move |tx| {
            let rows = tx.rows(
                &format!("SELECT {SERVICE_COLUMNS} FROM services WHERE id = $1"),
                &[P::I(id)],
            )?;
            one(rows, service_row)
        })
        .await
    }

    /// Every service (`owner` None) or one user's, oldest first.
    pub async fn services(&self, owner: Option<i64>) -> Result<Vec<Service>, StoreError> {
        self.run(move |tx| {
            let rows = match owner {
                Some(owner) => tx.rows(
                    &format!("SELECT {SERVICE_COLUMNS} FROM services WHERE owner = $1 ORDER BY id"),
                    &[P::I(owner)],
                )?,
                None => tx.rows(
                    &format!("SELECT {SERVICE_COLUMNS} FROM services ORDER BY id"),
                    &[],
                )?,
            };
            rows.iter().map(service_row).collect()
        })
        .await
    }

    /// Applies the given fields and the change time; the row afterwards, None if there is no
    /// such service.
    pub async fn update_service(
        &self,
        id: i64,
        update: ServiceUpdate,
        now: i64,
    ) -> Result<Option<Service>, StoreError> {
        self.run(move |tx| {
            let rows = tx.rows(
                &format!(
                    "UPDATE services SET name = COALESCE($2, name), state = COALESCE($3, state), \
                     reason = COALESCE($4, reason), manager = COALESCE($5, manager), \
                     vmid = COALESCE($6, vmid), changed = $7 WHERE id = $1 RETURNING {SERVICE_COLUMNS}"
                ),
                &[
                    P::I(id),
                    opt_text(&update.name),
                    opt_text(&update.state),
                    opt_text(&update.reason),
                    opt_text(&update.manager),
                    opt_text(&update.vmid),
                    P::I(now),
                ],
            )?;
            one(rows, service_row)
        })
        .await
    }

    pub async fn delete_service(&self, id: i64) -> Result<bool, StoreError> {
        self.run(move |tx| Ok(tx.exec("DELETE FROM services WHERE id = $1", &[P::I(id)])? > 0))
            .await
    }
}

/// An optional text parameter: NULL leaves the column as it is (`COALESCE`).
fn opt_text(value: &Option<String>) -> P<'_> {
    match value {
        Some(s) => P::T(s),
        None => P::NullText,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_sqlite_numbered_parameters() {
        assert_eq!(
            sqlite_sql("UPDATE t SET a = $2 WHERE b = $1 AND c = '$x'"),
            "UPDATE t SET a = ?2 WHERE b = ?1 AND c = '$x'"
        );
    }
}
