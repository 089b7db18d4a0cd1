//! Resource schemas: the typed properties of a resource's configuration and instance
//! parameters, and the rules that turn what a caller passes into the parameters an
//! implementation sees.
//!
//! A [`Schema`] is a list of [`Prop`]s. It is read from the seed's XML form
//! ([`Schema::from_xml`]):
//!
//! ```xml
//! <schema>
//!   <prop name='hostname' type='domain' key='true' description='Virtual web host name'/>
//!   <prop name='port' type='unum' value='80'/>
//!   <prop name='docroot' optional='true'/>
//!   <prop name='status' type='select' value='starting'>
//!     <prop name='starting' value='1'/>
//!     <prop name='stopping' value='3'/>
//!   </prop>
//! </schema>
//! ```
//!
//! or from its JSON form (serde, `{"props": [{"name": "port", "type": "unum", "default": "80"}]}`),
//! which is how a schema travels through WIT and JSON-RPC.
//!
//! What the attributes of a `<prop>` mean here:
//!
//! - `name`: required, lower case (`a`-`z`, digits, `_`, `-`, `.`; starting with a letter or
//!   `_`), unique in the schema.
//! - `type`: one of [`PropType`]; `str` when absent.
//! - `value`: the default, checked against the property's own type when the schema is built.
//!   For `select` it is a choice name.
//! - `key`: the property is the logical key. A schema has at most one (the seed's `LKey`
//!   names a single parameter); [`Schema::with_logical_key`] marks it when the key is
//!   declared outside the schema, as the seed's `LKey` attribute does. A key property must be
//!   passed on every call, so it cannot be optional, read-only, defaulted or a password.
//! - `optional`: the seed's text reads "if false the property is optional, otherwise it is
//!   required", which contradicts its own example (`docroot`, `idomian`, `ss_lid` and
//!   `applevel` are marked `optional='true'` and are obviously the ones a caller may leave
//!   out). We follow the example: `optional='true'` means the parameter may be omitted; by
//!   default a parameter is required.
//! - `readonly`: the caller may not pass the parameter; it is an output the implementation
//!   fills (`docrootpath` in the seed). A read-only property is never required.
//! - `description`: free text.
//!
//! A `select` property holds its choices as nested `<prop name='..' value='..'/>` elements; a
//! choice's value defaults to its name. The caller passes a choice *name*; the stored
//! parameter is the choice's *value* (`status='starting'` is stored as `1`).
//!
//! Boolean attributes accept the same words as `bool` values (`true`/`false`, `yes`/`no`,
//! `on`/`off`, `1`/`0`). Unknown elements and attributes are errors, so a misspelt
//! `optinal='true'` does not silently make a parameter required.
//!
//! The rules of [`Schema::apply`] and [`Schema::check_config`] are described on each; in
//! short, every problem in a call's parameters is reported at once, as [`ParamErrors`].

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::params::Params;
use super::value::{self, InvalidValue};

/// The type of a property, one per identifier of the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PropType {
    /// Any text (the default type).
    #[default]
    Str,
    /// A signed 64-bit integer.
    Num,
    /// An unsigned 64-bit integer.
    Unum,
    /// A boolean.
    Bool,
    /// One of a list of named choices.
    Select,
    /// A file system path.
    Path,
    /// A password: never shown in errors, logs or `Debug` output.
    Password,
    /// An IPv4 or IPv6 address.
    Ip,
    /// A host name.
    Domain,
    /// An absolute URL.
    Url,
    /// A mailbox, `local@domain`.
    Mail,
    /// An IPv4 netmask.
    Mask,
    /// A MAC address.
    Mac,
}

impl PropType {
    /// Every type, in the seed's order.
    pub const ALL: [PropType; 13] = [
        PropType::Str,
        PropType::Num,
        PropType::Unum,
        PropType::Bool,
        PropType::Select,
        PropType::Path,
        PropType::Password,
        PropType::Ip,
        PropType::Domain,
        PropType::Url,
        PropType::Mail,
        PropType::Mask,
        PropType::Mac,
    ];

    /// The identifier of the type in a schema: `str`, `num`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            PropType::Str => "str",
            PropType::Num => "num",
            PropType::Unum => "unum",
            PropType::Bool => "bool",
            PropType::Select => "select",
            PropType::Path => "path",
            PropType::Password => "password",
            PropType::Ip => "ip",
            PropType::Domain => "domain",
            PropType::Url => "url",
            PropType::Mail => "mail",
            PropType::Mask => "mask",
            PropType::Mac => "mac",
        }
    }

    /// Whether values of this type must be kept out of errors, logs and `Debug` output.
    pub fn is_sensitive(self) -> bool {
        self == PropType::Password
    }
}

impl fmt::Display for PropType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A type identifier that is not one of the seed's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown property type {0:?}; known types: str, num, unum, bool, select, path, password, ip, domain, url, mail, mask, mac"
)]
pub struct UnknownPropType(pub String);

impl FromStr for PropType {
    type Err = UnknownPropType;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        PropType::ALL
            .into_iter()
            .find(|ty| ty.as_str() == text)
            .ok_or_else(|| UnknownPropType(text.to_string()))
    }
}

/// One choice of a `select` property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ChoiceDef")]
pub struct Choice {
    /// What the caller passes.
    pub name: String,
    /// What is stored; the name unless given.
    pub value: String,
    /// Free text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
}

impl Choice {
    /// A choice whose value is its name.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            value: name.clone(),
            name,
            description: String::new(),
        }
    }

    /// Sets the stored value.
    pub fn with_value(mut self, value: impl Into<String>) -> Self {
        self.value = value.into();
        self
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }
}

/// The JSON form of a [`Choice`], whose value may be left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChoiceDef {
    name: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    description: String,
}

impl From<ChoiceDef> for Choice {
    fn from(def: ChoiceDef) -> Self {
        Self {
            value: def.value.unwrap_or_else(|| def.name.clone()),
            name: def.name,
            description: def.description,
        }
    }
}

/// One property of a schema. Checked when the [`Schema`] holding it is built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prop {
    /// The parameter name, lower case.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The type of the values.
    #[serde(rename = "type", default)]
    pub ty: PropType,
    /// The default value, as text (a choice name for `select`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Whether this is the logical key.
    #[serde(default, skip_serializing_if = "is_false")]
    pub key: bool,
    /// Whether the parameter may be omitted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    /// Whether the caller is refused the parameter (an output of the implementation).
    #[serde(default, skip_serializing_if = "is_false")]
    pub readonly: bool,
    /// The choices of a `select` property; empty for every other type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
}

fn is_false(flag: &bool) -> bool {
    !flag
}

impl Prop {
    /// A required, non-key, writable property without default or description.
    pub fn new(name: impl Into<String>, ty: PropType) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            ty,
            default: None,
            key: false,
            optional: false,
            readonly: false,
            choices: Vec::new(),
        }
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the default value.
    pub fn with_default(mut self, default: impl Into<String>) -> Self {
        self.default = Some(default.into());
        self
    }

    /// Adds a choice (for `select`).
    pub fn with_choice(mut self, choice: Choice) -> Self {
        self.choices.push(choice);
        self
    }

    /// Marks the property as the logical key.
    pub fn mark_key(mut self) -> Self {
        self.key = true;
        self
    }

    /// Marks the property as one the caller may omit.
    pub fn mark_optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Marks the property as read-only for the caller.
    pub fn mark_readonly(mut self) -> Self {
        self.readonly = true;
        self
    }

    /// Whether a value must be present once defaults and configuration values are applied.
    pub fn is_required(&self) -> bool {
        !self.optional && !self.readonly
    }

    /// Whether values must be kept out of errors, logs and `Debug` output.
    pub fn is_sensitive(&self) -> bool {
        self.ty.is_sensitive()
    }

    /// The expected form of a value, as a phrase for error messages.
    pub fn expected(&self) -> String {
        value::expected_form(self.ty, &self.choices)
    }

    /// The choice named `name`.
    pub fn choice(&self, name: &str) -> Option<&Choice> {
        self.choices.iter().find(|choice| choice.name == name)
    }

    /// Checks `value` against the property's type and returns the form to store.
    pub fn check_value(&self, value: &str) -> Result<String, InvalidValue> {
        value::check_value(&self.name, self.ty, &self.choices, value)
    }

    /// The stored form of the default value, if there is one.
    fn checked_default(&self) -> Option<Result<String, InvalidValue>> {
        self.default
            .as_deref()
            .map(|default| self.check_value(default))
    }
}

