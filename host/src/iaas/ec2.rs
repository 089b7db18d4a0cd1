//! The `ec2` cloud: Amazon EC2 (or any server speaking its Query API) through SigV4-signed
//! requests over the host's own HTTP client.
//!
//! A node is one instance started by `RunInstances` with the contextualization script as its
//! `UserData` (base64), the image, size, security group and key pair of the cloud's section,
//! and tags naming the service, its role and the cloud, plus an owner tag unique to this
//! manager's cloud (kept in the cloud's directory, so a restarted manager finds the instances it
//! asked for with `DescribeInstances` filtered on it). `TerminateInstances` kills a node.
//!
//! Every request has a deadline; an error reply is reported with EC2's code and message, a
//! timeout or refused connection as such. The configuration (the seed's keys): `USERNAME` and
//! `PASSWORD` are the access key id and secret, `REGION`, `IMAGE_ID`, `SIZE`,
//! `SECURITY_GROUP_NAME`, `KEY_NAME`; optional `ENDPOINT` (an `http://` or `https://` URL,
//! `https://ec2.REGION.amazonaws.com` by default), `SUBNET_ID`, `ADDRESS` (`public` or
//! `private`: which address the manager reaches agents at) and `MANAGER_IP` (the address the
//! nodes reach the manager at, when it is not its own).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;

use super::cloud::{Cloud, CloudError, Instance, InstanceState};
pub use super::http::Endpoint;
use crate::config::IniConfig;

/// The EC2 API version requests are made in.
const API_VERSION: &str = "2016-11-15";

/// The tag holding the owner of an instance (one manager's cloud).
pub const OWNER_TAG: &str = "paasm:owner";

/// The variables an `ec2` section must have.
pub const REQUIRED: &[&str] = &[
    "USERNAME",
    "PASSWORD",
    "REGION",
    "IMAGE_ID",
    "SIZE",
    "SECURITY_GROUP_NAME",
    "KEY_NAME",
];

/// Credentials, region and endpoint: enough to call the API.
#[derive(Clone)]
pub struct Ec2Client {
    pub endpoint: Endpoint,
    pub region: String,
    access_key: String,
    secret_key: String,
    pub timeout: Duration,
}

/// One instance as `DescribeInstances` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Instance {
    pub id: String,
    /// `pending`, `running`, `shutting-down`, `terminated`, `stopping`, `stopped`.
    pub state: String,
    pub private_ip: String,
    pub public_ip: String,
    pub tags: Vec<(String, String)>,
}

impl Ec2Client {
    pub fn new(
        endpoint: Endpoint,
        region: &str,
        access_key: &str,
        secret_key: &str,
        timeout: Duration,
    ) -> Self {
        Self {
            endpoint,
            region: region.to_string(),
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            timeout,
        }
    }

