//! The method table: which JSON-RPC methods a component serves, read from its exported types.
//!
//! Functions of an exported interface named `queries` become GET methods, `commands` POST
//! methods and `uploads` UPLOAD methods; the kebab-case function name is served in snake_case.
//! Everything a call needs (parameter names and types, the result type, the export index) is
//! resolved here once, when the component is loaded, so a call does no lookups by string but
//! the method name.

use std::collections::HashMap;

use serde_json::{Map, Value};
use wasmtime::component::Val;
use wasmtime::component::types::Type;

use super::values::{self, ParamError, Problem, json_name, name_matches};
use super::{FormField, Params, Verb};
use crate::engine::ExportedFunc;

/// One parameter of a method.
#[derive(Clone)]
pub struct Param {
    /// The WIT (kebab-case) name.
    pub wit_name: String,
    /// The JSON (snake_case) name.
    pub name: String,
    pub ty: Type,
}

/// One method served from a guest export.
#[derive(Clone)]
pub struct Method {
    /// The served (snake_case) name.
    pub name: String,
    pub verb: Verb,
    pub params: Vec<Param>,
    /// The result type, if the function returns one.
    pub result: Option<Type>,
    pub func: ExportedFunc,
}

/// An export that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum MethodError {
    #[error("method \"{method}\" is exported twice (by {first} and {second})")]
    Duplicate {
        method: String,
        first: String,
        second: String,
    },
    #[error("method \"{method}\": {what} uses {kind}, which have no JSON form")]
    Unsupported {
        method: String,
        what: String,
        kind: &'static str,
    },
    #[error("method \"{method}\" is served by the host itself; rename the guest's function")]
    Reserved { method: String },
}

/// The methods of one component, by served name.
#[derive(Clone, Default)]
pub struct MethodTable {
    methods: Vec<Method>,
    by_name: HashMap<String, usize>,
}

/// The verb namespace an exported interface name selects, if any.
fn verb_of(interface: &str) -> Option<Verb> {
    let short = interface
        .rsplit_once('/')
        .map_or(interface, |(_, rest)| rest);
    let short = short.split('@').next().unwrap_or(short);
    match short {
        "queries" => Some(Verb::Get),
        "commands" => Some(Verb::Post),
        "uploads" => Some(Verb::Upload),
        _ => None,
    }
}

impl MethodTable {
    /// Builds the table from a component's exports; `reserved` are names the host serves.
    pub fn from_exports(
        exports: Vec<ExportedFunc>,
        reserved: &[&str],
    ) -> Result<Self, MethodError> {
        let mut table = Self::default();
        let mut origin: HashMap<String, String> = HashMap::new();
        for func in exports {
            let Some(interface) = func.interface.clone() else {
                continue;
            };
            let Some(verb) = verb_of(&interface) else {
                continue;
            };
            let name = json_name(&func.name);
            if reserved.contains(&name.as_str()) {
                return Err(MethodError::Reserved { method: name });
            }
            if let Some(first) = origin.get(&name) {
                return Err(MethodError::Duplicate {
                    method: name,
                    first: first.clone(),
                    second: interface,
                });
            }
            let mut params = Vec::new();
            for (param_name, ty) in func.ty.params() {
                if let Some(kind) = values::unsupported(&ty) {
                    return Err(MethodError::Unsupported {
                        method: name,
                        what: format!("parameter \"{param_name}\""),
                        kind,
                    });
                }
                params.push(Param {
                    wit_name: param_name.to_string(),
                    name: json_name(param_name),
                    ty,
                });
            }
            let result = func.ty.results().next();
            if let Some(kind) = result.as_ref().and_then(values::unsupported) {
                return Err(MethodError::Unsupported {
                    method: name,
                    what: "the result".into(),
                    kind,
                });
            }
            origin.insert(name.clone(), interface);
            table.by_name.insert(name.clone(), table.methods.len());
            table.methods.push(Method {
                name,
                verb,
                params,
                result,
                func,
            });
        }
        Ok(table)
    }

