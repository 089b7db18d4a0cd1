//! JSON to component values and back, driven by the WIT types of a method.
//!
//! The mapping (also in the README, for plugin authors):
//!
//! | WIT | JSON |
//! |---|---|
//! | `bool` | `true` / `false` |
//! | `s8`..`u64` | an integer, range-checked (no fractions, no booleans) |
//! | `f32`, `f64` | a number; `"NaN"`, `"Infinity"`, `"-Infinity"` for the values JSON lacks |
//! | `char` | a string of exactly one character |
//! | `string` | a string |
//! | `list<T>`, fixed-length lists | an array |
//! | `record` | an object keyed by field name in snake_case (kebab-case and camelCase accepted) |
//! | `tuple<...>` | an array with one element per member |
//! | `variant` | `"case"` for a case without payload, `{"case": payload}` otherwise |
//! | `enum` | `"case"` |
//! | `option<T>` | `null` or the value; `option<option<T>>` writes `some(x)` as `{"some": x}` |
//! | `result<T, E>` | `{"ok": T}` or `{"err": E}` (`null` for an absent payload) |
//! | `flags` | an array of the names of the set flags |
//! | `map<K, V>` | an object when K is `string`, else an array of `[key, value]` pairs |
//!
//! Names of fields, cases and flags are written in snake_case; on input snake_case, kebab-case
//! and lowerCamelCase all match. Resources, futures and streams have no JSON form: a method
//! using them is refused when the component is loaded.

use heck::{ToKebabCase, ToSnakeCase};
use serde_json::{Map, Number, Value};
use wasmtime::component::Val;
use wasmtime::component::types::Type;

/// A value that does not fit the type it was given for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// Where the value was: `count`, `shape.points[2].x`.
    pub path: String,
    /// What was expected, as a phrase: `an integer value`.
    pub expected: String,
    /// What went wrong, when more than "not the expected kind" (a range, a missing field).
    pub problem: Problem,
}

/// The kind of mismatch in a [`ParamError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The value is of another kind than expected.
    WrongType,
    /// A required value is absent.
    Missing,
    /// A value was given that nothing expects.
    Unexpected { allowed: Vec<String> },
}

impl ParamError {
    fn wrong(path: &str, expected: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            expected: expected.into(),
            problem: Problem::WrongType,
        }
    }

    /// The message, in the original ConPaaS phrasing where one exists
    /// (`Expected an integer value for "count"`).
    pub fn message(&self) -> String {
        match &self.problem {
            Problem::WrongType => format!("Expected {} for \"{}\"", self.expected, self.path),
            Problem::Missing => format!(
                "Missing argument \"{}\" (expected {})",
                self.path, self.expected
            ),
            Problem::Unexpected { allowed } if allowed.is_empty() => {
                format!(
                    "Unexpected argument \"{}\": this method takes no arguments",
                    self.path
                )
            }
            Problem::Unexpected { allowed } => format!(
                "Unexpected argument \"{}\": expected one of {}",
                self.path,
                allowed.join(", ")
            ),
        }
    }
}

/// The JSON spelling of a WIT name: snake_case.
pub fn json_name(wit_name: &str) -> String {
    // Every reply converts its record fields and cases, so the common kebab-case name
    // (`foo-bar2`) takes a direct path instead of heck's word splitting, with the same result.
    if is_plain_kebab(wit_name) {
        return wit_name.replace('-', "_");
    }
    wit_name.to_snake_case()
}

