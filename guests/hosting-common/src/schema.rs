//! The attributes and schemas of the `hosting` resource (after the seed's `iis5_website`
//! example), as plain data: each provider turns them into its WIT `description`.

/// `ResourceName`.
pub const RESOURCE_NAME: &str = "hosting";

/// `ParentName`: every site belongs to an account, whose home holds its document root.
pub const PARENT_NAME: &str = "account";

/// `LKey`: the host name, a string key.
pub const LKEY_NAME: &str = "hostname";

/// The type of a property: the subset of the seed's types these schemas use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropType {
    Str,
    Unum,
    Bool,
    Select,
    Path,
    Ip,
    Domain,
}

/// One value of a `select` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub name: &'static str,
    pub value: &'static str,
    pub description: &'static str,
}

/// One property of a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prop {
    pub name: &'static str,
    pub description: &'static str,
    pub ty: PropType,
    pub default: Option<&'static str>,
    pub key: bool,
    pub optional: bool,
    pub readonly: bool,
    pub choices: &'static [Choice],
}

impl Prop {
    /// A required, writable property without default.
    pub const fn new(name: &'static str, ty: PropType, description: &'static str) -> Self {
        Self {
            name,
            description,
            ty,
            default: None,
            key: false,
            optional: false,
            readonly: false,
            choices: &[],
        }
    }

    pub const fn key(mut self) -> Self {
        self.key = true;
        self
    }

    pub const fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    pub const fn readonly(mut self) -> Self {
        self.readonly = true;
        self
    }

    pub const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }

    pub const fn choices(mut self, choices: &'static [Choice]) -> Self {
        self.choices = choices;
        self
    }
}

/// The choices of `status`: the seed's IIS site commands. The providers record the status
/// and report it back; a web server site has no such state of its own.
pub const STATUS_CHOICES: &[Choice] = &[
    Choice {
        name: "starting",
        value: "1",
        description: "starting virtual web host",
    },
    Choice {
        name: "stopping",
        value: "3",
        description: "stopping virtual web host",
    },
    Choice {
        name: "pausing",
        value: "5",
        description: "pausing virtual web host",
    },
    Choice {
        name: "continuing",
        value: "7",
        description: "continuing virtual web host",
    },
];

/// The default of `defaultdocs`.
pub const DEFAULT_DOCS: &str = "index.html, index.htm";

/// The instance parameters.
pub const INSTANCE_SCHEMA: &[Prop] = &[
    Prop::new("hostname", PropType::Domain, "virtual web host name").key(),
    Prop::new("ip", PropType::Ip, "virtual web host ip"),
    Prop::new("port", PropType::Unum, "virtual web host port").default("80"),
    Prop::new(
        "docroot",
        PropType::Str,
        "document root directory, relative to the account's home (default: the host name)",
    )
    .optional(),
    Prop::new(
        "docrootpath",
        PropType::Path,
        "document root directory full path",
    )
    .readonly(),
    Prop::new(
        "index",
        PropType::Bool,
        "indexing flag: list directories without an index document",
    )
    .default("false"),
    Prop::new(
        "dedicatedip",
        PropType::Bool,
        "true if ip is a dedicated ip (recorded only)",
    )
    .default("false"),
    Prop::new(
        "status",
        PropType::Select,
        "status of virtual web host (recorded only)",
    )
    .default("starting")
    .choices(STATUS_CHOICES),
];

/// The config attributes.
pub const CONFIG_SCHEMA: &[Prop] = &[
    Prop::new(
        "vhostsdir",
        PropType::Path,
        "directory of the virtual host files, one <hostname>.conf per site, included by the web server",
    ),
    Prop::new("logsdir", PropType::Path, "log files directory"),
    Prop::new(
        "suspendskeleton",
        PropType::Path,
        "directory holding the page served while a site is suspended",
    ),
    Prop::new(
        "removecontent",
        PropType::Bool,
        "force to remove all content from a deleted website",
    )
    .default("false"),
    Prop::new(
        "defaultdocs",
        PropType::Str,
        "list of default documents, separated by commas or spaces",
    )
    .default(DEFAULT_DOCS),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_case_and_unique_and_the_key_is_declared() {
        for schema in [INSTANCE_SCHEMA, CONFIG_SCHEMA] {
            let mut names: Vec<&str> = schema.iter().map(|p| p.name).collect();
            assert!(names.iter().all(|n| *n == n.to_lowercase()));
            names.sort();
            names.dedup();
            assert_eq!(names.len(), schema.len());
        }
        let keys: Vec<&str> = INSTANCE_SCHEMA
            .iter()
            .filter(|p| p.key)
            .map(|p| p.name)
            .collect();
        assert_eq!(keys, [LKEY_NAME]);
        let status = INSTANCE_SCHEMA.iter().find(|p| p.name == "status").unwrap();
        assert!(
            status
                .choices
                .iter()
                .any(|c| Some(c.name) == status.default)
        );
    }
}
