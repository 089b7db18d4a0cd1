//! Machines for an EC2-compatible API that starts none (`moto`): [`Hypervisor`] sets up an
//! account as a real one would be (a VPC and a subnet on a free private network, a security
//! group and a key pair, both named `paasm`), then watches the API and turns every pending or
//! running instance into a `netns` host with that instance's private address, booting its
//! `UserData`; a terminated instance's host is killed. With it the whole helloworld flow runs on
//! "EC2" on one machine: the ec2 tests use it in process, `cargo xtask bench` runs it as
//! `paasm ec2-hypervisor`. Needs what the netns driver needs (root, iproute2).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::cloud::Cloud;
use super::ec2::{Ec2Client, parse_instances};
use super::netns::{self, NetnsCloud, NetnsRecord};

/// How often the API is watched.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// The file under the hypervisor's directory naming the booted instances (id -> host vmid).
const INSTANCES: &str = "instances.json";

/// The names of the security group and key pair the account is set up with.
pub const ACCOUNT_NAME: &str = "paasm";

/// A running hypervisor: stops watching and kills its hosts when dropped.
pub struct Hypervisor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    base: PathBuf,
    /// The subnet the account's instances get their addresses in (`SUBNET_ID`).
    pub subnet_id: String,
    /// The gateway of the hosts' network: where the nodes reach a manager (`MANAGER_IP`).
    pub gateway: String,
}

impl Hypervisor {
    /// Sets up the account behind `client` and starts watching it, keeping the hosts' files
    /// under `base`.
    pub fn start(client: Ec2Client, base: &Path) -> Result<Self, String> {
        let hosts = NetnsCloud::new("hypervisor", base, None).map_err(|e| e.to_string())?;
        let [a, b, c] = hosts.network();
        let gateway = hosts.gateway().ok_or("the hosts' network has no gateway")?;
        let runtime = runtime()?;
        let call = |action: &str, params: &[(&str, &str)]| {
            let params: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            runtime
                .block_on(client.call(action, &params))
                .map_err(|e| format!("{action}: {e}"))
        };
        let vpc = call("CreateVpc", &[("CidrBlock", &format!("{a}.{b}.0.0/16"))])?;
        let vpc = field(&vpc, "vpcId")?;
        let subnet = call(
            "CreateSubnet",
            &[("VpcId", &vpc), ("CidrBlock", &format!("{a}.{b}.{c}.0/24"))],
        )?;
        let subnet_id = field(&subnet, "subnetId")?;
        call(
            "CreateSecurityGroup",
            &[
                ("GroupName", ACCOUNT_NAME),
                ("GroupDescription", "paasm nodes"),
                ("VpcId", &vpc),
            ],
        )?;
        call("CreateKeyPair", &[("KeyName", ACCOUNT_NAME)])?;
        drop(runtime);

        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || watch(client, hosts, &stop))
        };
        Ok(Self {
            stop,
            thread: Some(thread),
            base: base.to_path_buf(),
            subnet_id,
            gateway,
        })
    }

    /// The hosts running now: instance id -> namespace record.
    pub fn hosts(&self) -> BTreeMap<String, NetnsRecord> {
        let booted: BTreeMap<String, String> = std::fs::read_to_string(self.base.join(INSTANCES))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let records = netns::records(&self.base);
        booted
            .into_iter()
            .filter_map(|(id, vmid)| {
                records
                    .iter()
                    .find(|r| r.vmid == vmid)
                    .map(|r| (id, r.clone()))
            })
            .collect()
    }
}

impl Drop for Hypervisor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        netns::kill_all(&self.base);
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))
}

/// The text of the first `<tag>` of an EC2 reply.
fn field(xml: &str, tag: &str) -> Result<String, String> {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .map(|i| i + open.len())
        .ok_or_else(|| format!("no <{tag}> in the reply: {xml}"))?;
    let end = xml[start..]
        .find('<')
        .map(|i| start + i)
        .ok_or_else(|| format!("an unterminated <{tag}> in the reply: {xml}"))?;
    Ok(xml[start..end].to_string())
}

/// The hypervisor's loop: boot running instances, kill terminated ones, until `stop`.
fn watch(client: Ec2Client, hosts: NetnsCloud, stop: &AtomicBool) {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("hypervisor: {e}");
            return;
        }
    };
    let base = hosts.base().to_path_buf();
    // Instance id -> the host's vmid.
    let mut booted: BTreeMap<String, String> = BTreeMap::new();
    while !stop.load(Ordering::SeqCst) {
        let listed = runtime.block_on(client.call("DescribeInstances", &[]));
        if let Ok(xml) = listed
            && let Ok(instances) = parse_instances(&xml)
        {
            for i in &instances {
                match (i.state.as_str(), booted.get(&i.id)) {
                    ("pending" | "running", None) => {
                        let script = runtime
                            .block_on(client.user_data(&i.id))
                            .unwrap_or_default();
                        match hosts.boot_at(&i.private_ip, &script) {
                            Ok(host) => {
                                tracing::info!(instance = %i.id, ip = %i.private_ip, "hypervisor: booted");
                                booted.insert(i.id.clone(), host.vmid);
                                save_booted(&base, &booted);
                            }
                            Err(e) => tracing::error!("hypervisor: cannot boot {}: {e}", i.id),
                        }
                    }
                    ("shutting-down" | "terminated" | "stopping" | "stopped", Some(vmid)) => {
                        let _ = hosts.kill_instance(vmid);
                        tracing::info!(instance = %i.id, "hypervisor: killed");
                        booted.remove(&i.id);
                        save_booted(&base, &booted);
                    }
                    _ => {}
                }
            }
        }
        std::thread::sleep(WATCH_INTERVAL);
    }
}

/// Records which host each instance booted as, as soon as it changes: written beside and
/// renamed into place, so [`Hypervisor::hosts`] never reads a half-written file and sees a
/// host as soon as its node can answer.
fn save_booted(base: &Path, booted: &BTreeMap<String, String>) {
    let Ok(bytes) = serde_json::to_vec(booted) else {
        return;
    };
    let path = base.join(INSTANCES);
    let partial = path.with_extension("partial");
    if let Err(e) = std::fs::write(&partial, bytes).and_then(|()| std::fs::rename(&partial, &path))
    {
        tracing::error!("hypervisor: cannot record the booted hosts: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_off_replies_and_missing_ones_named() {
        let xml = "<CreateVpcResponse><vpc><vpcId>vpc-1a2b</vpcId></vpc></CreateVpcResponse>";
        assert_eq!(field(xml, "vpcId").unwrap(), "vpc-1a2b");
        let e = field(xml, "subnetId").unwrap_err();
        assert!(e.contains("no <subnetId>"), "{e}");
    }
}