/// Lowercase ASCII words of letters and digits, each starting with a letter, joined by single
/// `-`: the names whose snake case is the same words joined by `_`.
fn is_plain_kebab(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|word| {
            word.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Whether a JSON key names the WIT name `wit_name` (snake, kebab or camel case).
pub fn name_matches(json_key: &str, wit_name: &str) -> bool {
    json_key == wit_name || json_key.to_kebab_case() == wit_name
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// A short phrase describing what a JSON value of type `ty` looks like.
pub fn describe(ty: &Type) -> String {
    match ty {
        Type::Bool => "a boolean value".into(),
        Type::S8
        | Type::U8
        | Type::S16
        | Type::U16
        | Type::S32
        | Type::U32
        | Type::S64
        | Type::U64 => "an integer value".into(),
        Type::Float32 | Type::Float64 => "a number value".into(),
        Type::Char => "a single-character string".into(),
        Type::String => "a string value".into(),
        Type::List(_) | Type::FixedLengthList(_) => "a list".into(),
        Type::Record(r) => {
            let fields: Vec<String> = r.fields().map(|f| json_name(f.name)).collect();
            format!("an object with fields {}", fields.join(", "))
        }
        Type::Tuple(t) => format!("a list of {} values", t.types().len()),
        Type::Variant(v) => {
            let cases: Vec<String> = v
                .cases()
                .map(|c| format!("\"{}\"", json_name(c.name)))
                .collect();
            format!("one of {}", cases.join(", "))
        }
        Type::Enum(e) => {
            let cases: Vec<String> = e.names().map(|c| format!("\"{}\"", json_name(c))).collect();
            format!("one of {}", cases.join(", "))
        }
        Type::Option(o) => format!("null or {}", describe(&o.ty())),
        Type::Result(_) => "an object {\"ok\": ...} or {\"err\": ...}".into(),
        Type::Flags(f) => {
            let names: Vec<String> = f.names().map(|c| format!("\"{}\"", json_name(c))).collect();
            format!("a list of flags from {}", names.join(", "))
        }
        Type::Map(_) => "an object".into(),
        Type::Own(_) | Type::Borrow(_) => "a resource handle".into(),
        Type::Future(_) | Type::Stream(_) | Type::ErrorContext => "an async value".into(),
    }
}

/// Why a type cannot cross JSON, if it cannot.
pub fn unsupported(ty: &Type) -> Option<&'static str> {
    match ty {
        Type::Own(_) | Type::Borrow(_) => Some("resource handles"),
        Type::Future(_) | Type::Stream(_) | Type::ErrorContext => Some("async values"),
        Type::List(l) => unsupported(&l.ty()),
        Type::FixedLengthList(l) => unsupported(&l.ty()),
        Type::Map(m) => unsupported(&m.key()).or_else(|| unsupported(&m.value())),
        Type::Record(r) => r.fields().find_map(|f| unsupported(&f.ty)),
        Type::Tuple(t) => t.types().find_map(|t| unsupported(&t)),
        Type::Variant(v) => v.cases().find_map(|c| c.ty.as_ref().and_then(unsupported)),
        Type::Option(o) => unsupported(&o.ty()),
        Type::Result(r) => r
            .ok()
            .as_ref()
            .and_then(unsupported)
            .or_else(|| r.err().as_ref().and_then(unsupported)),
        _ => None,
    }
}

fn int_range(ty: &Type) -> (i128, i128) {
    match ty {
        Type::S8 => (i8::MIN.into(), i8::MAX.into()),
        Type::U8 => (0, u8::MAX.into()),
        Type::S16 => (i16::MIN.into(), i16::MAX.into()),
        Type::U16 => (0, u16::MAX.into()),
        Type::S32 => (i32::MIN.into(), i32::MAX.into()),
        Type::U32 => (0, u32::MAX.into()),
        Type::S64 => (i64::MIN.into(), i64::MAX.into()),
        _ => (0, u64::MAX.into()),
    }
}

fn to_int(ty: &Type, value: &Value, path: &str) -> Result<Val, ParamError> {
    let n: Option<i128> = match value {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        _ => None,
    };
    let Some(n) = n else {
        return Err(ParamError::wrong(path, "an integer value"));
    };
    let (min, max) = int_range(ty);
    if n < min || n > max {
        return Err(ParamError::wrong(
            path,
            format!("an integer value between {min} and {max}"),
        ));
    }
    // The range check above makes every cast exact.
    Ok(match ty {
        Type::S8 => Val::S8(n as i8),
        Type::U8 => Val::U8(n as u8),
        Type::S16 => Val::S16(n as i16),
        Type::U16 => Val::U16(n as u16),
        Type::S32 => Val::S32(n as i32),
        Type::U32 => Val::U32(n as u32),
        Type::S64 => Val::S64(n as i64),
        _ => Val::U64(n as u64),
    })
}

fn to_float(value: &Value, path: &str, f32_range: bool) -> Result<f64, ParamError> {
    let expected = "a number value";
    let f = match value {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| ParamError::wrong(path, expected))?,
        Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            _ => return Err(ParamError::wrong(path, expected)),
        },
        _ => return Err(ParamError::wrong(path, expected)),
    };
    if f32_range && f.is_finite() && f.abs() > f64::from(f32::MAX) {
        return Err(ParamError::wrong(
            path,
            "a number value within the range of f32",
        ));
    }
    Ok(f)
}

