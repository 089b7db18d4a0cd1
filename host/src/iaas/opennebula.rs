//! The `opennebula` cloud: OpenNebula's XML-RPC API (`one.vm.allocate`, `one.vm.action`,
//! `one.vmpool.info`), configured with the seed's keys.
//!
//! A node is one VM allocated from a template built from the cloud's section: the image as its
//! disk (`IMAGE_ID`, `DISK_TARGET`), a NIC on `NET_ID`, `OS_ARCH` and `OS_ROOT`, `CPU` and
//! `MEMORY` (1 and 512 unless given; `INST_TYPE` is kept as `INSTANCE_TYPE`), and, as in the
//! seed, a `CONTEXT` with `HOSTNAME`, `IP_PUBLIC` (`$NIC[IP]`), `IP_GATEWAY` (`NET_GATEWAY`),
//! `NAMESERVER` (`NET_NAMESERVER`), `TARGET` (`CONTEXT_TARGET`) and the contextualization script
//! hex-encoded in `USERDATA` (the image runs `echo "$USERDATA" | xxd -p -r | /bin/sh`). Its
//! `PAASM_*` attributes (owner, service, role, cloud) land in the VM's user template, so a
//! restarted manager finds its VMs in `one.vmpool.info`. `one.vm.action terminate-hard` kills
//! a node. The session string is `USER:PASSWORD`.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

use super::cloud::{Cloud, CloudError, Instance, InstanceState};
use super::http::Endpoint;
use crate::config::IniConfig;

/// The variables an `opennebula` section must have.
pub const REQUIRED: &[&str] = &[
    "URL",
    "USER",
    "PASSWORD",
    "IMAGE_ID",
    "INST_TYPE",
    "NET_ID",
    "NET_GATEWAY",
    "NET_NAMESERVER",
    "OS_ARCH",
    "OS_ROOT",
    "DISK_TARGET",
    "CONTEXT_TARGET",
];

/// What an `opennebula` section configures.
#[derive(Debug, Clone)]
pub struct OpenNebulaSettings {
    pub endpoint: Endpoint,
    pub user: String,
    pub password: String,
    pub image_id: String,
    pub inst_type: String,
    pub net_id: String,
    pub net_gateway: String,
    pub net_nameserver: String,
    pub os_arch: String,
    pub os_root: String,
    pub disk_target: String,
    pub context_target: String,
    pub cpu: String,
    pub memory: String,
    pub manager_ip: Option<String>,
    pub timeout: Duration,
}

impl OpenNebulaSettings {
    /// Reads section `name` (its required keys were checked already).
    pub fn read(ini: &IniConfig, name: &str) -> Result<Self, Vec<String>> {
        let get = |key: &str| ini.get(name, key).unwrap_or_default().trim().to_string();
        let mut errors = Vec::new();
        let endpoint = Endpoint::parse(&get("URL"))
            .map_err(|e| {
                errors.push(format!(
                    "invalid value for \"URL\" in section \"{name}\": {e}"
                ))
            })
            .ok();
        let mut number = |key: &str, default: &str| {
            let text = Some(get(key))
                .filter(|v| !v.is_empty())
                .unwrap_or(default.into());
            if text.parse::<u32>().is_err() {
                errors.push(format!(
                    "invalid value for \"{key}\" in section \"{name}\": expected a whole number, found {text:?}"
                ));
            }
            text
        };
        let cpu = number("CPU", "1");
        let memory = number("MEMORY", "512");
        let image_id = number("IMAGE_ID", "");
        let net_id = number("NET_ID", "");
        for (key, value) in ini.section(name) {
            if value.contains('"') || value.contains('\\') {
                errors.push(format!(
                    "invalid value for \"{key}\" in section \"{name}\": quotes and backslashes cannot go into an OpenNebula template"
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            endpoint: endpoint.expect("no errors"),
            user: get("USER"),
            password: get("PASSWORD"),
            image_id,
            inst_type: get("INST_TYPE"),
            net_id,
            net_gateway: get("NET_GATEWAY"),
            net_nameserver: get("NET_NAMESERVER"),
            os_arch: get("OS_ARCH"),
            os_root: get("OS_ROOT"),
            disk_target: get("DISK_TARGET"),
            context_target: get("CONTEXT_TARGET"),
            cpu,
            memory,
            manager_ip: Some(get("MANAGER_IP")).filter(|v| !v.is_empty()),
            timeout: Duration::from_secs(30),
        })
    }
}

/// One VM of `one.vmpool.info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneVm {
    pub id: String,
    /// OpenNebula's VM state number (3 ACTIVE, 6 DONE, ...).
    pub state: u32,
    pub ip: String,
    pub owner: String,
}

/// The opennebula cloud driver.
pub struct OpenNebulaCloud {
    name: String,
    settings: OpenNebulaSettings,
    owner: String,
    service: String,
    runtime: tokio::runtime::Handle,
}

/// Escapes text for XML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An XML-RPC parameter.
pub enum Param<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
}

