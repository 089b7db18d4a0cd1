//! The frontend's store, one suite run against both backends: a SQLite file and a real
//! PostgreSQL server. Users, tokens, credit that never goes below zero with a ledger that adds
//! up (also under concurrent charges), services created all-or-nothing, updates, deletes,
//! reopening, and a database from a newer paasm refused.

use paasm::frontend::store::{NewService, ServiceUpdate, Store, StoreError};

use crate::pg::Postgres;

fn new_service(owner: i64, name: &str) -> NewService {
    NewService {
        name: name.into(),
        service_type: "helloworld".into(),
        cloud: "local".into(),
        owner,
        secret_hash: "ab".repeat(32),
    }
}

async fn suite(address: &str) {
    let store = Store::open(address).await.unwrap();
    assert_eq!(store.user_count().await.unwrap(), 0);

    // Users: unique names; the initial credit is the first ledger row.
    let alice = store
        .create_user("alice", "$argon2id$x", true, 10, 100)
        .await
        .unwrap();
    assert!(alice.admin);
    assert_eq!(alice.credit, 10);
    let err = store
        .create_user("alice", "$argon2id$y", false, 5, 101)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UserExists(_)), "{err}");
    let bob = store
        .create_user("bob", "$argon2id$z", false, 0, 102)
        .await
        .unwrap();
    assert_eq!(store.user_count().await.unwrap(), 2);
    assert_eq!(store.users().await.unwrap().len(), 2);
    assert_eq!(
        store.user_by_name("bob").await.unwrap().map(|u| u.id),
        Some(bob.id)
    );
    assert_eq!(store.user(9999).await.unwrap(), None);

    // Tokens.
    store.add_token(alice.id, "t-hash", 103).await.unwrap();
    assert_eq!(
        store
            .user_by_token("t-hash", 103)
            .await
            .unwrap()
            .map(|u| u.id),
        Some(alice.id)
    );
    assert_eq!(
        store.user_by_token("t-hash", 104).await.unwrap(),
        None,
        "expired"
    );
    assert!(store.remove_token("t-hash").await.unwrap());
    assert_eq!(store.user_by_token("t-hash", 0).await.unwrap(), None);

    // Credit never goes below zero; a refusal changes nothing.
    assert_eq!(
        store
            .adjust_credit(alice.id, -4, None, "charge", 104)
            .await
            .unwrap(),
        6
    );
    let err = store
        .adjust_credit(alice.id, -7, None, "too much", 105)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotEnoughCredit {
                available: 6,
                needed: 7
            }
        ),
        "{err}"
    );
    assert_eq!(store.user(alice.id).await.unwrap().unwrap().credit, 6);
    let err = store
        .adjust_credit(4242, 1, None, "nobody", 105)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NoUser(4242)), "{err}");

    // Creating a service charges for it, or writes nothing at all.
    let err = store
        .create_service(new_service(bob.id, "poor"), 1, 106)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotEnoughCredit { .. }), "{err}");
    assert!(store.services(Some(bob.id)).await.unwrap().is_empty());
    let service = store
        .create_service(new_service(alice.id, "greeter"), 1, 107)
        .await
        .unwrap();
    assert_eq!(service.state, "PREINIT");
    assert_eq!(store.user(alice.id).await.unwrap().unwrap().credit, 5);

    // 20 concurrent charges of 1 on a credit of 5: exactly 5 succeed.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .adjust_credit(alice.id, -1, Some(service.id), &format!("node {i}"), 108)
                .await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::NotEnoughCredit { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 5);
    assert_eq!(store.user(alice.id).await.unwrap().unwrap().credit, 0);

    // The ledger adds up, newest first.
    let ledger = store.ledger(alice.id, 100).await.unwrap();
    assert_eq!(ledger.len(), 1 + 1 + 1 + 5, "{ledger:?}");
    assert_eq!(ledger[0].balance, 0);
    for pair in ledger.windows(2) {
        assert_eq!(
            pair[0].balance,
            pair[1].balance + pair[0].amount,
            "{ledger:?}"
        );
    }
    assert_eq!(ledger.last().unwrap().reason, "initial credit");
    assert_eq!(ledger[0].service_id, Some(service.id));
    assert_eq!(store.ledger(alice.id, 2).await.unwrap().len(), 2);

    // Updates touch only what they name.
    let updated = store
        .update_service(
            service.id,
            ServiceUpdate {
                state: Some("INIT".into()),
                manager: Some("http://127.0.0.2:80".into()),
                ..ServiceUpdate::default()
            },
            109,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            updated.state.as_str(),
            updated.name.as_str(),
            updated.changed
        ),
        ("INIT", "greeter", 109)
    );
    assert_eq!(
        store
            .update_service(9999, ServiceUpdate::default(), 110)
            .await
            .unwrap(),
        None
    );
    drop(store);

    // Reopening keeps everything; deleting removes the service only.
    let store = Store::open(address).await.unwrap();
    let again = store.service(service.id).await.unwrap().unwrap();
    assert_eq!(again, updated);
    assert_eq!(store.user_count().await.unwrap(), 2);
    assert!(store.delete_service(service.id).await.unwrap());
    assert!(!store.delete_service(service.id).await.unwrap());
    assert_eq!(store.services(None).await.unwrap(), Vec::new());
    assert_eq!(store.ledger(alice.id, 100).await.unwrap().len(), 8);
}

#[test]
fn the_store_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep/frontend.sqlite");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(suite(&path.display().to_string()));

    // A database from a newer paasm is refused, not guessed at.
    rusqlite_bump(&path);
    let err = runtime
        .block_on(Store::open(&format!("sqlite:{}", path.display())))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("newer paasm"), "{err}");
    let err = runtime
        .block_on(Store::open("mysql://x"))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("postgres://"), "{err}");
}

/// Records a schema version this build does not know, as a newer paasm would.
fn rusqlite_bump(path: &std::path::Path) {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .execute("INSERT INTO schema_migrations VALUES (999, 0)", [])
        .unwrap();
}

#[test]
fn the_store_on_postgresql() {
    let server = Postgres::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(suite(&server.url));

    // Several frontends starting at once on a new database migrate it once.
    let mut admin = ::postgres::Client::connect(&server.url, ::postgres::NoTls).unwrap();
    admin.batch_execute("CREATE DATABASE fresh").unwrap();
    let fresh = server.url.replace("/postgres", "/fresh");
    runtime.block_on(async {
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let fresh = fresh.clone();
                tokio::spawn(async move { Store::open(&fresh).await.map(|_| ()) })
            })
            .collect();
        for open in opens {
            open.await.unwrap().unwrap();
        }
    });
    let mut fresh_client = ::postgres::Client::connect(&fresh, ::postgres::NoTls).unwrap();
    let count: i64 = fresh_client
        .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
}