/// A schema that cannot be used: malformed XML or JSON, or properties that contradict the
/// rules of the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("malformed schema xml: {message}")]
    Xml { message: String },
    #[error("the root element of a schema must be <schema>, found <{found}>")]
    Root { found: String },
    #[error("unexpected element <{element}> at line {line}; only <prop> elements belong here")]
    UnexpectedElement { element: String, line: u32 },
    #[error("unexpected text {text:?} at line {line}")]
    UnexpectedText { text: String, line: u32 },
    #[error("<prop> at line {line} has no name attribute")]
    MissingName { line: u32 },
    #[error(
        "unknown attribute {attribute:?} on <{element}> at line {line}; allowed attributes: {}",
        .allowed.join(", ")
    )]
    UnknownAttribute {
        element: String,
        attribute: String,
        line: u32,
        allowed: Vec<&'static str>,
    },
    #[error("invalid {attribute} attribute {value:?} of property {prop:?}: {reason}")]
    BadAttribute {
        prop: String,
        attribute: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid property name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("duplicate property {name:?}")]
    DuplicateProp { name: String },
    #[error("select property {prop:?} has no choices")]
    NoChoices { prop: String },
    #[error("property {prop:?} of type {ty} has choices; only select properties take choices")]
    UnexpectedChoices { prop: String, ty: PropType },
    #[error("invalid choice name {choice:?} in property {prop:?}: {reason}")]
    InvalidChoice {
        prop: String,
        choice: String,
        reason: &'static str,
    },
    #[error("duplicate choice {choice:?} in property {prop:?}")]
    DuplicateChoice { prop: String, choice: String },
    #[error("password property {prop:?} cannot have a default value")]
    PasswordDefault { prop: String },
    #[error("property {prop:?} has an invalid default: {source}")]
    InvalidDefault {
        prop: String,
        source: Box<InvalidValue>,
    },
    #[error(
        "properties {first:?} and {second:?} are both marked key; a schema has at most one key property (the logical key)"
    )]
    MultipleKeys { first: String, second: String },
    #[error("key property {prop:?} {reason}; the logical key must be passed on every call")]
    BadKey { prop: String, reason: &'static str },
    #[error("logical key {name:?} is not a property of the schema")]
    UnknownKey { name: String },
    #[error("property {prop:?} differs between the config and instance schemas: {reason}")]
    Incompatible { prop: String, reason: String },
}

/// The operation a call's parameters are checked for, the seed's six resource methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Get,
    Update,
    Delete,
    Suspend,
    Resume,
}

impl Op {
    /// The operation's name: `create`, `get`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Get => "get",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::Suspend => "suspend",
            Op::Resume => "resume",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with the parameters of a call or of a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("missing key parameter {name:?}")]
    MissingKey { name: String },
    #[error("missing required parameter {name:?}")]
    Missing { name: String },
    #[error("parameter {name:?} is read-only and cannot be passed")]
    ReadOnly { name: String },
    #[error("unknown parameter {name:?}{}", unknown_hint(.suggestion.as_deref(), .allowed))]
    Unknown {
        name: String,
        /// The names that may be passed.
        allowed: Vec<String>,
        /// A known name equal to this one but for case.
        suggestion: Option<String>,
    },
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
}

/// The tail of an unknown-parameter message: a suggestion, then the allowed names.
fn unknown_hint(suggestion: Option<&str>, allowed: &[String]) -> String {
    let mut hint = String::new();
    if let Some(suggestion) = suggestion {
        hint.push_str(&format!(
            " (did you mean {suggestion:?}? names are lower case)"
        ));
    }
    if allowed.is_empty() {
        hint.push_str("; no parameters are allowed");
    } else {
        hint.push_str("; allowed parameters: ");
        hint.push_str(&allowed.join(", "));
    }
    hint
}

impl ParamError {
    /// The name of the parameter concerned.
    pub fn param(&self) -> &str {
        match self {
            ParamError::MissingKey { name }
            | ParamError::Missing { name }
            | ParamError::ReadOnly { name }
            | ParamError::Unknown { name, .. } => name,
            ParamError::Invalid(invalid) => invalid.param(),
        }
    }
}

/// Every problem found in one set of parameters (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamErrors(Vec<ParamError>);

impl ParamErrors {
    /// The problems, in the order found: schema order, then unknown names sorted.
    pub fn as_slice(&self) -> &[ParamError] {
        &self.0
    }

    /// The problems, by value.
    pub fn into_vec(self) -> Vec<ParamError> {
        self.0
    }
}

impl std::ops::Deref for ParamErrors {
    type Target = [ParamError];

    fn deref(&self) -> &[ParamError] {
        &self.0
    }
}

impl IntoIterator for ParamErrors {
    type Item = ParamError;
    type IntoIter = std::vec::IntoIter<ParamError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for ParamErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParamErrors {}

/// The properties of a resource's configuration or instance parameters.
///
/// Built only through [`Schema::new`], [`Schema::from_xml`] or deserialisation, all of which
/// check the rules in the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "SchemaDef")]
pub struct Schema {
    props: Vec<Prop>,
}

/// The JSON form of a [`Schema`] before it is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaDef {
    props: Vec<Prop>,
}

impl TryFrom<SchemaDef> for Schema {
    type Error = SchemaError;

    fn try_from(def: SchemaDef) -> Result<Self, Self::Error> {
        Schema::new(def.props)
    }
}

/// The attributes a `<prop>` of a schema may carry.
const PROP_ATTRIBUTES: [&str; 7] = [
    "name",
    "description",
    "type",
    "value",
    "key",
    "optional",
    "readonly",
];

/// The attributes a choice (a `<prop>` inside a select `<prop>`) may carry.
const CHOICE_ATTRIBUTES: [&str; 3] = ["name", "value", "description"];

impl Schema {
    /// Checks `props` and builds the schema.
    pub fn new(props: Vec<Prop>) -> Result<Self, SchemaError> {
        let mut names = BTreeSet::new();
        let mut key: Option<&str> = None;
        for prop in &props {
            check_name(&prop.name)?;
            if !names.insert(prop.name.as_str()) {
                return Err(SchemaError::DuplicateProp {
                    name: prop.name.clone(),
                });
            }
            check_choices(prop)?;
            if prop.is_sensitive() && prop.default.is_some() {
                return Err(SchemaError::PasswordDefault {
                    prop: prop.name.clone(),
                });
            }
            if let Some(Err(source)) = prop.checked_default() {
                return Err(SchemaError::InvalidDefault {
                    prop: prop.name.clone(),
                    source: Box::new(source),
                });
            }
            if prop.key {
                check_key_prop(prop)?;
                if let Some(first) = key {
                    return Err(SchemaError::MultipleKeys {
                        first: first.to_string(),
                        second: prop.name.clone(),
                    });
                }
                key = Some(&prop.name);
            }
        }
        Ok(Self { props })
    }

    /// Parses the seed's XML form (see the module documentation).
    pub fn from_xml(xml: &str) -> Result<Self, SchemaError> {
        let doc = roxmltree::Document::parse(xml).map_err(|err| SchemaError::Xml {
            message: err.to_string(),
        })?;
        let root = doc.root_element();
        if root.tag_name().name() != "schema" || root.tag_name().namespace().is_some() {
            return Err(SchemaError::Root {
                found: root.tag_name().name().to_string(),
            });
        }
        check_attributes(&doc, root, &[])?;
        let mut props = Vec::new();
        for element in child_elements(&doc, root)? {
            props.push(prop_from_xml(&doc, element)?);
        }
        Self::new(props)
    }

    /// The properties, in schema order.
    pub fn props(&self) -> &[Prop] {
        &self.props
    }

    /// The property named `name`.
    pub fn prop(&self, name: &str) -> Option<&Prop> {
        self.props.iter().find(|prop| prop.name == name)
    }

