//! Resource providers through the engine's typed bindings, with a real provider component
//! (`test-provider`): what a provider sees in its parameter collection, what comes back, and
//! how each kind of failure is told apart.

use std::collections::BTreeMap;
use std::sync::Arc;

use paasm::config::IniConfig;
use paasm::engine::provider::{
    KeyKind, Operation, OperationError, PropType, ProviderError, ProviderGuest,
};
use paasm::engine::{CallLimits, InstancePolicy, Runtime, RuntimeOptions};
use paasm::platform::{ParamKey, Parameters, PlatformHost, StateStore, ValueKind};

use crate::support::{cache_dir, component};

fn provider() -> ProviderGuest {
    let path = component("test-provider");
    let bytes = std::fs::read(&path).unwrap();
    let runtime = Runtime::new(&RuntimeOptions {
        cache_dir: Some(cache_dir()),
        ..RuntimeOptions::default()
    })
    .unwrap();
    let host = PlatformHost::new(
        "test-provider",
        Arc::new(IniConfig::default()),
        StateStore::in_memory("test-provider").unwrap(),
    );
    let guest = runtime
        .load(
            "test-provider",
            &bytes,
            Arc::new(host),
            CallLimits::default(),
            InstancePolicy::Fresh,
        )
        .unwrap();
    ProviderGuest::new(Arc::new(guest)).unwrap()
}

fn memo(name: &str) -> Parameters {
    let values: BTreeMap<String, String> = [("name", name), ("prefix", "memo-"), ("size", "21")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Parameters {
        values,
        kinds: [("size".to_string(), ValueKind::Unum)]
            .into_iter()
            .collect(),
        lkey: Some(ParamKey::Str(name.into())),
        pkey: None,
        parent: None,
        secrets: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_describes_itself() {
    let d = provider().describe().await.unwrap();
    assert_eq!(d.resource_name, "memo");
    assert_eq!(d.physical_name, "test_memo");
    assert_eq!(d.lkey_name, "name");
    assert!(matches!(d.lkey_kind, KeyKind::Str));
    assert!(d.listable && d.cacheable && !d.managed_pkey);
    let types: Vec<(String, bool)> = d
        .instance_schema
        .iter()
        .map(|p| (p.name.clone(), p.key))
        .collect();
    assert_eq!(types[0], ("name".to_string(), true));
    assert!(matches!(d.instance_schema[2].type_, PropType::Password));
    assert_eq!(d.instance_schema[4].choices[0].value, "0");
    assert_eq!(d.config_schema[0].default.as_deref(), Some("memo-"));
}

#[tokio::test(flavor = "multi_thread")]
async fn operations_see_and_change_the_parameters() {
    let p = provider();
    let created = p.run(Operation::Create, memo("alpha")).await.unwrap();
    assert_eq!(created.values["fullname"], "memo-alpha");
    assert_eq!(created.values["status"], "created");
    assert_eq!(created.values["double"], "42", "get-value types a unum");
    assert_eq!(
        created.pkey,
        Some(ParamKey::Num(5)),
        "the provider set a physical key"
    );

    // The parent's collection and keys reach the child.
    let mut child = memo("beta");
    child.values.insert("secret".into(), "hunter2".into());
    let mut parent = memo("alpha");
    parent.pkey = Some(ParamKey::Num(7));
    child.parent = Some(Box::new(parent));
    let got = p.run(Operation::Get, child).await.unwrap();
    assert_eq!(got.values["lkey"], "beta");
    assert_eq!(got.values["parent-name"], "alpha");
    assert_eq!(got.values["parent-pkey"], "7");
    assert!(!got.values.contains_key("secret"), "remove works");
    assert_eq!(
        got.values["names"],
        "lkey,name,parent-name,parent-pkey,prefix,size"
    );

    let mut new = Parameters::default();
    new.values.insert("size".into(), "3".into());
    let updated = p.update(memo("alpha"), new).await.unwrap();
    assert_eq!(updated.values["size"], "3");
    assert_eq!(updated.values["status"], "updated");

    let suspended = p.run(Operation::Suspend, memo("alpha")).await.unwrap();
    assert_eq!(suspended.values["status"], "suspended");
    let resumed = p.run(Operation::Resume, memo("alpha")).await.unwrap();
    assert_eq!(resumed.values["status"], "active");
    p.run(Operation::Delete, memo("alpha")).await.unwrap();

    let keys = p
        .enumerate(Some(ParamKey::Num(9)), memo("config"))
        .await
        .unwrap();
    assert_eq!(
        keys,
        [
            ParamKey::Str("memo-a".into()),
            ParamKey::Str("memo-b".into()),
            ParamKey::Num(9)
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_kind_of_failure_is_told_apart() {
    let p = provider();
    match p.run(Operation::Create, memo("taken")).await {
        Err(OperationError::Provider(ProviderError::AlreadyExists(m))) => {
            assert_eq!(m, "memo taken exists")
        }
        other => panic!("{other:?}"),
    }
    match p.run(Operation::Get, memo("missing")).await {
        Err(OperationError::Provider(ProviderError::NotFound(_))) => {}
        other => panic!("{other:?}"),
    }
    match p.run(Operation::Create, memo("bad")).await {
        Err(OperationError::Provider(ProviderError::InvalidParameter(ip))) => {
            assert_eq!(ip.name, "name");
        }
        other => panic!("{other:?}"),
    }
    let err = p.run(Operation::Create, memo("panic")).await.unwrap_err();
    assert!(matches!(err, OperationError::Guest(_)), "{err:?}");
    assert!(
        err.to_string().contains("the provider panicked on purpose"),
        "{err}"
    );
    // The next call works.
    p.run(Operation::Create, memo("gamma")).await.unwrap();
}