/// Converts `value` to a component value of type `ty`.
pub fn to_val(ty: &Type, value: &Value, path: &str) -> Result<Val, ParamError> {
    let wrong = || ParamError::wrong(path, describe(ty));
    Ok(match ty {
        Type::Bool => Val::Bool(value.as_bool().ok_or_else(wrong)?),
        Type::S8
        | Type::U8
        | Type::S16
        | Type::U16
        | Type::S32
        | Type::U32
        | Type::S64
        | Type::U64 => to_int(ty, value, path)?,
        Type::Float32 => Val::Float32(to_float(value, path, true)? as f32),
        Type::Float64 => Val::Float64(to_float(value, path, false)?),
        Type::Char => {
            let s = value.as_str().ok_or_else(wrong)?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(wrong()),
            }
        }
        Type::String => Val::String(value.as_str().ok_or_else(wrong)?.to_string()),
        Type::List(list) => {
            let items = value.as_array().ok_or_else(wrong)?;
            Val::List(elements(&list.ty(), items, path)?)
        }
        Type::FixedLengthList(list) => {
            let items = value.as_array().ok_or_else(wrong)?;
            if items.len() != list.len() as usize {
                return Err(ParamError::wrong(
                    path,
                    format!("a list of exactly {} values", list.len()),
                ));
            }
            Val::FixedLengthList(elements(&list.ty(), items, path)?)
        }
        Type::Map(map) => {
            let (kt, vt) = (map.key(), map.value());
            let mut pairs = Vec::new();
            match (value, &kt) {
                (Value::Object(obj), Type::String) => {
                    for (k, v) in obj {
                        pairs.push((Val::String(k.clone()), to_val(&vt, v, &join(path, k))?));
                    }
                }
                (Value::Array(items), _) => {
                    for (i, item) in items.iter().enumerate() {
                        let item_path = format!("{path}[{i}]");
                        let pair = item
                            .as_array()
                            .filter(|p| p.len() == 2)
                            .ok_or_else(|| ParamError::wrong(&item_path, "a [key, value] pair"))?;
                        pairs.push((
                            to_val(&kt, &pair[0], &item_path)?,
                            to_val(&vt, &pair[1], &item_path)?,
                        ));
                    }
                }
                _ => return Err(wrong()),
            }
            Val::Map(pairs)
        }
        Type::Record(record) => {
            let obj = value.as_object().ok_or_else(wrong)?;
            let fields: Vec<_> = record.fields().collect();
            for key in obj.keys() {
                if !fields.iter().any(|f| name_matches(key, f.name)) {
                    return Err(ParamError {
                        path: join(path, key),
                        expected: describe(ty),
                        problem: Problem::Unexpected {
                            allowed: fields.iter().map(|f| json_name(f.name)).collect(),
                        },
                    });
                }
            }
            let mut out = Vec::with_capacity(fields.len());
            for field in fields {
                let field_path = join(path, &json_name(field.name));
                let given = obj
                    .iter()
                    .find(|(k, _)| name_matches(k, field.name))
                    .map(|(_, v)| v);
                let val = match (given, &field.ty) {
                    (Some(v), ty) => to_val(ty, v, &field_path)?,
                    (None, Type::Option(_)) => Val::Option(None),
                    (None, ty) => {
                        return Err(ParamError {
                            path: field_path,
                            expected: describe(ty),
                            problem: Problem::Missing,
                        });
                    }
                };
                out.push((field.name.to_string(), val));
            }
            Val::Record(out)
        }
        Type::Tuple(tuple) => {
            let items = value.as_array().ok_or_else(wrong)?;
            let types: Vec<Type> = tuple.types().collect();
            if items.len() != types.len() {
                return Err(wrong());
            }
            Val::Tuple(
                types
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (t, v))| to_val(t, v, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Variant(variant) => {
            let (name, payload) = tagged(value).ok_or_else(wrong)?;
            let case = variant
                .cases()
                .find(|c| name_matches(name, c.name))
                .ok_or_else(wrong)?;
            let payload = match (&case.ty, payload) {
                (None, None | Some(Value::Null)) => None,
                (Some(t), Some(v)) => Some(Box::new(to_val(t, v, &join(path, name))?)),
                (Some(t), None) => {
                    return Err(ParamError::wrong(
                        path,
                        format!("{{\"{name}\": {}}}", describe(t)),
                    ));
                }
                (None, Some(_)) => {
                    return Err(ParamError::wrong(
                        path,
                        format!("\"{name}\" without a payload"),
                    ));
                }
            };
            Val::Variant(case.name.to_string(), payload)
        }
        Type::Enum(e) => {
            let s = value.as_str().ok_or_else(wrong)?;
            let name = e.names().find(|n| name_matches(s, n)).ok_or_else(wrong)?;
            Val::Enum(name.to_string())
        }
        Type::Option(option) => {
            let inner = option.ty();
            match (value, &inner) {
                (Value::Null, _) => Val::Option(None),
                (Value::Object(obj), Type::Option(_)) => {
                    let v = obj
                        .get("some")
                        .filter(|_| obj.len() == 1)
                        .ok_or_else(|| ParamError::wrong(path, "null or {\"some\": value}"))?;
                    Val::Option(Some(Box::new(to_val(&inner, v, path)?)))
                }
                (v, _) => Val::Option(Some(Box::new(to_val(&inner, v, path)?))),
            }
        }
        Type::Result(result) => {
            let obj = value
                .as_object()
                .filter(|o| o.len() == 1)
                .ok_or_else(wrong)?;
            let (key, v) = obj.iter().next().ok_or_else(wrong)?;
            let convert = |t: Option<Type>, sub: &str| -> Result<Option<Box<Val>>, ParamError> {
                match (t, v) {
                    (None, Value::Null) => Ok(None),
                    (None, _) => Err(ParamError::wrong(&join(path, sub), "null")),
                    (Some(t), v) => Ok(Some(Box::new(to_val(&t, v, &join(path, sub))?))),
                }
            };
            match key.as_str() {
                "ok" => Val::Result(Ok(convert(result.ok(), "ok")?)),
                "err" => Val::Result(Err(convert(result.err(), "err")?)),
                _ => return Err(wrong()),
            }
        }
        Type::Flags(flags) => {
            let items = value.as_array().ok_or_else(wrong)?;
            let mut set = Vec::new();
            for item in items {
                let name = item
                    .as_str()
                    .and_then(|s| flags.names().find(|n| name_matches(s, n)))
                    .ok_or_else(wrong)?;
                if !set.iter().any(|s: &String| s == name) {
                    set.push(name.to_string());
                }
            }
            Val::Flags(set)
        }
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            return Err(wrong());
        }
    })
}