/// The `methodCall` document of `method` with `params`.
pub fn method_call(method: &str, params: &[Param]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\"?>\n<methodCall><methodName>{}</methodName><params>",
        escape(method)
    );
    for p in params {
        let value = match p {
            Param::Str(s) => format!("<string>{}</string>", escape(s)),
            Param::Int(i) => format!("<int>{i}</int>"),
            Param::Bool(b) => format!("<boolean>{}</boolean>", u8::from(*b)),
        };
        xml.push_str(&format!("<param><value>{value}</value></param>"));
    }
    xml.push_str("</params></methodCall>\n");
    xml
}

/// OpenNebula's reply `[success, result-or-message, error-code]`: the result as text, or the
/// message with its code.
pub fn parse_reply(xml: &str) -> Result<String, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("bad XML-RPC reply: {e}"))?;
    if let Some(fault) = doc.descendants().find(|n| n.has_tag_name("fault")) {
        let text: Vec<&str> = fault
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        return Err(format!("XML-RPC fault: {}", text.join(" ").trim()));
    }
    let data = doc
        .descendants()
        .find(|n| n.has_tag_name("data"))
        .ok_or("the reply has no array")?;
    let values: Vec<String> = data
        .children()
        .filter(|n| n.has_tag_name("value"))
        .map(|v| {
            // A bare <value>text</value> is a string, as in XML-RPC.
            v.descendants()
                .filter(|n| n.is_text())
                .filter_map(|n| n.text())
                .collect::<String>()
                .trim()
                .to_string()
        })
        .collect();
    let ok = data
        .children()
        .find(|n| n.has_tag_name("value"))
        .and_then(|v| v.children().find(|c| c.has_tag_name("boolean")))
        .and_then(|b| b.text())
        .map(|t| t.trim() == "1");
    match (ok, values.get(1)) {
        (Some(true), Some(result)) => Ok(result.clone()),
        (Some(false), message) => Err(format!(
            "{} (error {})",
            message.cloned().unwrap_or_default(),
            values.get(2).cloned().unwrap_or_default()
        )),
        _ => Err("the reply is not OpenNebula's [success, result, code]".into()),
    }
}

fn child<'a, 'input>(
    n: roxmltree::Node<'a, 'input>,
    name: &str,
) -> Option<roxmltree::Node<'a, 'input>> {
    n.children().find(|c| c.has_tag_name(name))
}

/// The VMs of a `VM_POOL` document.
pub fn parse_pool(xml: &str) -> Result<Vec<OneVm>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("bad VM_POOL: {e}"))?;
    let text = |node: Option<roxmltree::Node>| {
        node.and_then(|n| n.text())
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    Ok(doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("VM"))
        .map(|vm| OneVm {
            id: text(child(vm, "ID")),
            state: text(child(vm, "STATE")).parse().unwrap_or(0),
            ip: text(
                child(vm, "TEMPLATE")
                    .and_then(|t| child(t, "NIC"))
                    .and_then(|n| child(n, "IP")),
            ),
            owner: text(child(vm, "USER_TEMPLATE").and_then(|t| child(t, "PAASM_OWNER"))),
        })
        .collect())
}