    /// The property names, in schema order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.props.iter().map(|prop| prop.name.as_str())
    }

    /// The logical key property, if the schema has one.
    pub fn key_prop(&self) -> Option<&Prop> {
        self.props.iter().find(|prop| prop.key)
    }

    /// Marks property `name` as the logical key (the seed's `LKey` attribute, declared beside
    /// the schema rather than in it). Marking the property that already is the key is
    /// allowed; any other key is an error.
    pub fn with_logical_key(mut self, name: &str) -> Result<Self, SchemaError> {
        if self.prop(name).is_none() {
            return Err(SchemaError::UnknownKey {
                name: name.to_string(),
            });
        }
        if let Some(existing) = self.key_prop()
            && existing.name != name
        {
            return Err(SchemaError::MultipleKeys {
                first: existing.name.clone(),
                second: name.to_string(),
            });
        }
        let Some(prop) = self.props.iter_mut().find(|prop| prop.name == name) else {
            return Err(SchemaError::UnknownKey {
                name: name.to_string(),
            });
        };
        check_key_prop(prop)?;
        prop.key = true;
        Ok(self)
    }

    /// Checks that every property this instance schema shares with `config` has the same type
    /// (and the same choices, for `select`), so that a configuration value can stand in for
    /// an omitted instance parameter as [`Schema::apply`] does.
    pub fn check_config_schema(&self, config: &Schema) -> Result<(), SchemaError> {
        for prop in &self.props {
            let Some(config_prop) = config.prop(&prop.name) else {
                continue;
            };
            let reason = if config_prop.ty != prop.ty {
                format!(
                    "type {} in the config schema, {} in the instance schema",
                    config_prop.ty, prop.ty
                )
            } else if config_prop.choices.len() != prop.choices.len()
                || config_prop
                    .choices
                    .iter()
                    .zip(&prop.choices)
                    .any(|(a, b)| a.name != b.name || a.value != b.value)
            {
                "the choices differ".to_string()
            } else {
                continue;
            };
            return Err(SchemaError::Incompatible {
                prop: prop.name.clone(),
                reason,
            });
        }
        Ok(())
    }

    /// Checks a resource's configuration attributes against this (configuration) schema and
    /// returns them in stored form.
    ///
    /// Every attribute must be a property of the schema and have the property's form;
    /// missing ones take their default; a required one without default must be present.
    /// `readonly` and `key` have no meaning for configuration and are not enforced: the
    /// operator who writes the configuration is not the caller they restrict. Password
    /// attributes are marked sensitive in the result.
    pub fn check_config(&self, attrs: &Params) -> Result<Params, ParamErrors> {
        let mut errors = Vec::new();
        let mut checked = Params::new();
        for prop in &self.props {
            let stored = match attrs.get(&prop.name) {
                Some(value) => Some(prop.check_value(value)),
                None => prop.checked_default(),
            };
            match stored {
                Some(Ok(value)) => checked.set_marked(&prop.name, value, prop.is_sensitive()),
                Some(Err(invalid)) => errors.push(ParamError::Invalid(invalid)),
                None if !prop.optional => errors.push(ParamError::Missing {
                    name: prop.name.clone(),
                }),
                None => {}
            }
        }
        self.push_unknown(attrs, false, &mut errors);
        finish(checked, errors)
    }

    /// Checks the parameters a caller passed for `op` against this (instance) schema and
    /// returns the parameter collection the implementation sees.
    ///
    /// `config` is the resource's configuration in stored form: its own attributes from
    /// [`Schema::check_config`] merged with its parents' by
    /// [`inherit`](super::params::inherit). The result starts from `config` and adds the
    /// instance parameters, which win over configuration values of the same name.
    ///
    /// The seed's rules, for every operation:
    /// - the logical key must be passed;
    /// - every passed parameter must be a property of the schema (the error lists those that
    ///   may be passed) and must not be read-only;
    /// - every passed value must have its property's form, and is stored canonically (a
    ///   `select` choice name becomes the choice's value).
    ///
    /// For [`Op::Create`] also:
    /// - a parameter that was not passed takes the configuration value of the same name if
    ///   there is one (the seed: "if the parameter is described in both config and instance
    ///   schemas, then if parameter wasn't passed ... the value for it will be taken from the
    ///   config file"), else its default;
    /// - a required parameter (neither optional nor read-only) must then have a value.
    ///
    /// The other operations act on an existing instance whose parameters were completed at
    /// creation: nothing but the key is required and no default is added. For
    /// [`Op::Update`] the passed parameters are the ones to change, as in the seed's
    /// `Update(Parameters newParams)`.
    ///
    /// All problems are reported together. Password parameters are marked sensitive in the
    /// result.
    pub fn apply(&self, config: &Params, instance: &Params, op: Op) -> Result<Params, ParamErrors> {
        let mut errors = Vec::new();
        let mut params = config.clone();
        for prop in &self.props {
            let name = &prop.name;
            let stored = match instance.get(name) {
                Some(_) if prop.readonly => {
                    errors.push(ParamError::ReadOnly { name: name.clone() });
                    continue;
                }
                Some(value) => Some(prop.check_value(value)),
                None if prop.key => {
                    errors.push(ParamError::MissingKey { name: name.clone() });
                    continue;
                }
                None if op != Op::Create || config.contains(name) => continue,
                None => prop.checked_default(),
            };
            match stored {
                Some(Ok(value)) => params.set_marked(name, value, prop.is_sensitive()),
                Some(Err(invalid)) => errors.push(ParamError::Invalid(invalid)),
                None if prop.is_required() => {
                    errors.push(ParamError::Missing { name: name.clone() });
                }
                None => {}
            }
        }
        self.push_unknown(instance, true, &mut errors);
        self.mark_sensitive(&mut params);
        finish(params, errors)
    }

    /// Marks the values of this schema's password properties in `params` as sensitive, for
    /// parameters that were stored or received without their marks.
    pub fn mark_sensitive(&self, params: &mut Params) {
        for prop in self.props.iter().filter(|prop| prop.is_sensitive()) {
            params.mark_sensitive(&prop.name);
        }
    }

    /// `params` rendered for logs and error messages: every value quoted, except those of
    /// this schema's password properties and those marked sensitive, which read `***`.
    pub fn redacted<'a>(&'a self, params: &'a Params) -> Redacted<'a> {
        Redacted {
            schema: self,
            params,
        }
    }

    /// Appends an [`ParamError::Unknown`] for every name of `given` that is not a property.
    fn push_unknown(&self, given: &Params, caller: bool, errors: &mut Vec<ParamError>) {
        let allowed: Vec<String> = self
            .props
            .iter()
            .filter(|prop| !(caller && prop.readonly))
            .map(|prop| prop.name.clone())
            .collect();
        for name in given.names() {
            if self.prop(name).is_some() {
                continue;
            }
            let lower = name.to_lowercase();
            let suggestion = self.prop(&lower).map(|prop| prop.name.clone());
            errors.push(ParamError::Unknown {
                name: name.to_string(),
                allowed: allowed.clone(),
                suggestion,
            });
        }
    }
}

/// `Ok(params)` when there are no errors.
fn finish(params: Params, errors: Vec<ParamError>) -> Result<Params, ParamErrors> {
    if errors.is_empty() {
        Ok(params)
    } else {
        Err(ParamErrors(errors))
    }
}

