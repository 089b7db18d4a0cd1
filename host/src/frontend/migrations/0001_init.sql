-- The frontend's first schema. Shared by SQLite and PostgreSQL: {{ID}} becomes each one's
-- auto-incrementing primary key; integers are BIGINT, times unix seconds, flags 0/1.
CREATE TABLE users (
    id {{ID}},
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    admin BIGINT NOT NULL,
    credit BIGINT NOT NULL CHECK (credit >= 0),
    created BIGINT NOT NULL
);
CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created BIGINT NOT NULL
);
CREATE TABLE services (
    id {{ID}},
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    manager TEXT NOT NULL DEFAULT '',
    vmid TEXT NOT NULL DEFAULT '',
    cloud TEXT NOT NULL,
    owner BIGINT NOT NULL REFERENCES users(id),
    secret_hash TEXT NOT NULL,
    created BIGINT NOT NULL,
    changed BIGINT NOT NULL
);
CREATE INDEX services_owner ON services(owner);
CREATE TABLE ledger (
    id {{ID}},
    user_id BIGINT NOT NULL REFERENCES users(id),
    service_id BIGINT,
    amount BIGINT NOT NULL,
    balance BIGINT NOT NULL,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX ledger_user ON ledger(user_id, id);