impl OpenNebulaCloud {
    /// A driver for cloud `name` of `service`, keeping its owner id in `dir`. Lists the pool
    /// once, so an unreachable endpoint or refused credentials fail at start.
    pub fn new(
        name: &str,
        settings: OpenNebulaSettings,
        dir: &Path,
        service: &str,
    ) -> Result<Self, CloudError> {
        let error = |message: String| CloudError {
            cloud: name.to_string(),
            message,
        };
        let owner = super::ec2::owner_id(dir).map_err(error)?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| error("the opennebula driver needs a tokio runtime".into()))?;
        let cloud = Self {
            name: name.to_string(),
            settings,
            owner,
            service: service.to_string(),
            runtime,
        };
        cloud
            .list_vms()
            .map_err(|e| error(format!("cannot reach the OpenNebula API: {}", e.message)))?;
        Ok(cloud)
    }

    fn error(&self, message: String) -> CloudError {
        CloudError {
            cloud: self.name.clone(),
            message,
        }
    }

    fn session(&self) -> String {
        format!("{}:{}", self.settings.user, self.settings.password)
    }

    /// Calls `method` (the session goes first).
    fn call(&self, method: &str, params: &[Param]) -> Result<String, String> {
        let session = self.session();
        let mut all = vec![Param::Str(&session)];
        all.extend(params.iter().map(|p| match p {
            Param::Str(s) => Param::Str(s),
            Param::Int(i) => Param::Int(*i),
            Param::Bool(b) => Param::Bool(*b),
        }));
        let body = method_call(method, &all);
        let request = hyper::Request::post(self.settings.endpoint.url())
            .header(hyper::header::CONTENT_TYPE, "text/xml")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let (status, reply) = super::http::block_on(
            &self.runtime,
            self.settings.endpoint.send(request, self.settings.timeout),
        )
        .map_err(|e| format!("{method} to {}: {e}", self.settings.endpoint.url()))?;
        let text = String::from_utf8_lossy(&reply);
        if !status.is_success() {
            return Err(format!("{method} failed: HTTP {status}: {}", text.trim()));
        }
        parse_reply(&text).map_err(|e| format!("{method} failed: {e}"))
    }

    /// The template of a new VM booting from `script`.
    pub fn template(&self, script: &str, role: &str) -> String {
        let s = &self.settings;
        let name = if role.is_empty() {
            format!("paasm-{}", self.service)
        } else {
            format!("paasm-{}-{role}", self.service)
        };
        format!(
            "NAME = \"{name}\"\nCPU = \"{cpu}\"\nMEMORY = \"{memory}\"\nINSTANCE_TYPE = \"{inst_type}\"\n\
             OS = [ ARCH = \"{arch}\", ROOT = \"{root}\" ]\n\
             DISK = [ IMAGE_ID = \"{image}\", TARGET = \"{disk}\" ]\n\
             NIC = [ NETWORK_ID = \"{net}\" ]\n\
             CONTEXT = [ HOSTNAME = \"$NAME\", IP_PUBLIC = \"$NIC[IP]\", IP_GATEWAY = \"{gateway}\", \
             NAMESERVER = \"{ns}\", TARGET = \"{target}\", USERDATA = \"{userdata}\" ]\n\
             PAASM_OWNER = \"{owner}\"\nPAASM_SERVICE = \"{service}\"\nPAASM_ROLE = \"{role}\"\nPAASM_CLOUD = \"{cloud}\"\n",
            cpu = s.cpu,
            memory = s.memory,
            inst_type = s.inst_type,
            arch = s.os_arch,
            root = s.os_root,
            image = s.image_id,
            disk = s.disk_target,
            net = s.net_id,
            gateway = s.net_gateway,
            ns = s.net_nameserver,
            target = s.context_target,
            userdata = hex::encode(script),
            owner = self.owner,
            service = self.service,
            cloud = self.name,
        )
    }

    fn pool(&self) -> Result<Vec<OneVm>, String> {
        // Filter -3: the session user's VMs; every state but DONE.
        let xml = self.call(
            "one.vmpool.info",
            &[
                Param::Int(-3),
                Param::Int(-1),
                Param::Int(-1),
                Param::Int(-1),
            ],
        )?;
        Ok(parse_pool(&xml)?
            .into_iter()
            .filter(|vm| vm.owner == self.owner)
            .collect())
    }

    fn instance(vm: &OneVm) -> Instance {
        Instance {
            vmid: vm.id.clone(),
            ip: vm.ip.clone(),
            // As in the seed: one address.
            private_ip: vm.ip.clone(),
            state: match vm.state {
                // INIT, PENDING, HOLD, ACTIVE.
                0..=3 => InstanceState::Running,
                _ => InstanceState::Stopped,
            },
        }
    }
}