/// Checks a property name: lower case, identifier-like.
fn check_name(name: &str) -> Result<(), SchemaError> {
    let invalid = |reason| {
        Err(SchemaError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    let Some(first) = name.chars().next() else {
        return invalid("empty");
    };
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return invalid("names are lower case");
    }
    if !(first.is_ascii_lowercase() || first == '_') {
        return invalid("a name starts with a letter or _");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
    {
        return invalid("a name holds only a-z, 0-9, _, - and .");
    }
    Ok(())
}

/// Checks the choices of a property: present and well named for `select`, absent otherwise.
fn check_choices(prop: &Prop) -> Result<(), SchemaError> {
    if prop.ty != PropType::Select {
        if prop.choices.is_empty() {
            return Ok(());
        }
        return Err(SchemaError::UnexpectedChoices {
            prop: prop.name.clone(),
            ty: prop.ty,
        });
    }
    if prop.choices.is_empty() {
        return Err(SchemaError::NoChoices {
            prop: prop.name.clone(),
        });
    }
    let mut seen = BTreeSet::new();
    for choice in &prop.choices {
        let reason = if choice.name.is_empty() {
            Some("empty")
        } else if choice.name.trim() != choice.name {
            Some("leading or trailing whitespace")
        } else if choice.name.chars().any(char::is_control) {
            Some("control characters")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(SchemaError::InvalidChoice {
                prop: prop.name.clone(),
                choice: choice.name.clone(),
                reason,
            });
        }
        if !seen.insert(choice.name.as_str()) {
            return Err(SchemaError::DuplicateChoice {
                prop: prop.name.clone(),
                choice: choice.name.clone(),
            });
        }
    }
    Ok(())
}

/// Checks that `prop` can be the logical key.
fn check_key_prop(prop: &Prop) -> Result<(), SchemaError> {
    let reason = if prop.optional {
        "cannot be optional"
    } else if prop.readonly {
        "cannot be read-only"
    } else if prop.default.is_some() {
        "cannot have a default"
    } else if prop.is_sensitive() {
        "cannot be a password"
    } else {
        return Ok(());
    };
    Err(SchemaError::BadKey {
        prop: prop.name.clone(),
        reason,
    })
}

/// The line of `node` in the document, for error messages.
fn line_of(doc: &roxmltree::Document<'_>, node: roxmltree::Node<'_, '_>) -> u32 {
    doc.text_pos_at(node.range().start).row
}

/// The child elements of `parent`, refusing non-`<prop>` elements and non-blank text.
fn child_elements<'a, 'input>(
    doc: &roxmltree::Document<'input>,
    parent: roxmltree::Node<'a, 'input>,
) -> Result<Vec<roxmltree::Node<'a, 'input>>, SchemaError> {
    let mut elements = Vec::new();
    for node in parent.children() {
        if node.is_element() {
            let tag = node.tag_name();
            if tag.name() != "prop" || tag.namespace().is_some() {
                return Err(SchemaError::UnexpectedElement {
                    element: tag.name().to_string(),
                    line: line_of(doc, node),
                });
            }
            elements.push(node);
        } else if node.is_text()
            && let Some(text) = node.text()
            && !text.trim().is_empty()
        {
            return Err(SchemaError::UnexpectedText {
                text: text.trim().to_string(),
                line: line_of(doc, node),
            });
        }
    }
    Ok(elements)
}

/// Refuses any attribute of `node` not in `allowed`.
fn check_attributes(
    doc: &roxmltree::Document<'_>,
    node: roxmltree::Node<'_, '_>,
    allowed: &[&'static str],
) -> Result<(), SchemaError> {
    for attribute in node.attributes() {
        if attribute.namespace().is_some() || !allowed.contains(&attribute.name()) {
            return Err(SchemaError::UnknownAttribute {
                element: node.tag_name().name().to_string(),
                attribute: attribute.name().to_string(),
                line: line_of(doc, node),
                allowed: allowed.to_vec(),
            });
        }
    }
    Ok(())
}

/// Reads a boolean attribute, `false` when absent.
fn bool_attribute(
    node: roxmltree::Node<'_, '_>,
    prop: &str,
    attribute: &'static str,
) -> Result<bool, SchemaError> {
    match node.attribute(attribute) {
        None => Ok(false),
        Some(text) => value::parse_bool(text).map_err(|reason| SchemaError::BadAttribute {
            prop: prop.to_string(),
            attribute,
            value: text.to_string(),
            reason,
        }),
    }
}

/// Reads one `<prop>` element (and its choices).
fn prop_from_xml(
    doc: &roxmltree::Document<'_>,
    node: roxmltree::Node<'_, '_>,
) -> Result<Prop, SchemaError> {
    check_attributes(doc, node, &PROP_ATTRIBUTES)?;
    let Some(name) = node.attribute("name") else {
        return Err(SchemaError::MissingName {
            line: line_of(doc, node),
        });
    };
    let ty = match node.attribute("type") {
        None => PropType::Str,
        Some(text) => text
            .parse()
            .map_err(|err: UnknownPropType| SchemaError::BadAttribute {
                prop: name.to_string(),
                attribute: "type",
                value: text.to_string(),
                reason: err.to_string(),
            })?,
    };
    let mut prop = Prop::new(name, ty);
    prop.description = node
        .attribute("description")
        .unwrap_or_default()
        .to_string();
    prop.default = node.attribute("value").map(str::to_string);
    prop.key = bool_attribute(node, name, "key")?;
    prop.optional = bool_attribute(node, name, "optional")?;
    prop.readonly = bool_attribute(node, name, "readonly")?;
    for element in child_elements(doc, node)? {
        check_attributes(doc, element, &CHOICE_ATTRIBUTES)?;
        let Some(choice_name) = element.attribute("name") else {
            return Err(SchemaError::MissingName {
                line: line_of(doc, element),
            });
        };
        if let Some(grandchild) = child_elements(doc, element)?.first() {
            return Err(SchemaError::UnexpectedElement {
                element: grandchild.tag_name().name().to_string(),
                line: line_of(doc, *grandchild),
            });
        }
        let mut choice = Choice::new(choice_name);
        if let Some(value) = element.attribute("value") {
            choice.value = value.to_string();
        }
        choice.description = element
            .attribute("description")
            .unwrap_or_default()
            .to_string();
        prop.choices.push(choice);
    }
    Ok(prop)
}

/// Parameters rendered with sensitive values hidden; see [`Schema::redacted`].
pub struct Redacted<'a> {
    schema: &'a Schema,
    params: &'a Params,
}

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (index, (name, value)) in self.params.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            let hidden = self.params.is_sensitive(name)
                || self.schema.prop(name).is_some_and(Prop::is_sensitive);
            write!(f, "{}=", name.escape_debug())?;
            if hidden {
                f.write_str("***")?;
            } else {
                write!(f, "{value:?}")?;
            }
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::params::inherit;

    /// The seed's instance schema of the `hosting` resource, as printed.
    const SEED_INSTANCE_XML: &str = "<schema>
	<prop name='hostname' type='domain' description='Virtual web host name'/>
	<prop name='ip' type='ip' description='Virtual web host IP'/>
	<prop name='port' type='unum' value='80' description='Virtual web host port'/>
	<prop name='username' description='Owner account of virtual web host'/>
	<prop name='docroot' optional='true' description='Document root name of virtual web host'/>
	<prop name='docrootpath' readonly='true' description='Document root directory full path'/>
	<prop name='status' type='select' value='starting' description='Status of virtual web host'>
		<prop name='starting' value='1' description='Starting virtual web host'/>
		<prop name='stopping' value='3' description='Stopping virtual web host'/>
		<prop name='pausing' value='5' description='Pausing virtual web host'/>
		<prop name='continuing' value='7' description='Continuing virtual web host'/>
	</prop>
	<prop name='index' type='bool' value='false' description='Indexing flag'/>
	<prop name='idomian' optional='true' type='domain' description='Instant alias of virtual web host'/>
	<prop name='dedicatedip' type='bool' value='false' description='true if IP property is dedicated IP'/>
	<prop name='ss_lid' optional='true' description='Site Studio lid'/>
	<prop name='applevel' type='select' optional='true' description='Web applications isolating level'>
		<prop name='inproc' value='0' description='Inproc application'/>
		<prop name='outproc' value='1' description='Outproc application'/>
		<prop name='pooled' value='2' description='Pooled application'/>
	</prop>
</schema>";

    /// The seed's configuration schema of the same resource, as printed (line breaks
    /// inside attribute values included; XML turns them into spaces).
    const SEED_CONFIG_XML: &str = r"<schema>
	<prop name='logsdir' type='path' description='Log files directory'/>
	<prop name='suspendskeleton' type='path' value='\skeleton\suspend' description='Suspned skeleton location'/>
	<prop name='inheritdefaultdocs' type='bool' value='false' description='Direct to inherit default documents 
from default web properties'/> <prop name='removecontent' value='false' type='bool' description='Force to remove all content from deleted
website'/> <prop name='enableparentpath' value='true' type='bool' description='If true using of absolute pathes (such
as \somedir\somescript.asp) in the ASP scripts will be enabled'/> <prop name='defaultdocs' value='default.htm, default.asp, default.html, index.html, index.htm, default.stm,
index.stm, default.shtml, index.shtml, default.shtm, index.shtm, default.aspx, index.aspx' description='List
of default documents'/> <prop name='applevel' type='select' value='pooled' description='Web applications isolating level'> <prop name='inproc' value='0' description='Inproc application'/> <prop name='outproc' value='1' description='Outproc application'/> <prop name='pooled' value='2' description='Pooled application'/> </prop> </schema>";

    fn seed_instance() -> Schema {
        Schema::from_xml(SEED_INSTANCE_XML)
            .and_then(|schema| schema.with_logical_key("hostname"))
            .unwrap()
    }

    fn seed_config() -> Schema {
        Schema::from_xml(SEED_CONFIG_XML).unwrap()
    }

    fn schema(props: Vec<Prop>) -> Schema {
        Schema::new(props).unwrap()
    }

    fn schema_err(props: Vec<Prop>) -> SchemaError {
        Schema::new(props).unwrap_err()
    }

    fn xml_err(xml: &str) -> SchemaError {
        Schema::from_xml(xml).unwrap_err()
    }

    fn errors(result: Result<Params, ParamErrors>) -> Vec<ParamError> {
        result.unwrap_err().into_vec()
    }

    /// A small instance schema: key `name`, required `size`, defaulted `mode`, optional
    /// `note`, read-only `path`, password `secret`.
    fn small() -> Schema {
        schema(vec![
            Prop::new("name", PropType::Domain).mark_key(),
            Prop::new("size", PropType::Unum),
            Prop::new("mode", PropType::Select)
                .with_default("fast")
                .with_choice(Choice::new("fast").with_value("f"))
                .with_choice(Choice::new("slow").with_value("s")),
            Prop::new("note", PropType::Str).mark_optional(),
            Prop::new("path", PropType::Path).mark_readonly(),
            Prop::new("secret", PropType::Password).mark_optional(),
        ])
    }

    #[test]
    fn prop_type_names_round_trip() {
        for ty in PropType::ALL {
            assert_eq!(ty.as_str().parse::<PropType>(), Ok(ty));
            assert_eq!(ty.to_string(), ty.as_str());
            let json = serde_json::to_string(&ty).unwrap();
            assert_eq!(json, format!("\"{ty}\""));
            assert_eq!(serde_json::from_str::<PropType>(&json).unwrap(), ty);
        }
        assert_eq!(PropType::default(), PropType::Str);
        let err = "string".parse::<PropType>().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown property type \"string\"")
        );
        assert!("Str".parse::<PropType>().is_err());
        assert!(PropType::Password.is_sensitive());
        assert!(!PropType::Str.is_sensitive());
    }

    #[test]
    fn seed_instance_schema_parses() {
        let schema = seed_instance();
        assert_eq!(
            schema.names().collect::<Vec<_>>(),
            [
                "hostname",
                "ip",
                "port",
                "username",
                "docroot",
                "docrootpath",
                "status",
                "index",
                "idomian",
                "dedicatedip",
                "ss_lid",
                "applevel"
            ]
        );
        assert_eq!(
            schema.key_prop().map(|prop| prop.name.as_str()),
            Some("hostname")
        );
        let port = schema.prop("port").unwrap();
        assert_eq!(
            (port.ty, port.default.as_deref()),
            (PropType::Unum, Some("80"))
        );
        assert!(port.is_required());
        let username = schema.prop("username").unwrap();
        assert_eq!(username.ty, PropType::Str);
        assert_eq!(username.description, "Owner account of virtual web host");
        assert!(schema.prop("docroot").unwrap().optional);
        let docrootpath = schema.prop("docrootpath").unwrap();
        assert!(docrootpath.readonly && !docrootpath.is_required());
        let status = schema.prop("status").unwrap();
        assert_eq!(status.ty, PropType::Select);
        assert_eq!(status.choices.len(), 4);
        assert_eq!(
            status.choice("pausing").map(|c| c.value.as_str()),
            Some("5")
        );
        assert_eq!(
            status.choice("continuing").map(|c| c.description.as_str()),
            Some("Continuing virtual web host")
        );
        let applevel = schema.prop("applevel").unwrap();
        assert!(applevel.optional && applevel.default.is_none());
        assert_eq!(applevel.expected(), "one of: inproc, outproc, pooled");
    }

    #[test]
    fn seed_config_schema_parses_and_normalises_attribute_line_breaks() {
        let config = seed_config();
        assert_eq!(config.props().len(), 7);
        assert_eq!(
            config.prop("suspendskeleton").unwrap().default.as_deref(),
            Some(r"\skeleton\suspend")
        );
        assert_eq!(
            config.prop("inheritdefaultdocs").unwrap().description,
            "Direct to inherit default documents  from default web properties"
        );
        let defaultdocs = config
            .prop("defaultdocs")
            .unwrap()
            .default
            .as_deref()
            .unwrap();
        assert!(
            defaultdocs.contains("default.stm, index.stm"),
            "{defaultdocs}"
        );
        assert!(!defaultdocs.contains('\n'));
        assert_eq!(
            config.prop("applevel").unwrap().default.as_deref(),
            Some("pooled")
        );
        seed_instance().check_config_schema(&config).unwrap();
    }

    #[test]
    fn seed_example_parameters_build_the_collection_the_implementation_sees() {
        let instance_schema = seed_instance();
        let config_schema = seed_config();
        let own = config_schema
            .check_config(&Params::from([("logsdir", r"C:\hosting\logs")]))
            .unwrap();
        let account = Params::from([("homes", r"C:\home"), ("logsdir", r"C:\logs")]);
        let config = inherit(&[&account], &own);
        let caller = Params::from([
            ("hostname", "WWW.Example.com"),
            ("ip", "192.0.2.10"),
            ("username", "john"),
            ("docroot", "www"),
            ("dedicatedip", "yes"),
            ("status", "stopping"),
        ]);
        let params = instance_schema.apply(&config, &caller, Op::Create).unwrap();
        let expected = Params::from([
            // Inherited from the parent account, own config wins for logsdir.
            ("homes", r"C:\home"),
            ("logsdir", r"C:\hosting\logs"),
            // Own config defaults.
            ("suspendskeleton", r"\skeleton\suspend"),
            ("inheritdefaultdocs", "false"),
            ("removecontent", "false"),
            ("enableparentpath", "true"),
            (
                "defaultdocs",
                "default.htm, default.asp, default.html, index.html, index.htm, default.stm, index.stm, default.shtml, index.shtml, default.shtm, index.shtm, default.aspx, index.aspx",
            ),
            // Not passed, described in both schemas: the config value (pooled).
            ("applevel", "2"),
            // Passed, in canonical form.
            ("hostname", "www.example.com"),
            ("ip", "192.0.2.10"),
            ("username", "john"),
            ("docroot", "www"),
            ("dedicatedip", "true"),
            ("status", "3"),
            // Instance defaults.
            ("port", "80"),
            ("index", "false"),
        ]);
        assert_eq!(params, expected);
    }

    #[test]
    fn seed_example_problems_are_reported_at_once() {
        let schema = seed_instance();
        let caller = Params::from([
            ("ip", "192.0.2.300"),
            ("port", "-80"),
            ("docrootpath", r"C:\inetpub\www"),
            ("status", "running"),
            ("HostName", "www.example.com"),
        ]);
        let found = errors(schema.apply(&Params::new(), &caller, Op::Create));
        let messages: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "missing key parameter \"hostname\"",
                "invalid value \"192.0.2.300\" for parameter \"ip\": not an IPv4 or IPv6 address (expected an IPv4 or IPv6 address such as 192.0.2.1 or 2001:db8::1)",
                "invalid value \"-80\" for parameter \"port\": negative (expected an unsigned 64-bit integer)",
                "missing required parameter \"username\"",
                "parameter \"docrootpath\" is read-only and cannot be passed",
                "invalid value \"running\" for parameter \"status\": not one of the choices (expected one of: starting, stopping, pausing, continuing)",
                "unknown parameter \"HostName\" (did you mean \"hostname\"? names are lower case); allowed parameters: hostname, ip, port, username, docroot, status, index, idomian, dedicatedip, ss_lid, applevel",
            ]
        );
        assert_eq!(found[0].param(), "hostname");
        assert_eq!(found[6].param(), "HostName");
    }

    #[test]
    fn key_is_required_for_every_operation() {
        let schema = small();
        for op in [
            Op::Create,
            Op::Get,
            Op::Update,
            Op::Delete,
            Op::Suspend,
            Op::Resume,
        ] {
            let found = errors(schema.apply(&Params::new(), &Params::from([("size", "1")]), op));
            assert!(
                found.contains(&ParamError::MissingKey {
                    name: "name".to_string()
                }),
                "{op}: {found:?}"
            );
        }
    }

    #[test]
    fn only_create_requires_parameters_and_adds_defaults() {
        let schema = small();
        let key_only = Params::from([("name", "a.example")]);
        assert_eq!(
            errors(schema.apply(&Params::new(), &key_only, Op::Create)),
            [ParamError::Missing {
                name: "size".to_string()
            }]
        );
        for op in [Op::Get, Op::Update, Op::Delete, Op::Suspend, Op::Resume] {
            assert_eq!(
                schema.apply(&Params::new(), &key_only, op),
                Ok(key_only.clone()),
                "{op}"
            );
        }
        let created = schema
            .apply(
                &Params::new(),
                &Params::from([("name", "a.example"), ("size", "3")]),
                Op::Create,
            )
            .unwrap();
        assert_eq!(
            created,
            Params::from([("name", "a.example"), ("size", "3"), ("mode", "f")])
        );
    }

    #[test]
    fn update_checks_the_changes_and_keeps_the_config() {
        let schema = small();
        let config = Params::from([("region", "eu")]);
        let changes = Params::from([("name", "a.example"), ("mode", "slow"), ("size", "010")]);
        assert_eq!(
            schema.apply(&config, &changes, Op::Update),
            Ok(Params::from([
                ("region", "eu"),
                ("name", "a.example"),
                ("mode", "s"),
                ("size", "10")
            ]))
        );
        let bad = Params::from([("name", "a.example"), ("mode", "s"), ("path", "/x")]);
        assert_eq!(errors(schema.apply(&config, &bad, Op::Update)).len(), 2);
    }

    #[test]
    fn readonly_parameters_are_refused_and_not_listed_as_allowed() {
        let schema = small();
        let caller = Params::from([
            ("name", "a.example"),
            ("size", "1"),
            ("path", "/srv/a"),
            ("bogus", ""),
        ]);
        let found = errors(schema.apply(&Params::new(), &caller, Op::Create));
        assert_eq!(
            found[0],
            ParamError::ReadOnly {
                name: "path".to_string()
            }
        );
        let ParamError::Unknown {
            allowed,
            suggestion,
            ..
        } = &found[1]
        else {
            panic!("{found:?}");
        };
        assert_eq!(allowed, &["name", "size", "mode", "note", "secret"]);
        assert_eq!(suggestion, &None);
        assert_eq!(
            found[1].to_string(),
            "unknown parameter \"bogus\"; allowed parameters: name, size, mode, note, secret"
        );
    }

    #[test]
    fn readonly_parameters_take_their_default() {
        let schema = schema(vec![
            Prop::new("id", PropType::Num).mark_key(),
            Prop::new("state", PropType::Str)
                .mark_readonly()
                .with_default("new"),
            Prop::new("usage", PropType::Unum).mark_readonly(),
        ]);
        let created = schema.apply(&Params::new(), &Params::from([("id", "1")]), Op::Create);
        assert_eq!(created, Ok(Params::from([("id", "1"), ("state", "new")])));
    }

    #[test]
    fn unknown_names_are_refused_even_without_properties() {
        let found =
            errors(Schema::default().apply(&Params::new(), &Params::from([("x", "1")]), Op::Get));
        assert_eq!(
            found[0].to_string(),
            "unknown parameter \"x\"; no parameters are allowed"
        );
        let found = errors(small().apply(&Params::new(), &Params::from([("a\nb", "1")]), Op::Get));
        assert!(
            found
                .iter()
                .any(|e| e.to_string().starts_with("unknown parameter \"a\\nb\""))
        );
    }

    #[test]
    fn config_and_instance_precedence() {
        let schema = schema(vec![
            Prop::new("id", PropType::Num).mark_key(),
            Prop::new("shared", PropType::Str)
                .mark_optional()
                .with_default("instance-default"),
            Prop::new("required", PropType::Str),
            Prop::new("plain", PropType::Str)
                .mark_optional()
                .with_default("d"),
        ]);
        let config = Params::from([
            ("shared", "from-config"),
            ("required", "from-config"),
            ("other", "c"),
        ]);
        // Not passed: the config value wins over the instance default, and satisfies
        // a required parameter.
        let applied = schema
            .apply(&config, &Params::from([("id", "1")]), Op::Create)
            .unwrap();
        assert_eq!(applied.get("shared"), Some("from-config"));
        assert_eq!(applied.get("required"), Some("from-config"));
        assert_eq!(applied.get("plain"), Some("d"));
        assert_eq!(applied.get("other"), Some("c"));
        // Passed: the instance value wins over the config value.
        let caller = Params::from([("id", "1"), ("shared", "passed"), ("required", "mine")]);
        let applied = schema.apply(&config, &caller, Op::Create).unwrap();
        assert_eq!(applied.get("shared"), Some("passed"));
        assert_eq!(applied.get("required"), Some("mine"));
        // A config attribute is not a caller parameter: passing "other" is refused.
        let caller = Params::from([("id", "1"), ("other", "x")]);
        assert!(matches!(
            errors(schema.apply(&config, &caller, Op::Create))[..],
            [ParamError::Unknown { .. }]
        ));
    }

    #[test]
    fn select_takes_names_and_stores_values() {
        let schema = small();
        let caller = Params::from([("name", "a.example"), ("size", "1"), ("mode", "slow")]);
        assert_eq!(
            schema
                .apply(&Params::new(), &caller, Op::Create)
                .unwrap()
                .get("mode"),
            Some("s")
        );
        for value in ["s", "SLOW", "", " slow"] {
            let caller = Params::from([("name", "a.example"), ("size", "1"), ("mode", value)]);
            let found = errors(schema.apply(&Params::new(), &caller, Op::Create));
            assert!(
                matches!(&found[..], [ParamError::Invalid(e)] if e.param() == "mode"),
                "{value:?}"
            );
        }
    }

    #[test]
    fn every_type_is_checked_through_apply() {
        let props: Vec<Prop> = PropType::ALL
            .into_iter()
            .map(|ty| {
                let prop = Prop::new(ty.as_str(), ty).mark_optional();
                if ty == PropType::Select {
                    prop.with_choice(Choice::new("a"))
                } else {
                    prop
                }
            })
            .collect();
        let schema = schema(props);
        let good = Params::from([
            ("str", ""),
            ("num", "-1"),
            ("unum", "1"),
            ("bool", "ON"),
            ("select", "a"),
            ("path", "/x"),
            ("password", "p"),
            ("ip", "::1"),
            ("domain", "A.b"),
            ("url", "http://a.b/"),
            ("mail", "a@B.c"),
            ("mask", "/8"),
            ("mac", "AA-BB-CC-DD-EE-FF"),
        ]);
        let applied = schema.apply(&Params::new(), &good, Op::Create).unwrap();
        assert_eq!(applied.get("bool"), Some("true"));
        assert_eq!(applied.get("domain"), Some("a.b"));
        assert_eq!(applied.get("mail"), Some("a@b.c"));
        assert_eq!(applied.get("mask"), Some("255.0.0.0"));
        assert_eq!(applied.get("mac"), Some("aa:bb:cc:dd:ee:ff"));
        let bad = Params::from([
            ("num", "x"),
            ("unum", "-1"),
            ("bool", "maybe"),
            ("select", "b"),
            ("path", ""),
            ("password", ""),
            ("ip", "1.2.3"),
            ("domain", "-a"),
            ("url", "a.b"),
            ("mail", "a"),
            ("mask", "255.0.255.0"),
            ("mac", "aa:bb"),
        ]);
        let found = errors(schema.apply(&Params::new(), &bad, Op::Create));
        assert_eq!(found.len(), 12);
        assert!(found.iter().all(|e| matches!(e, ParamError::Invalid(_))));
    }

    #[test]
    fn passwords_never_appear_in_errors_or_debug_output() {
        let schema = schema(vec![
            Prop::new("user", PropType::Str).mark_key(),
            Prop::new("password", PropType::Password),
        ]);
        let secret = "hunter2-s3cret";
        let caller = Params::from([("user", "john"), ("password", secret)]);
        let applied = schema.apply(&Params::new(), &caller, Op::Create).unwrap();
        assert_eq!(applied.get("password"), Some(secret));
        assert!(applied.is_sensitive("password"));
        assert!(!format!("{applied:?}").contains(secret));
        assert!(!format!("{applied:#?}").contains(secret));
        assert_eq!(
            schema.redacted(&caller).to_string(),
            "{password=***, user=\"john\"}"
        );
        assert!(!format!("{:?}", schema.redacted(&caller)).contains(secret));

        // An empty password, plus a password passed where none is expected (read-only,
        // unknown): no error shows a value.
        let bad = Params::from([("user", "john"), ("password", "")]);
        let err = schema.apply(&Params::new(), &bad, Op::Create).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for parameter \"password\": empty (expected a non-empty password)"
        );
        let readonly =
            Schema::new(vec![Prop::new("pw", PropType::Password).mark_readonly()]).unwrap();
        let err = readonly
            .apply(
                &Params::new(),
                &Params::from([("pw", secret), ("pw2", secret)]),
                Op::Create,
            )
            .unwrap_err();
        for text in [err.to_string(), format!("{err:?}"), format!("{err:#?}")] {
            assert!(!text.contains(secret), "{text}");
        }

        // Config passwords are marked too, and stay marked through inheritance.
        let config_schema = Schema::new(vec![Prop::new("dbpassword", PropType::Password)]).unwrap();
        let config = config_schema
            .check_config(&Params::from([("dbpassword", secret)]))
            .unwrap();
        let merged = inherit(&[&config], &Params::new());
        let applied = schema.apply(&merged, &caller, Op::Create).unwrap();
        assert!(!format!("{applied:?}").contains(secret));
        assert_eq!(
            schema.redacted(&applied).to_string(),
            "{dbpassword=***, password=***, user=\"john\"}"
        );
    }

    #[test]
    fn mark_sensitive_restores_marks_on_loaded_params() {
        let schema = small();
        let mut loaded = Params::from([("name", "a"), ("secret", "x")]);
        assert!(!loaded.is_sensitive("secret"));
        schema.mark_sensitive(&mut loaded);
        assert!(loaded.is_sensitive("secret"));
        assert!(!loaded.is_sensitive("name"));
    }

    #[test]
    fn check_config_applies_defaults_and_reports_everything() {
        let config = seed_config();
        let found = errors(config.check_config(&Params::from([
            ("removecontent", "perhaps"),
            ("logdir", "/x"),
        ])));
        let messages: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[0], "missing required parameter \"logsdir\"");
        assert!(
            messages[1].starts_with("invalid value \"perhaps\" for parameter \"removecontent\"")
        );
        assert!(
            messages[2].starts_with("unknown parameter \"logdir\"; allowed parameters: logsdir, ")
        );
        let err = config.check_config(&Params::new()).unwrap_err();
        assert_eq!(err.to_string(), "missing required parameter \"logsdir\"");
    }

    #[test]
    fn check_config_ignores_readonly_and_key() {
        let schema = schema(vec![
            Prop::new("fixed", PropType::Str).mark_readonly(),
            Prop::new("id", PropType::Num).mark_key(),
            Prop::new("opt", PropType::Str).mark_optional(),
        ]);
        let checked = schema
            .check_config(&Params::from([("fixed", "x"), ("id", "+1")]))
            .unwrap();
        assert_eq!(checked, Params::from([("fixed", "x"), ("id", "1")]));
        // A read-only property without value is still required in configuration: only
        // `optional` lets it be left out there.
        assert_eq!(
            errors(schema.check_config(&Params::from([("id", "1")]))),
            [ParamError::Missing {
                name: "fixed".to_string()
            }]
        );
    }

    #[test]
    fn config_and_instance_schemas_must_agree_on_shared_properties() {
        let instance = seed_instance();
        let other_type = Schema::new(vec![Prop::new("port", PropType::Num)]).unwrap();
        assert_eq!(
            instance
                .check_config_schema(&other_type)
                .unwrap_err()
                .to_string(),
            "property \"port\" differs between the config and instance schemas: type num in the config schema, unum in the instance schema"
        );
        let other_choices = Schema::new(vec![
            Prop::new("applevel", PropType::Select)
                .with_choice(Choice::new("inproc").with_value("0")),
        ])
        .unwrap();
        assert!(matches!(
            instance.check_config_schema(&other_choices),
            Err(SchemaError::Incompatible { prop, .. }) if prop == "applevel"
        ));
        instance.check_config_schema(&Schema::default()).unwrap();
    }

    #[test]
    fn param_errors_display_every_problem() {
        let err = small()
            .apply(&Params::new(), &Params::new(), Op::Create)
            .unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(
            err.to_string(),
            "missing key parameter \"name\"; missing required parameter \"size\""
        );
        assert_eq!(err.as_slice().len(), 2);
        assert_eq!(err.into_iter().count(), 2);
    }

    #[test]
    fn xml_structure_errors() {
        assert!(matches!(
            xml_err("<schema><prop name='a'></schema>"),
            SchemaError::Xml { .. }
        ));
        assert!(matches!(xml_err(""), SchemaError::Xml { .. }));
        assert!(matches!(
            xml_err("<!DOCTYPE schema [<!ENTITY x 'y'>]><schema/>"),
            SchemaError::Xml { .. }
        ));
        assert_eq!(
            xml_err("<props/>").to_string(),
            "the root element of a schema must be <schema>, found <props>"
        );
        assert_eq!(
            xml_err("<schema>\n<property name='a'/></schema>").to_string(),
            "unexpected element <property> at line 2; only <prop> elements belong here"
        );
        assert_eq!(
            xml_err("<schema>oops<prop name='a'/></schema>").to_string(),
            "unexpected text \"oops\" at line 1"
        );
        assert_eq!(
            xml_err("<schema>\n\n<prop type='num'/></schema>").to_string(),
            "<prop> at line 3 has no name attribute"
        );
        assert_eq!(
            xml_err("<schema><prop name='a' Optional='true'/></schema>").to_string(),
            "unknown attribute \"Optional\" on <prop> at line 1; allowed attributes: name, description, type, value, key, optional, readonly"
        );
        assert!(matches!(
            xml_err("<schema version='1'/>"),
            SchemaError::UnknownAttribute { attribute, .. } if attribute == "version"
        ));
        assert_eq!(
            xml_err("<schema><prop name='a' type='string'/></schema>").to_string(),
            "invalid type attribute \"string\" of property \"a\": unknown property type \"string\"; known types: str, num, unum, bool, select, path, password, ip, domain, url, mail, mask, mac"
        );
        assert_eq!(
            xml_err("<schema><prop name='a' optional='maybe'/></schema>").to_string(),
            "invalid optional attribute \"maybe\" of property \"a\": not a boolean"
        );
        assert!(matches!(
            xml_err("<schema><prop name='s' type='select'><prop name='c' type='num'/></prop></schema>"),
            SchemaError::UnknownAttribute { attribute, .. } if attribute == "type"
        ));
        assert!(matches!(
            xml_err("<schema><prop name='s' type='select'><prop value='1'/></prop></schema>"),
            SchemaError::MissingName { line: 1 }
        ));
        assert!(matches!(
            xml_err("<schema><prop name='s' type='select'><prop name='c'><prop name='d'/></prop></prop></schema>"),
            SchemaError::UnexpectedElement { element, .. } if element == "prop"
        ));
        assert!(matches!(
            xml_err("<x:schema xmlns:x='urn:x'/>"),
            SchemaError::Root { .. }
        ));
    }

    #[test]
    fn xml_accepts_comments_blank_text_and_boolean_words() {
        let schema = Schema::from_xml(
            "<?xml version='1.0'?>\n<!-- hosting -->\n<schema>\n  <!-- the key -->\n  <prop name=\"id\" type=\"num\" key=\"TRUE\"/>\n  <prop name='a' optional='yes' readonly='0'/>\n</schema>\n",
        )
        .unwrap();
        assert!(schema.prop("id").unwrap().key);
        let a = schema.prop("a").unwrap();
        assert!(a.optional && !a.readonly);
        assert_eq!(Schema::from_xml("<schema/>").unwrap(), Schema::default());
    }

    #[test]
    fn choice_value_defaults_to_its_name() {
        let schema = Schema::from_xml(
            "<schema><prop name='s' type='select' value='b'><prop name='a'/><prop name='b' value='2'/></prop></schema>",
        )
        .unwrap();
        let prop = schema.prop("s").unwrap();
        assert_eq!(
            prop.choices,
            [Choice::new("a"), Choice::new("b").with_value("2")]
        );
        let applied = schema
            .apply(&Params::new(), &Params::new(), Op::Create)
            .unwrap();
        assert_eq!(applied.get("s"), Some("2"));
        let applied = schema
            .apply(&Params::new(), &Params::from([("s", "a")]), Op::Create)
            .unwrap();
        assert_eq!(applied.get("s"), Some("a"));
    }

    #[test]
    fn property_names_are_lower_case_identifiers() {
        for name in ["hostname", "ss_lid", "_x", "a1", "a-b", "a.b"] {
            schema(vec![Prop::new(name, PropType::Str)]);
        }
        let cases = [
            ("", "empty"),
            ("HostName", "names are lower case"),
            ("1abc", "a name starts with a letter or _"),
            ("-a", "a name starts with a letter or _"),
            ("a b", "a name holds only a-z, 0-9, _, - and ."),
            ("é", "a name starts with a letter or _"),
            ("aé", "a name holds only a-z, 0-9, _, - and ."),
        ];
        for (name, reason) in cases {
            assert_eq!(
                schema_err(vec![Prop::new(name, PropType::Str)]),
                SchemaError::InvalidName {
                    name: name.to_string(),
                    reason
                },
                "{name:?}"
            );
        }
    }

    #[test]
    fn schema_rules() {
        assert_eq!(
            schema_err(vec![
                Prop::new("a", PropType::Str),
                Prop::new("a", PropType::Num)
            ])
            .to_string(),
            "duplicate property \"a\""
        );
        assert_eq!(
            schema_err(vec![Prop::new("s", PropType::Select)]).to_string(),
            "select property \"s\" has no choices"
        );
        assert_eq!(
            schema_err(vec![
                Prop::new("n", PropType::Num).with_choice(Choice::new("a"))
            ])
            .to_string(),
            "property \"n\" of type num has choices; only select properties take choices"
        );
        let select = |choices: &[&str]| {
            let mut prop = Prop::new("s", PropType::Select);
            for name in choices {
                prop = prop.with_choice(Choice::new(*name));
            }
            prop
        };
        assert_eq!(
            schema_err(vec![select(&["a", "a"])]).to_string(),
            "duplicate choice \"a\" in property \"s\""
        );
        for (name, reason) in [
            ("", "empty"),
            (" a", "leading or trailing whitespace"),
            ("a\tb", "control characters"),
        ] {
            assert_eq!(
                schema_err(vec![select(&[name])]),
                SchemaError::InvalidChoice {
                    prop: "s".to_string(),
                    choice: name.to_string(),
                    reason
                }
            );
        }
        assert_eq!(
            schema_err(vec![
                Prop::new("p", PropType::Password).with_default("changeme")
            ])
            .to_string(),
            "password property \"p\" cannot have a default value"
        );
    }

    #[test]
    fn defaults_must_have_their_property_form() {
        let cases = [
            (PropType::Num, "ten"),
            (PropType::Unum, "-1"),
            (PropType::Bool, "maybe"),
            (PropType::Path, ""),
            (PropType::Ip, "localhost"),
            (PropType::Domain, "a_b"),
            (PropType::Url, "example.com"),
            (PropType::Mail, "nobody"),
            (PropType::Mask, "/40"),
            (PropType::Mac, "00:11"),
        ];
        for (ty, default) in cases {
            let err = schema_err(vec![Prop::new("d", ty).with_default(default)]);
            assert!(
                matches!(&err, SchemaError::InvalidDefault { prop, .. } if prop == "d"),
                "{ty}: {err}"
            );
        }
        let err = schema_err(vec![
            Prop::new("s", PropType::Select)
                .with_default("1")
                .with_choice(Choice::new("a").with_value("1")),
        ]);
        assert_eq!(
            err.to_string(),
            "property \"s\" has an invalid default: invalid value \"1\" for parameter \"s\": not one of the choices (expected one of: a)"
        );
        schema(vec![Prop::new("d", PropType::Str).with_default("")]);
    }

    #[test]
    fn at_most_one_key_property() {
        let err = schema_err(vec![
            Prop::new("a", PropType::Str).mark_key(),
            Prop::new("b", PropType::Num).mark_key(),
        ]);
        assert_eq!(
            err.to_string(),
            "properties \"a\" and \"b\" are both marked key; a schema has at most one key property (the logical key)"
        );
        let keyed = schema(vec![
            Prop::new("a", PropType::Str).mark_key(),
            Prop::new("b", PropType::Str),
        ]);
        assert!(matches!(
            keyed.clone().with_logical_key("b"),
            Err(SchemaError::MultipleKeys { .. })
        ));
        assert_eq!(keyed.clone().with_logical_key("a"), Ok(keyed));
        assert_eq!(
            small().with_logical_key("nope").unwrap_err().to_string(),
            "logical key \"nope\" is not a property of the schema"
        );
    }

    #[test]
    fn key_property_must_be_passable() {
        let cases = [
            (
                Prop::new("k", PropType::Str).mark_key().mark_optional(),
                "cannot be optional",
            ),
            (
                Prop::new("k", PropType::Str).mark_key().mark_readonly(),
                "cannot be read-only",
            ),
            (
                Prop::new("k", PropType::Str).mark_key().with_default("x"),
                "cannot have a default",
            ),
            (
                Prop::new("k", PropType::Password).mark_key(),
                "cannot be a password",
            ),
        ];
        for (prop, reason) in cases {
            let unmarked = Prop {
                key: false,
                ..prop.clone()
            };
            assert_eq!(
                schema_err(vec![prop]),
                SchemaError::BadKey {
                    prop: "k".to_string(),
                    reason
                }
            );
            let err = schema(vec![unmarked]).with_logical_key("k").unwrap_err();
            assert_eq!(
                err,
                SchemaError::BadKey {
                    prop: "k".to_string(),
                    reason
                }
            );
        }
        assert_eq!(
            schema_err(vec![
                Prop::new("k", PropType::Str).mark_key().mark_optional()
            ])
            .to_string(),
            "key property \"k\" cannot be optional; the logical key must be passed on every call"
        );
    }

    #[test]
    fn json_form_round_trips() {
        let schema = seed_instance();
        let json = serde_json::to_value(&schema).unwrap();
        let port = &json["props"][2];
        assert_eq!(
            port,
            &serde_json::json!({"name": "port", "description": "Virtual web host port", "type": "unum", "default": "80"})
        );
        assert_eq!(json["props"][0]["key"], serde_json::json!(true));
        assert_eq!(
            json["props"][6]["choices"][0],
            serde_json::json!({"name": "starting", "value": "1", "description": "Starting virtual web host"})
        );
        let back: Schema = serde_json::from_value(json).unwrap();
        assert_eq!(back, schema);
    }

    #[test]
    fn json_form_is_checked() {
        let parsed: Schema = serde_json::from_str(
            r#"{"props": [{"name": "s", "type": "select", "choices": [{"name": "a"}, {"name": "b", "value": "2"}]}, {"name": "t"}]}"#,
        )
        .unwrap();
        assert_eq!(parsed.prop("s").unwrap().choices[0], Choice::new("a"));
        assert_eq!(parsed.prop("t").unwrap().ty, PropType::Str);
        for bad in [
            r#"{"props": [{"name": "s", "type": "select"}]}"#,
            r#"{"props": [{"name": "A"}]}"#,
            r#"{"props": [{"name": "a", "optinal": true}]}"#,
            r#"{"props": [{"name": "a", "type": "string"}]}"#,
            r#"{"props": [], "version": 1}"#,
            r#"{"props": [{"name": "a", "type": "num", "default": "x"}]}"#,
            r#"{"props": [{"name": "s", "type": "select", "choices": [{"name": "a", "extra": 1}]}]}"#,
        ] {
            assert!(serde_json::from_str::<Schema>(bad).is_err(), "{bad}");
        }
        let err = serde_json::from_str::<Schema>(
            r#"{"props": [{"name": "a", "key": true}, {"name": "b", "key": true}]}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("at most one key property"),
            "{err}"
        );
    }

    #[test]
    fn op_names() {
        assert_eq!(Op::Create.to_string(), "create");
        assert_eq!(Op::Resume.as_str(), "resume");
        assert_eq!(serde_json::to_string(&Op::Suspend).unwrap(), "\"suspend\"");
    }
}