    /// Calls `action` with `params`; the reply's XML, or the error in EC2's words.
    pub async fn call(&self, action: &str, params: &[(String, String)]) -> Result<String, String> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", action)
            .append_pair("Version", API_VERSION);
        for (k, v) in params {
            form.append_pair(k, v);
        }
        let body = form.finish();
        let mut request = hyper::Request::post(self.endpoint.url())
            .header(hyper::header::HOST, self.endpoint.authority())
            .header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|e| e.to_string())?;
        self.sign(&mut request, body.as_bytes())?;
        let (status, reply) = self
            .endpoint
            .send(request, self.timeout)
            .await
            .map_err(|e| format!("{action} to {}: {e}", self.endpoint.url()))?;
        let text = String::from_utf8_lossy(&reply).into_owned();
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("{action} failed: {}", error_message(status, &text)))
        }
    }

    fn sign(&self, request: &mut hyper::Request<Full<Bytes>>, body: &[u8]) -> Result<(), String> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4;
        let identity = aws_credential_types::Credentials::new(
            &self.access_key,
            &self.secret_key,
            None,
            None,
            "paasm",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ec2")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into();
        let uri = request.uri().to_string();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let signable = SignableRequest::new(
            "POST",
            &uri,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("cannot sign the request: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }

    /// `DescribeInstances` with `filters` (name, values).
    pub async fn describe(&self, filters: &[(&str, &[&str])]) -> Result<Vec<Ec2Instance>, String> {
        let mut params = Vec::new();
        for (i, (name, values)) in filters.iter().enumerate() {
            params.push((format!("Filter.{}.Name", i + 1), name.to_string()));
            for (j, value) in values.iter().enumerate() {
                params.push((
                    format!("Filter.{}.Value.{}", i + 1, j + 1),
                    value.to_string(),
                ));
            }
        }
        let xml = self.call("DescribeInstances", &params).await?;
        parse_instances(&xml)
    }

    /// `TerminateInstances` of one instance.
    pub async fn terminate(&self, id: &str) -> Result<(), String> {
        self.call(
            "TerminateInstances",
            &[("InstanceId.1".to_string(), id.to_string())],
        )
        .await
        .map(|_| ())
    }

    /// An instance's `UserData`, decoded (what its machine boots from).
    pub async fn user_data(&self, id: &str) -> Result<String, String> {
        let xml = self
            .call(
                "DescribeInstanceAttribute",
                &[
                    ("InstanceId".to_string(), id.to_string()),
                    ("Attribute".to_string(), "userData".to_string()),
                ],
            )
            .await?;
        let doc = roxmltree::Document::parse(&xml).map_err(|e| format!("bad XML reply: {e}"))?;
        let encoded = doc
            .descendants()
            .find(|n| n.has_tag_name("userData"))
            .and_then(|n| n.children().find(|c| c.has_tag_name("value")))
            .and_then(|n| n.text())
            .unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| format!("UserData of {id} is not base64: {e}"))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The message of an EC2 error reply: `Code: Message`, or the status and body.
fn error_message(status: hyper::StatusCode, text: &str) -> String {
    if let Ok(doc) = roxmltree::Document::parse(text) {
        let field = |name: &str| {
            doc.descendants()
                .find(|n| n.has_tag_name(name))
                .and_then(|n| n.text())
                .map(str::to_string)
        };
        if let Some(code) = field("Code") {
            return format!("{code}: {}", field("Message").unwrap_or_default());
        }
    }
    format!("HTTP {status}: {}", text.trim())
}

/// The instances of a `DescribeInstances` or `RunInstances` reply.
pub fn parse_instances(xml: &str) -> Result<Vec<Ec2Instance>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("bad XML reply: {e}"))?;
    let child_text = |node: roxmltree::Node, name: &str| -> String {
        node.children()
            .find(|c| c.has_tag_name(name))
            .and_then(|c| c.text())
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let mut found = Vec::new();
    for set in doc.descendants().filter(|n| n.has_tag_name("instancesSet")) {
        for item in set.children().filter(|n| n.has_tag_name("item")) {
            let state = item
                .children()
                .find(|c| c.has_tag_name("instanceState"))
                .map(|s| child_text(s, "name"))
                .unwrap_or_default();
            let tags = item
                .children()
                .find(|c| c.has_tag_name("tagSet"))
                .map(|set| {
                    set.children()
                        .filter(|c| c.has_tag_name("item"))
                        .map(|t| (child_text(t, "key"), child_text(t, "value")))
                        .collect()
                })
                .unwrap_or_default();
            found.push(Ec2Instance {
                id: child_text(item, "instanceId"),
                state,
                private_ip: child_text(item, "privateIpAddress"),
                public_ip: child_text(item, "ipAddress"),
                tags,
            });
        }
    }
    Ok(found)
}

/// Which address of an instance the manager reaches its agent at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    Public,
    Private,
}

/// What an `ec2` section configures.
#[derive(Debug, Clone)]
pub struct Ec2Settings {
    pub endpoint: Endpoint,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub image_id: String,
    pub size: String,
    pub security_group: String,
    pub key_name: String,
    pub subnet_id: Option<String>,
    pub address: Address,
    pub manager_ip: Option<String>,
    pub timeout: Duration,
}

impl Ec2Settings {
    /// Reads section `name` (its required keys were checked already); every invalid value is
    /// an error naming its key.
    pub fn read(ini: &IniConfig, name: &str) -> Result<Self, Vec<String>> {
        let get = |key: &str| ini.get(name, key).unwrap_or_default().trim().to_string();
        let optional = |key: &str| Some(get(key)).filter(|v| !v.is_empty());
        let mut errors = Vec::new();
        let region = get("REGION");
        let endpoint =
            optional("ENDPOINT").unwrap_or_else(|| format!("https://ec2.{region}.amazonaws.com"));
        let endpoint = Endpoint::parse(&endpoint)
            .and_then(|e| {
                if e.path == "/" {
                    Ok(e)
                } else {
                    Err(format!(
                        "expected SCHEME://HOST[:PORT] without a path, found {endpoint:?}"
                    ))
                }
            })
            .map_err(|e| {
                errors.push(format!(
                    "invalid value for \"ENDPOINT\" in section \"{name}\": {e}"
                ))
            })
            .ok();
        let address = match get("ADDRESS").to_ascii_lowercase().as_str() {
            "" | "public" => Address::Public,
            "private" => Address::Private,
            other => {
                errors.push(format!(
                    "invalid value for \"ADDRESS\" in section \"{name}\": expected public or private, found {other:?}"
                ));
                Address::Public
            }
        };
        let timeout = match optional("TIMEOUT") {
            None => Duration::from_secs(30),
            Some(text) => match text.parse::<u64>() {
                Ok(n) if (1..=600).contains(&n) => Duration::from_secs(n),
                _ => {
                    errors.push(format!(
                        "invalid value for \"TIMEOUT\" in section \"{name}\": expected a whole number of seconds from 1 to 600, found {text:?}"
                    ));
                    Duration::from_secs(30)
                }
            },
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            endpoint: endpoint.expect("no errors"),
            region,
            access_key: get("USERNAME"),
            secret_key: get("PASSWORD"),
            image_id: get("IMAGE_ID"),
            size: get("SIZE"),
            security_group: get("SECURITY_GROUP_NAME"),
            key_name: get("KEY_NAME"),
            subnet_id: optional("SUBNET_ID"),
            address,
            manager_ip: optional("MANAGER_IP"),
            timeout,
        })
    }
}