impl Cloud for OpenNebulaCloud {
    fn name(&self) -> &str {
        &self.name
    }

    fn new_instances(&self, count: usize, script: &str) -> Result<Vec<Instance>, CloudError> {
        self.new_instances_as(count, script, "")
    }

    /// One `one.vm.allocate` per VM (as in the seed); when one fails, the VMs this call
    /// allocated are terminated before the error is returned.
    fn new_instances_as(
        &self,
        count: usize,
        script: &str,
        role: &str,
    ) -> Result<Vec<Instance>, CloudError> {
        let template = self.template(script, role);
        let mut ids = Vec::new();
        for _ in 0..count {
            match self.call(
                "one.vm.allocate",
                &[Param::Str(&template), Param::Bool(false)],
            ) {
                Ok(id) => ids.push(id),
                Err(e) => {
                    for id in &ids {
                        let _ = self.kill_instance(id);
                    }
                    return Err(self.error(e));
                }
            }
        }
        let pool = self.pool().map_err(|e| self.error(e))?;
        Ok(ids
            .iter()
            .map(|id| {
                pool.iter()
                    .find(|vm| &vm.id == id)
                    .map(Self::instance)
                    .unwrap_or(Instance {
                        vmid: id.clone(),
                        ip: String::new(),
                        private_ip: String::new(),
                        state: InstanceState::Running,
                    })
            })
            .collect())
    }

    fn kill_instance(&self, vmid: &str) -> Result<(), CloudError> {
        let id: i64 = vmid
            .parse()
            .map_err(|_| self.error(format!("{vmid:?} is not an OpenNebula VM id")))?;
        match self.call(
            "one.vm.action",
            &[Param::Str("terminate-hard"), Param::Int(id)],
        ) {
            Ok(_) => Ok(()),
            // Already gone: termination is idempotent.
            Err(e) if e.contains("[one.vm.action] Error getting virtual machine") => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }

    fn list_vms(&self) -> Result<Vec<Instance>, CloudError> {
        Ok(self
            .pool()
            .map_err(|e| self.error(e))?
            .iter()
            .map(Self::instance)
            .collect())
    }

    fn gateway(&self) -> Option<String> {
        self.settings.manager_ip.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_replies_are_opennebulas_xml_rpc() {
        let call = method_call(
            "one.vm.action",
            &[
                Param::Str("u:p<"),
                Param::Str("terminate-hard"),
                Param::Int(7),
            ],
        );
        assert!(call.contains("<methodName>one.vm.action</methodName>"));
        assert!(call.contains("<string>u:p&lt;</string>"));
        assert!(call.contains("<int>7</int>"));
        let ok = "<?xml version=\"1.0\"?><methodResponse><params><param><value><array><data><value><boolean>1</boolean></value><value><i4>42</i4></value><value><i4>0</i4></value></data></array></value></param></params></methodResponse>";
        assert_eq!(parse_reply(ok), Ok("42".into()));
        let failed = "<?xml version=\"1.0\"?><methodResponse><params><param><value><array><data><value><boolean>0</boolean></value><value><string>[one.vm.allocate] User couldn't be authenticated, aborting call.</string></value><value><i4>256</i4></value></data></array></value></param></params></methodResponse>";
        assert_eq!(
            parse_reply(failed),
            Err(
                "[one.vm.allocate] User couldn't be authenticated, aborting call. (error 256)"
                    .into()
            )
        );
    }
}