/// Converts the elements of a list, naming each by its index.
fn elements(ty: &Type, items: &[Value], path: &str) -> Result<Vec<Val>, ParamError> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| to_val(ty, v, &format!("{path}[{i}]")))
        .collect()
}

/// `"name"` or `{"name": payload}`.
fn tagged(value: &Value) -> Option<(&str, Option<&Value>)> {
    match value {
        Value::String(s) => Some((s.as_str(), None)),
        Value::Object(obj) if obj.len() == 1 => {
            let (k, v) = obj.iter().next()?;
            Some((k.as_str(), Some(v)))
        }
        _ => None,
    }
}

fn float_json(f: f64) -> Value {
    if f.is_nan() {
        Value::String("NaN".into())
    } else if f.is_infinite() {
        Value::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

/// Converts a component value to JSON.
pub fn to_json(val: &Val) -> Value {
    match val {
        Val::Bool(b) => Value::Bool(*b),
        Val::S8(n) => Value::from(*n),
        Val::U8(n) => Value::from(*n),
        Val::S16(n) => Value::from(*n),
        Val::U16(n) => Value::from(*n),
        Val::S32(n) => Value::from(*n),
        Val::U32(n) => Value::from(*n),
        Val::S64(n) => Value::from(*n),
        Val::U64(n) => Value::from(*n),
        // Through the shortest decimal form, so 0.1f32 is written 0.1 and not 0.10000000149.
        Val::Float32(f) => float_json(f.to_string().parse::<f64>().unwrap_or(f64::from(*f))),
        Val::Float64(f) => float_json(*f),
        Val::Char(c) => Value::String(c.to_string()),
        Val::String(s) => Value::String(s.clone()),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
        Val::Map(pairs) => {
            if pairs.iter().all(|(k, _)| matches!(k, Val::String(_))) {
                let mut obj = Map::new();
                for (k, v) in pairs {
                    if let Val::String(k) = k {
                        obj.insert(k.clone(), to_json(v));
                    }
                }
                Value::Object(obj)
            } else {
                Value::Array(
                    pairs
                        .iter()
                        .map(|(k, v)| Value::Array(vec![to_json(k), to_json(v)]))
                        .collect(),
                )
            }
        }
        Val::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, v)| (json_name(name), to_json(v)))
                .collect(),
        ),
        Val::Variant(name, None) => Value::String(json_name(name)),
        Val::Variant(name, Some(payload)) => {
            let mut obj = Map::new();
            obj.insert(json_name(name), to_json(payload));
            Value::Object(obj)
        }
        Val::Enum(name) => Value::String(json_name(name)),
        Val::Option(None) => Value::Null,
        Val::Option(Some(inner)) => match inner.as_ref() {
            Val::Option(_) => {
                let mut obj = Map::new();
                obj.insert("some".into(), to_json(inner));
                Value::Object(obj)
            }
            other => to_json(other),
        },
        Val::Result(result) => {
            let (key, payload) = match result {
                Ok(p) => ("ok", p),
                Err(p) => ("err", p),
            };
            let mut obj = Map::new();
            obj.insert(
                key.into(),
                payload.as_deref().map(to_json).unwrap_or(Value::Null),
            );
            Value::Object(obj)
        }
        Val::Flags(names) => {
            Value::Array(names.iter().map(|n| Value::String(json_name(n))).collect())
        }
        Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => Value::Null,
    }
}

