//! A test guest implementing the `paasm:resource/provider` world: a `memo` resource whose
//! operations leave traces in its parameter collection, so the host's tests can check what a
//! provider sees (parameters, keys, the parent's collection) and what comes back (values it
//! set, a physical key, each kind of error, a trap).

wit_bindgen::generate!({
    path: ["../../wit/platform", "../../wit/resource"],
    world: "paasm:%resource/provider",
    with: {
        "paasm:platform/types@0.1.0": paasm_sdk::bindings::paasm::platform::types,
        "paasm:platform/log@0.1.0": paasm_sdk::bindings::paasm::platform::log,
        "paasm:platform/config@0.1.0": paasm_sdk::bindings::paasm::platform::config,
        "paasm:platform/state@0.1.0": paasm_sdk::bindings::paasm::platform::state,
        "paasm:platform/parameters@0.1.0": generate,
    },
});

use exports::paasm::resource::operations::Guest;
use paasm::platform::parameters::{Parameters, Value};
use paasm::resource::types::{
    Choice, Description, Error, InvalidParameter, KeyKind, Prop, PropType,
};
use paasm_sdk::bindings::paasm::platform::types::Key;

struct Memo;

fn prop(name: &str, ty: PropType) -> Prop {
    Prop {
        name: name.into(),
        description: String::new(),
        type_: ty,
        default: None,
        key: false,
        optional: false,
        readonly: false,
        choices: Vec::new(),
    }
}

fn name(params: &Parameters) -> String {
    params.get("name").unwrap_or_default()
}

impl Guest for Memo {
    fn describe() -> Description {
        Description {
            resource_name: "memo".into(),
            physical_name: "test_memo".into(),
            lkey_name: "name".into(),
            lkey_kind: KeyKind::Str,
            resource_description: "a note kept nowhere".into(),
            parent_name: None,
            managed_pkey: false,
            instance_schema: vec![
                Prop {
                    key: true,
                    ..prop("name", PropType::Str)
                },
                Prop {
                    default: Some("1".into()),
                    ..prop("size", PropType::Unum)
                },
                Prop {
                    optional: true,
                    ..prop("secret", PropType::Password)
                },
                Prop {
                    readonly: true,
                    ..prop("status", PropType::Str)
                },
                Prop {
                    default: Some("draft".into()),
                    choices: vec![Choice {
                        name: "draft".into(),
                        value: "0".into(),
                        description: "not final".into(),
                    }],
                    ..prop("stage", PropType::Select)
                },
            ],
            config_schema: vec![Prop {
                default: Some("memo-".into()),
                ..prop("prefix", PropType::Str)
            }],
            exclusive: false,
            offline: false,
            ignore_exists: false,
            cacheable: true,
            case_sensitive: false,
            listable: true,
        }
    }

    fn create(params: &Parameters) -> Result<(), Error> {
        match name(params).as_str() {
            "taken" => return Err(Error::AlreadyExists("memo taken exists".into())),
            "bad" => {
                return Err(Error::InvalidParameter(InvalidParameter {
                    name: "name".into(),
                    message: "bad is a bad name".into(),
                }));
            }
            "panic" => panic!("memo cannot be created: the provider panicked on purpose"),
            // A provider that quotes its password everywhere: the host masks it.
            "leaky" => {
                let secret = params.get("secret").unwrap_or_default();
                paasm_sdk::info!("leaky memo: the secret is {secret}");
                eprintln!("leaky memo on stderr: the secret is {secret}");
                return Err(Error::Failed(format!("leaky memo refused secret {secret}")));
            }
            // Long enough for a test to kill the server in the middle of it.
            "slow" => std::thread::sleep(std::time::Duration::from_secs(3)),
            _ => {}
        }
        let prefix = params.get("prefix").unwrap_or_default();
        params.set("fullname", &format!("{prefix}{}", name(params)));
        params.set("status", "created");
        if let Some(Value::Unum(size)) = params.get_value("size") {
            params.set("double", &(size * 2).to_string());
        }
        params.set_pkey(&Key::Num(name(params).len() as i64));
        paasm_sdk::info!("created memo {}", name(params));
        Ok(())
    }

    fn get(params: &Parameters) -> Result<(), Error> {
        if name(params) == "missing" {
            return Err(Error::NotFound("no memo missing".into()));
        }
        let lkey = match params.lkey() {
            Key::Str(s) => s,
            Key::Num(n) => n.to_string(),
        };
        params.set("lkey", &lkey);
        if let Some(parent) = params.parent() {
            params.set("parent-name", &parent.get("name").unwrap_or_default());
            if let Some(Key::Num(n)) = parent.pkey() {
                params.set("parent-pkey", &n.to_string());
            }
        }
        params.remove("secret");
        params.set("names", &params.names().join(","));
        Ok(())
    }

    fn update(params: &Parameters, new_params: &Parameters) -> Result<(), Error> {
        if let Some(size) = new_params.get("size") {
            params.set("size", &size);
        }
        params.set("status", "updated");
        Ok(())
    }

    fn delete(params: &Parameters) -> Result<(), Error> {
        if name(params) == "missing" {
            return Err(Error::NotFound("no memo missing".into()));
        }
        Ok(())
    }

    fn suspend(params: &Parameters) -> Result<(), Error> {
        params.set("status", "suspended");
        Ok(())
    }

    fn resume(params: &Parameters) -> Result<(), Error> {
        params.set("status", "active");
        Ok(())
    }

    fn enumerate(parent_pkey: Option<Key>, config: &Parameters) -> Result<Vec<Key>, Error> {
        let prefix = config.get("prefix").unwrap_or_default();
        let mut keys = vec![
            Key::Str(format!("{prefix}a")),
            Key::Str(format!("{prefix}b")),
        ];
        if let Some(parent) = parent_pkey {
            keys.push(parent);
        }
        Ok(keys)
    }
}

export!(Memo);