/// The ec2 cloud driver.
pub struct Ec2Cloud {
    name: String,
    settings: Ec2Settings,
    client: Ec2Client,
    owner: String,
    /// Tags every instance gets besides the owner and role.
    tags: Vec<(String, String)>,
    runtime: tokio::runtime::Handle,
    /// How long `new_instances` waits for instances to get their addresses.
    address_timeout: Duration,
}

impl Ec2Cloud {
    /// A driver for the cloud `name`, keeping its owner tag in `dir`; `tags` name the service.
    /// Lists the cloud's instances once, so an unreachable endpoint or refused credentials
    /// fail here, at start.
    pub fn new(
        name: &str,
        settings: Ec2Settings,
        dir: &Path,
        tags: Vec<(String, String)>,
    ) -> Result<Self, CloudError> {
        let error = |message: String| CloudError {
            cloud: name.to_string(),
            message,
        };
        let owner = owner_id(dir).map_err(error)?;
        let client = Ec2Client::new(
            settings.endpoint.clone(),
            &settings.region,
            &settings.access_key,
            &settings.secret_key,
            settings.timeout,
        );
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| error("the ec2 driver needs a tokio runtime".into()))?;
        let cloud = Self {
            name: name.to_string(),
            settings,
            client,
            owner,
            tags,
            runtime,
            address_timeout: Duration::from_secs(180),
        };
        cloud
            .list_vms()
            .map_err(|e| error(format!("cannot reach the EC2 API: {}", e.message)))?;
        Ok(cloud)
    }

    fn error(&self, message: String) -> CloudError {
        CloudError {
            cloud: self.name.clone(),
            message,
        }
    }

    fn block_on<T>(&self, fut: impl Future<Output = T>) -> T {
        super::http::block_on(&self.runtime, fut)
    }

    fn instance(&self, i: &Ec2Instance) -> Instance {
        let ip = match self.settings.address {
            Address::Public if !i.public_ip.is_empty() => i.public_ip.clone(),
            _ => i.private_ip.clone(),
        };
        Instance {
            vmid: i.id.clone(),
            ip,
            private_ip: i.private_ip.clone(),
            state: match i.state.as_str() {
                "pending" | "running" => InstanceState::Running,
                _ => InstanceState::Stopped,
            },
        }
    }

    fn mine(&self) -> Result<Vec<Ec2Instance>, String> {
        let owner = [self.owner.as_str()];
        let tag = format!("tag:{OWNER_TAG}");
        self.block_on(self.client.describe(&[(tag.as_str(), &owner)]))
    }

    fn run(&self, count: usize, script: &str, role: &str) -> Result<Vec<Ec2Instance>, String> {
        let s = &self.settings;
        let mut params: Vec<(String, String)> = vec![
            ("ImageId".into(), s.image_id.clone()),
            ("MinCount".into(), count.to_string()),
            ("MaxCount".into(), count.to_string()),
            ("InstanceType".into(), s.size.clone()),
            ("SecurityGroup.1".into(), s.security_group.clone()),
            ("KeyName".into(), s.key_name.clone()),
            (
                "UserData".into(),
                base64::engine::general_purpose::STANDARD.encode(script),
            ),
            ("TagSpecification.1.ResourceType".into(), "instance".into()),
        ];
        if let Some(subnet) = &s.subnet_id {
            params.push(("SubnetId".into(), subnet.clone()));
        }
        let mut tags = vec![
            (OWNER_TAG.to_string(), self.owner.clone()),
            ("paasm:cloud".to_string(), self.name.clone()),
            ("paasm:role".to_string(), role.to_string()),
        ];
        tags.extend(self.tags.iter().cloned());
        for (i, (k, v)) in tags.iter().enumerate() {
            params.push((format!("TagSpecification.1.Tag.{}.Key", i + 1), k.clone()));
            params.push((format!("TagSpecification.1.Tag.{}.Value", i + 1), v.clone()));
        }
        let xml = self.block_on(self.client.call("RunInstances", &params))?;
        parse_instances(&xml)
    }

    /// Waits until every instance of `ids` has the address the manager uses.
    fn addresses(&self, ids: &[String]) -> Result<Vec<Ec2Instance>, String> {
        let deadline = Instant::now() + self.address_timeout;
        loop {
            let ids_ref: Vec<&str> = ids.iter().map(String::as_str).collect();
            let listed = self.block_on(self.client.describe(&[("instance-id", &ids_ref)]))?;
            let ready: Vec<Ec2Instance> = ids
                .iter()
                .filter_map(|id| listed.iter().find(|i| &i.id == id).cloned())
                .filter(|i| !self.instance(i).ip.is_empty())
                .collect();
            if ready.len() == ids.len() {
                return Ok(ready);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} of {} instances got no address within {:?}",
                    ids.len() - ready.len(),
                    ids.len(),
                    self.address_timeout
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// This cloud's owner id: read from `dir/owner`, or made and saved there.
pub(crate) fn owner_id(dir: &Path) -> Result<String, String> {
    let path = dir.join("owner");
    if let Ok(text) = std::fs::read_to_string(&path)
        && !text.trim().is_empty()
    {
        return Ok(text.trim().to_string());
    }
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for the owner tag: {e}"))?;
    let owner = hex::encode(bytes);
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, &owner))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(owner)
}

