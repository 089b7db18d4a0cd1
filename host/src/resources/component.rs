//! Provider components as [`Implementation`]s: the WIT description becomes the engine's
//! [`Description`] (schemas checked), and each operation runs through the engine's typed
//! provider bindings with the instance's collection.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::implementation::{BoxFuture, Description, Failure, Implementation, Instance};
use super::keys::{Key, KeyKind};
use super::params::Params;
use super::schema::{Choice, Op, Prop, PropType, Schema};
use crate::engine::provider::{self as wit, OperationError, ProviderError, ProviderGuest};
use crate::platform::{ParamKey, Parameters, ValueKind};

/// A provider component with its checked description.
pub struct ComponentImplementation {
    provider: ProviderGuest,
    description: Description,
}

impl ComponentImplementation {
    /// Asks the component to describe itself and checks the description.
    pub async fn load(provider: ProviderGuest) -> anyhow::Result<Arc<Self>> {
        let name = provider.name().to_string();
        let d = provider
            .describe()
            .await
            .map_err(|e| anyhow::anyhow!("{name} failed to describe itself: {e}"))?;
        let description =
            convert(d).map_err(|e| anyhow::anyhow!("{name} describes itself wrongly: {e}"))?;
        Ok(Arc::new(Self {
            provider,
            description,
        }))
    }
}

fn convert_props(props: Vec<wit::Prop>) -> Result<Schema, String> {
    let props = props
        .into_iter()
        .map(|p| {
            let mut prop = Prop::new(p.name, prop_type(p.type_));
            prop = prop.with_description(p.description);
            if let Some(default) = p.default {
                prop = prop.with_default(default);
            }
            for c in p.choices {
                prop = prop.with_choice(
                    Choice::new(c.name)
                        .with_value(c.value)
                        .with_description(c.description),
                );
            }
            if p.key {
                prop = prop.mark_key();
            }
            if p.optional {
                prop = prop.mark_optional();
            }
            if p.readonly {
                prop = prop.mark_readonly();
            }
            prop
        })
        .collect();
    Schema::new(props).map_err(|e| e.to_string())
}

fn prop_type(t: wit::PropType) -> PropType {
    use wit::PropType as W;
    match t {
        W::Str => PropType::Str,
        W::Num => PropType::Num,
        W::Unum => PropType::Unum,
        W::Bool => PropType::Bool,
        W::Select => PropType::Select,
        W::Path => PropType::Path,
        W::Password => PropType::Password,
        W::Ip => PropType::Ip,
        W::Domain => PropType::Domain,
        W::Url => PropType::Url,
        W::Mail => PropType::Mail,
        W::Mask => PropType::Mask,
        W::Mac => PropType::Mac,
    }
}

fn convert(d: wit::Description) -> Result<Description, String> {
    let instance = convert_props(d.instance_schema).map_err(|e| format!("instance schema: {e}"))?;
    let config = convert_props(d.config_schema).map_err(|e| format!("config schema: {e}"))?;
    let instance = instance
        .with_logical_key(&d.lkey_name)
        .map_err(|e| format!("logical key: {e}"))?;
    Ok(Description {
        resource: d.resource_name,
        physical: d.physical_name,
        lkey: d.lkey_name,
        lkey_kind: match d.lkey_kind {
            wit::KeyKind::Num => KeyKind::Num,
            wit::KeyKind::Str => KeyKind::Str,
        },
        summary: d.resource_description,
        parent: d.parent_name,
        managed_pkey: d.managed_pkey,
        instance,
        config,
        exclusive: d.exclusive,
        offline: d.offline,
        ignore_exists: d.ignore_exists,
        cacheable: d.cacheable,
        case_sensitive: d.case_sensitive,
        listable: d.listable,
    })
}

fn to_param_key(k: &Key) -> ParamKey {
    match k {
        Key::Num(n) => ParamKey::Num(*n),
        Key::Str(s) => ParamKey::Str(s.clone()),
    }
}

fn from_param_key(k: ParamKey) -> Key {
    match k {
        ParamKey::Num(n) => Key::Num(n),
        ParamKey::Str(s) => Key::Str(s),
    }
}