    /// The method served as `name`.
    pub fn get(&self, name: &str) -> Option<&Method> {
        self.by_name.get(name).map(|&i| &self.methods[i])
    }

    /// Every method, in export order.
    pub fn iter(&self) -> impl Iterator<Item = &Method> {
        self.methods.iter()
    }
}

impl Method {
    /// Converts request parameters to the function's arguments, or says which one is wrong.
    pub fn arguments(&self, params: &Params) -> Result<Vec<Val>, ParamError> {
        match params {
            Params::None => self.args_named(&Map::new()),
            Params::Named(map) => self.args_named(map),
            Params::Positional(items) => self.args_positional(items),
            Params::Form(fields) => self.args_form(fields),
        }
    }

    fn missing(&self, param: &Param) -> Result<Val, ParamError> {
        match param.ty {
            Type::Option(_) => Ok(Val::Option(None)),
            ref ty => Err(ParamError {
                path: param.name.clone(),
                expected: values::describe(ty),
                problem: Problem::Missing,
            }),
        }
    }

    fn unexpected(&self, key: &str) -> ParamError {
        ParamError {
            path: key.to_string(),
            expected: String::new(),
            problem: Problem::Unexpected {
                allowed: self.params.iter().map(|p| p.name.clone()).collect(),
            },
        }
    }

    fn args_named(&self, map: &Map<String, Value>) -> Result<Vec<Val>, ParamError> {
        if let Some(key) = map
            .keys()
            .find(|k| !self.params.iter().any(|p| name_matches(k, &p.wit_name)))
        {
            return Err(self.unexpected(key));
        }
        self.params
            .iter()
            .map(
                |p| match map.iter().find(|(k, _)| name_matches(k, &p.wit_name)) {
                    Some((_, v)) => values::to_val(&p.ty, v, &p.name),
                    None => self.missing(p),
                },
            )
            .collect()
    }

    fn args_positional(&self, items: &[Value]) -> Result<Vec<Val>, ParamError> {
        if items.len() > self.params.len() {
            return Err(ParamError {
                path: format!("params[{}]", self.params.len()),
                expected: String::new(),
                problem: Problem::Unexpected {
                    allowed: self.params.iter().map(|p| p.name.clone()).collect(),
                },
            });
        }
        self.params
            .iter()
            .enumerate()
            .map(|(i, p)| match items.get(i) {
                Some(v) => values::to_val(&p.ty, v, &p.name),
                None => self.missing(p),
            })
            .collect()
    }

    /// Multipart fields: a `list<u8>` parameter takes the field's bytes, a `string` its text,
    /// anything else parses the text as JSON (falling back to a JSON string).
    fn args_form(&self, fields: &[FormField]) -> Result<Vec<Val>, ParamError> {
        if let Some(field) = fields.iter().find(|f| {
            !self
                .params
                .iter()
                .any(|p| name_matches(&f.name, &p.wit_name))
        }) {
            return Err(self.unexpected(&field.name));
        }
        self.params
            .iter()
            .map(|p| {
                let Some(field) = fields
                    .iter()
                    .rev()
                    .find(|f| name_matches(&f.name, &p.wit_name))
                else {
                    return self.missing(p);
                };
                form_value(&p.ty, field, &p.name)
            })
            .collect()
    }
}

fn form_value(ty: &Type, field: &FormField, path: &str) -> Result<Val, ParamError> {
    match ty {
        Type::Option(inner) => Ok(Val::Option(Some(Box::new(form_value(
            &inner.ty(),
            field,
            path,
        )?)))),
        Type::List(list) if matches!(list.ty(), Type::U8) => {
            Ok(Val::List(field.data.iter().map(|b| Val::U8(*b)).collect()))
        }
        Type::String => String::from_utf8(field.data.to_vec())
            .map(Val::String)
            .map_err(|_| ParamError {
                path: path.to_string(),
                expected: "UTF-8 text".into(),
                problem: Problem::WrongType,
            }),
        ty => {
            let text = String::from_utf8_lossy(&field.data);
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text.into_owned()));
            values::to_val(ty, &value, path)
        }
    }
}