/// A JSON Schema for values of type `ty` (used by the OpenRPC document).
pub fn schema(ty: &Type) -> Value {
    use serde_json::json;
    match ty {
        Type::Bool => json!({"type": "boolean"}),
        Type::S8
        | Type::U8
        | Type::S16
        | Type::U16
        | Type::S32
        | Type::U32
        | Type::S64
        | Type::U64 => {
            let (min, max) = int_range(ty);
            json!({"type": "integer", "minimum": min as f64, "maximum": max as f64})
        }
        Type::Float32 | Type::Float64 => json!({"type": ["number", "string"]}),
        Type::Char => json!({"type": "string", "minLength": 1, "maxLength": 1}),
        Type::String => json!({"type": "string"}),
        Type::List(l) => json!({"type": "array", "items": schema(&l.ty())}),
        Type::FixedLengthList(l) => json!({
            "type": "array", "items": schema(&l.ty()), "minItems": l.len(), "maxItems": l.len()
        }),
        Type::Map(m) => json!({"type": "object", "additionalProperties": schema(&m.value())}),
        Type::Record(r) => {
            let mut props = Map::new();
            let mut required = Vec::new();
            for f in r.fields() {
                props.insert(json_name(f.name), schema(&f.ty));
                if !matches!(f.ty, Type::Option(_)) {
                    required.push(Value::String(json_name(f.name)));
                }
            }
            json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
        }
        Type::Tuple(t) => {
            let items: Vec<Value> = t.types().map(|t| schema(&t)).collect();
            let n = items.len();
            json!({"type": "array", "prefixItems": items, "minItems": n, "maxItems": n})
        }
        Type::Variant(v) => {
            let cases: Vec<Value> = v
                .cases()
                .map(|c| match &c.ty {
                    None => json!({"const": json_name(c.name)}),
                    Some(t) => json!({
                        "type": "object",
                        "properties": {json_name(c.name): schema(t)},
                        "required": [json_name(c.name)],
                        "additionalProperties": false
                    }),
                })
                .collect();
            json!({"oneOf": cases})
        }
        Type::Enum(e) => json!({"enum": e.names().map(json_name).collect::<Vec<_>>()}),
        Type::Option(o) => json!({"oneOf": [{"type": "null"}, schema(&o.ty())]}),
        Type::Result(r) => {
            let payload =
                |t: Option<Type>| t.map(|t| schema(&t)).unwrap_or(json!({"type": "null"}));
            json!({"oneOf": [
                {"type": "object", "properties": {"ok": payload(r.ok())}, "required": ["ok"]},
                {"type": "object", "properties": {"err": payload(r.err())}, "required": ["err"]}
            ]})
        }
        Type::Flags(f) => json!({
            "type": "array", "uniqueItems": true,
            "items": {"enum": f.names().map(json_name).collect::<Vec<_>>()}
        }),
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            json!({})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_are_heck_snake_case() {
        for name in [
            "get-helloworld",
            "result",
            "node-ip2",
            "a-b-c",
            "x1-y22",
            "HTTP-get",
            "already_snake",
            "camelCase",
            "trailing-",
            "-leading",
            "double--dash",
            "1st-place",
            "",
        ] {
            assert_eq!(json_name(name), name.to_snake_case(), "{name:?}");
        }
    }
}