fn kinds(schema: &Schema) -> BTreeMap<String, ValueKind> {
    schema
        .props()
        .iter()
        .filter_map(|p| {
            let kind = match p.ty {
                PropType::Num => ValueKind::Num,
                PropType::Unum => ValueKind::Unum,
                PropType::Bool => ValueKind::Bool,
                _ => return None,
            };
            Some((p.name.clone(), kind))
        })
        .collect()
}

/// The collection handed to a provider; `schema` types its values (a parent's values are
/// given as text: its schema belongs to another implementation).
fn to_parameters(instance: &Instance, schema: Option<&Schema>) -> Parameters {
    Parameters {
        values: instance
            .params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        kinds: schema.map(kinds).unwrap_or_default(),
        lkey: Some(to_param_key(&instance.lkey)),
        pkey: instance.pkey.as_ref().map(to_param_key),
        parent: instance
            .parent
            .as_ref()
            .map(|p| Box::new(to_parameters(p, None))),
        secrets: instance
            .params
            .secret_values()
            .map(str::to_string)
            .collect(),
    }
}

fn params_of(p: &Params, schema: &Schema) -> Parameters {
    Parameters {
        values: p
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        kinds: kinds(schema),
        ..Parameters::default()
    }
}

/// Back from the provider: its values, sensitive marks kept from what went in.
fn from_parameters(back: Parameters, sent: Instance) -> Instance {
    let mut params = Params::new();
    for (k, v) in back.values {
        if sent.params.is_sensitive(&k) {
            params.set_sensitive(k, v);
        } else {
            params.set(k, v);
        }
    }
    Instance {
        params,
        lkey: sent.lkey,
        pkey: back.pkey.map(from_param_key),
        parent: sent.parent,
    }
}

fn failure(e: OperationError) -> Failure {
    match e {
        OperationError::Provider(ProviderError::AlreadyExists(m)) => Failure::AlreadyExists(m),
        OperationError::Provider(ProviderError::NotFound(m)) => Failure::NotFound(m),
        OperationError::Provider(ProviderError::InvalidParameter(p)) => Failure::InvalidParameter {
            name: p.name,
            message: p.message,
        },
        OperationError::Provider(ProviderError::Failed(m)) => Failure::Failed(m),
        OperationError::Guest(e) => Failure::Failed(e.to_string()),
    }
}

impl Implementation for ComponentImplementation {
    fn description(&self) -> &Description {
        &self.description
    }

    fn run(&self, op: Op, instance: Instance) -> BoxFuture<'_, Result<Instance, Failure>> {
        Box::pin(async move {
            let operation = match op {
                Op::Create => wit::Operation::Create,
                Op::Get => wit::Operation::Get,
                Op::Delete => wit::Operation::Delete,
                Op::Suspend => wit::Operation::Suspend,
                Op::Resume => wit::Operation::Resume,
                Op::Update => {
                    return Err(Failure::Failed("update needs the new parameters".into()));
                }
            };
            let sent = to_parameters(&instance, Some(&self.description.instance));
            let back = self.provider.run(operation, sent).await.map_err(failure)?;
            Ok(from_parameters(back, instance))
        })
    }

    fn update(&self, instance: Instance, new: Params) -> BoxFuture<'_, Result<Instance, Failure>> {
        Box::pin(async move {
            let schema = &self.description.instance;
            let sent = to_parameters(&instance, Some(schema));
            let back = self
                .provider
                .update(sent, params_of(&new, schema))
                .await
                .map_err(failure)?;
            Ok(from_parameters(back, instance))
        })
    }

    fn enumerate(
        &self,
        parent_pkey: Option<Key>,
        config: Params,
    ) -> BoxFuture<'_, Result<Vec<Key>, Failure>> {
        Box::pin(async move {
            let keys = self
                .provider
                .enumerate(
                    parent_pkey.as_ref().map(to_param_key),
                    params_of(&config, &self.description.config),
                )
                .await
                .map_err(failure)?;
            Ok(keys.into_iter().map(from_param_key).collect())
        })
    }
}
