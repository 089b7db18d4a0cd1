//! The `note` resource provider: the smallest complete implementation of a logical resource,
//! and the template of `paasm new --world provider`.
//!
//! A note is keyed by its `title` and holds a `text`; its physical form is an entry in the
//! provider's own `state` (`note/<title>`, and `suspended/<title>` while it is suspended), so
//! every operation has something real to find, change or miss. The host validates parameters
//! against the schema, keeps the records and checks existence; the provider adds what only it
//! knows: the `text` length limit (the config attribute `maxlength`) and the readonly `length`
//! and `status` it reports back. Replace the state entries with whatever your resource manages.

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
use paasm::platform::parameters::Parameters;
use paasm::resource::types::{Description, Error, InvalidParameter, KeyKind, Prop, PropType};
use paasm_sdk::bindings::paasm::platform::types::Key;
use paasm_sdk::state;

struct Note;

fn prop(name: &str, ty: PropType, description: &str) -> Prop {
    Prop {
        name: name.into(),
        description: description.into(),
        type_: ty,
        default: None,
        key: false,
        optional: false,
        readonly: false,
        choices: Vec::new(),
    }
}

fn title(params: &Parameters) -> String {
    params.get("title").unwrap_or_default()
}

/// The note's text, or `NotFound` when it has no state entry.
fn stored(title: &str) -> Result<String, Error> {
    state::get_string(&format!("note/{title}"))
        .ok_or_else(|| Error::NotFound(format!("there is no note {title:?}")))
}

/// Refuses a text longer than the config attribute `maxlength`.
fn check_length(params: &Parameters, text: &str) -> Result<(), Error> {
    let max: usize = params
        .get("maxlength")
        .and_then(|m| m.parse().ok())
        .unwrap_or(280);
    if text.chars().count() > max {
        return Err(Error::InvalidParameter(InvalidParameter {
            name: "text".into(),
            message: format!("a note holds at most {max} characters"),
        }));
    }
    Ok(())
}

/// Puts what the provider reports into `params`: the text, its length and the status.
fn report(params: &Parameters, title: &str, text: &str) {
    params.set("text", text);
    params.set("length", &text.chars().count().to_string());
    let suspended = state::get(&format!("suspended/{title}")).is_some();
    params.set("status", if suspended { "suspended" } else { "active" });
}

impl Guest for Note {
    fn describe() -> Description {
        Description {
            resource_name: "note".into(),
            physical_name: "note_state".into(),
            lkey_name: "title".into(),
            lkey_kind: KeyKind::Str,
            resource_description: "a note kept in the provider's state".into(),
            parent_name: None,
            managed_pkey: false,
            instance_schema: vec![
                Prop {
                    key: true,
                    ..prop("title", PropType::Str, "what the note is called")
                },
                Prop {
                    optional: true,
                    ..prop("text", PropType::Str, "what the note says")
                },
                Prop {
                    default: Some("1".into()),
                    ..prop("priority", PropType::Unum, "how much the note matters")
                },
                Prop {
                    readonly: true,
                    ..prop("length", PropType::Unum, "characters in the text")
                },
                Prop {
                    readonly: true,
                    ..prop("status", PropType::Str, "active or suspended")
                },
            ],
            config_schema: vec![Prop {
                default: Some("280".into()),
                ..prop("maxlength", PropType::Unum, "the longest text a note holds")
            }],
            exclusive: false,
            offline: false,
            ignore_exists: false,
            cacheable: false,
            case_sensitive: false,
            listable: true,
        }
    }

    fn create(params: &Parameters) -> Result<(), Error> {
        let title = title(params);
        if stored(&title).is_ok() {
            return Err(Error::AlreadyExists(format!("the note {title:?} exists")));
        }
        let text = params.get("text").unwrap_or_default();
        check_length(params, &text)?;
        state::set_string(&format!("note/{title}"), &text);
        report(params, &title, &text);
        paasm_sdk::info!("created the note {title}");
        Ok(())
    }

    fn get(params: &Parameters) -> Result<(), Error> {
        let title = title(params);
        let text = stored(&title)?;
        report(params, &title, &text);
        Ok(())
    }

    fn update(params: &Parameters, new_params: &Parameters) -> Result<(), Error> {
        let title = title(params);
        let mut text = stored(&title)?;
        if let Some(new_text) = new_params.get("text") {
            check_length(params, &new_text)?;
            state::set_string(&format!("note/{title}"), &new_text);
            text = new_text;
        }
        if let Some(priority) = new_params.get("priority") {
            params.set("priority", &priority);
        }
        report(params, &title, &text);
        Ok(())
    }

    fn delete(params: &Parameters) -> Result<(), Error> {
        let title = title(params);
        stored(&title)?;
        state::delete(&format!("note/{title}"));
        state::delete(&format!("suspended/{title}"));
        paasm_sdk::info!("deleted the note {title}");
        Ok(())
    }

    fn suspend(params: &Parameters) -> Result<(), Error> {
        let title = title(params);
        let text = stored(&title)?;
        state::set(&format!("suspended/{title}"), b"1");
        report(params, &title, &text);
        Ok(())
    }

    fn resume(params: &Parameters) -> Result<(), Error> {
        let title = title(params);
        let text = stored(&title)?;
        state::delete(&format!("suspended/{title}"));
        report(params, &title, &text);
        Ok(())
    }

    fn enumerate(_parent_pkey: Option<Key>, _config: &Parameters) -> Result<Vec<Key>, Error> {
        Ok(state::keys("note/")
            .into_iter()
            .filter_map(|k| k.strip_prefix("note/").map(|t| Key::Str(t.to_string())))
            .collect())
    }
}

export!(Note);