impl Cloud for Ec2Cloud {
    fn name(&self) -> &str {
        &self.name
    }

    fn new_instances(&self, count: usize, script: &str) -> Result<Vec<Instance>, CloudError> {
        self.new_instances_as(count, script, "")
    }

    /// One `RunInstances` for all `count` (EC2 starts all or none), then waits for their
    /// addresses; when they never come, the instances are terminated.
    fn new_instances_as(
        &self,
        count: usize,
        script: &str,
        role: &str,
    ) -> Result<Vec<Instance>, CloudError> {
        let started = self.run(count, script, role).map_err(|e| self.error(e))?;
        let ids: Vec<String> = started.iter().map(|i| i.id.clone()).collect();
        tracing::info!(cloud = %self.name, ids = ?ids, "instances requested");
        match self.addresses(&ids) {
            Ok(ready) => Ok(ready.iter().map(|i| self.instance(i)).collect()),
            Err(e) => {
                for id in &ids {
                    let _ = self.kill_instance(id);
                }
                Err(self.error(e))
            }
        }
    }

    fn kill_instance(&self, vmid: &str) -> Result<(), CloudError> {
        match self.block_on(self.client.terminate(vmid)) {
            Ok(()) => Ok(()),
            // Already gone is not an error: termination is idempotent.
            Err(e) if e.contains("InvalidInstanceID.NotFound") => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }

    fn list_vms(&self) -> Result<Vec<Instance>, CloudError> {
        Ok(self
            .mine()
            .map_err(|e| self.error(e))?
            .iter()
            .filter(|i| i.state != "terminated")
            .map(|i| self.instance(i))
            .collect())
    }

    fn gateway(&self) -> Option<String> {
        self.settings.manager_ip.clone()
    }
}

/// A shared client, for callers outside a driver (tests' machinery, tools).
pub fn client(settings: &Ec2Settings) -> Arc<Ec2Client> {
    Arc::new(Ec2Client::new(
        settings.endpoint.clone(),
        &settings.region,
        &settings.access_key,
        &settings.secret_key,
        settings.timeout,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_as_ec2_writes_them() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <reservationSet><item><instancesSet><item>
    <instanceId>i-0abc</instanceId>
    <instanceState><code>16</code><name>running</name></instanceState>
    <privateIpAddress>10.1.2.7</privateIpAddress>
    <ipAddress>54.1.2.3</ipAddress>
    <tagSet><item><key>paasm:role</key><value>helloworld</value></item></tagSet>
  </item></instancesSet></item></reservationSet>
</DescribeInstancesResponse>"#;
        let found = parse_instances(xml).unwrap();
        assert_eq!(
            found,
            [Ec2Instance {
                id: "i-0abc".into(),
                state: "running".into(),
                private_ip: "10.1.2.7".into(),
                public_ip: "54.1.2.3".into(),
                tags: vec![("paasm:role".into(), "helloworld".into())],
            }]
        );
        let error = r#"<?xml version="1.0"?><Response><Errors><Error><Code>InvalidAMIID.NotFound</Code><Message>The image id '[ami-x]' does not exist</Message></Error></Errors><RequestID>r</RequestID></Response>"#;
        assert_eq!(
            error_message(hyper::StatusCode::BAD_REQUEST, error),
            "InvalidAMIID.NotFound: The image id '[ami-x]' does not exist"
        );
    }
}
