//! Managers on the `ec2` driver against a real EC2-compatible server: `moto_server` (installed
//! by `cargo xtask test` into a virtual environment under the target directory), started on a
//! free loopback port for each test, with an account set up as a real one would be (a VPC and
//! subnet, a security group, a key pair).
//!
//! moto starts no machines, so the test runs the host's hypervisor beside it
//! (`paasm::iaas::hypervisor`): it watches the EC2 API and turns every running instance into a
//! network-namespace host (the `netns` driver's machinery) with that instance's private
//! address, booting its `UserData`; a terminated instance's host is killed. The whole helloworld flow then runs on "EC2": the manager asks
//! for instances, their agents fetch their code from it over the namespace network, and the
//! manager calls them at their private addresses.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use paasm::iaas::ec2::{Ec2Client, Endpoint, parse_instances};
use serde_json::json;

use crate::clouds::{CloudManager, CloudSetup};
use crate::managers::free_port;
use crate::support;

/// The moto release `cargo xtask test` installs.
const MOTO: &str = "5.2.5";

fn moto_server() -> Option<PathBuf> {
    let path = std::env::var_os("PAASM_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            support::target_dir()
                .join("toolchains")
                .join(format!("moto-{MOTO}"))
                .join("bin/moto_server")
        });
    path.is_file().then_some(path)
}

/// Why the EC2 tests cannot run here, said by the test that skips.
fn ec2_missing(test: &str) -> Option<PathBuf> {
    if let Some(why) = paasm::iaas::netns::unavailable() {
        eprintln!("{test}: not run: the fake hypervisor needs network namespaces: {why}");
        return None;
    }
    match moto_server() {
        Some(path) => Some(path),
        None => {
            eprintln!(
                "{test}: not run: moto_server is not installed (cargo xtask test installs moto {MOTO})"
            );
            None
        }
    }
}

/// A running moto server; killed when dropped.
pub struct Moto {
    child: Option<Child>,
    program: PathBuf,
    pub port: u16,
}

impl Moto {
    pub fn start(program: PathBuf) -> Self {
        let mut moto = Self {
            child: None,
            program,
            port: free_port(),
        };
        moto.spawn();
        moto
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.program)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto_server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (the cloud API goes away).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends the server a signal (`STOP`, `CONT`): a stopped server accepts connections and
    /// never answers, like an API that times out.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("moto runs").id();
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} {pid}");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> Ec2Client {
        Ec2Client::new(
            Endpoint::parse(&self.endpoint()).unwrap(),
            "us-east-1",
            "AKIDPAASMTEST",
            "paasm-test-secret",
            Duration::from_secs(10),
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Calls the EC2 API from a test thread.
pub fn ec2(client: &Ec2Client, action: &str, params: &[(&str, &str)]) -> Result<String, String> {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(client.call(action, &params))
}

/// The hypervisor behind moto (`paasm::iaas::hypervisor`), with its directory.
pub struct Hypervisor {
    inner: paasm::iaas::hypervisor::Hypervisor,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Hypervisor {
    type Target = paasm::iaas::hypervisor::Hypervisor;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl Hypervisor {
    /// Sets up moto's account and starts watching its API.
    pub fn start(moto: &Moto) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let inner =
            paasm::iaas::hypervisor::Hypervisor::start(moto.client(), &dir.path().join("hosts"))
                .unwrap();
        Self { inner, _dir: dir }
    }
}

/// The configuration of an ec2 cloud on `moto` behind `hv`.
pub fn ec2_config(moto: &Moto, hv: &Hypervisor) -> String {
    format!(
        "[iaas]\nDRIVER = ec2\nUSERNAME = AKIDPAASMTEST\nPASSWORD = paasm-test-secret\nREGION = us-east-1\n\
         IMAGE_ID = ami-12c6146b\nSIZE = t2.micro\nSECURITY_GROUP_NAME = paasm\nKEY_NAME = paasm\n\
         ENDPOINT = {}\nSUBNET_ID = {}\nADDRESS = private\nMANAGER_IP = {}\nTIMEOUT = 5\n",
        moto.endpoint(),
        hv.subnet_id,
        hv.gateway
    )
}

/// A manager setup whose cloud is the ec2 one of `moto`.
pub fn ec2_setup(moto: &Moto, hv: &Hypervisor, annex: &str) -> CloudSetup {
    let setup = CloudSetup::new("ec2", annex);
    std::fs::write(setup.tree.join("cloud/ec2.cfg"), ec2_config(moto, hv)).unwrap();
    setup
}

/// The instances moto knows, by id: (state, tags).
fn instances(moto: &Moto) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    let xml = ec2(&moto.client(), "DescribeInstances", &[]).unwrap();
    parse_instances(&xml)
        .unwrap()
        .into_iter()
        .map(|i| (i.id, (i.state, i.tags.into_iter().collect())))
        .collect()
}

#[test]
fn the_helloworld_flow_on_ec2_against_moto() {
    let Some(program) = ec2_missing("the_helloworld_flow_on_ec2_against_moto") else {
        return;
    };
    let moto = Moto::start(program);
    let hv = Hypervisor::start(&moto);
    let m = ec2_setup(&moto, &hv, "").start();
    CloudManager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    CloudManager::ok(m.post("add_nodes", json!({"count": 2})));
    assert_eq!(m.settle(), "RUNNING", "{}", m.last_reason());
    let ids = m.node_ids();
    assert_eq!(ids.len(), 2);
    let known = instances(&moto);
    for id in &ids {
        let vmid = id.strip_prefix("iaas").unwrap();
        let (state, tags) = &known[vmid];
        assert_eq!(state, "running");
        assert_eq!(tags["paasm:service"], "helloworld");
        assert_eq!(tags["paasm:role"], "helloworld");
        assert_eq!(tags["paasm:cloud"], "iaas");
        // The instance booted from its UserData: the generated script.
        let script = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(moto.client().user_data(vmid))
            .unwrap();
        assert!(
            script.contains("STRING_TO_GENERATE = helloworld"),
            "{script}"
        );
        assert!(
            script.contains(&format!("SOURCE=http://{}:{}", hv.gateway, m.addr.port())),
            "{script}"
        );
        let host = &hv.hosts()[vmid];
        assert_eq!(m.node_info(id)["ip"], host.ip.as_str());
    }
    let mut sorted = ids.clone();
    sorted.sort();
    let hello = CloudManager::ok(m.get("get_helloworld", None));
    let mut answered: Vec<String> = hello["helloworld"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    answered.sort();
    assert_eq!(answered, sorted);

    CloudManager::ok(m.post("remove_nodes", json!({"count": 1})));
    assert_eq!(m.settle(), "RUNNING");
    let left = m.node_ids();
    assert_eq!(left.len(), 1);
    let removed = ids.iter().find(|id| !left.contains(id)).unwrap();
    assert_eq!(
        instances(&moto)[removed.strip_prefix("iaas").unwrap()].0,
        "terminated"
    );
    CloudManager::ok(m.post("shutdown", json!({})));
    assert_eq!(m.settle(), "STOPPED");
    assert!(
        instances(&moto)
            .values()
            .all(|(state, _)| state == "terminated"),
        "{:?}",
        instances(&moto)
    );
    // The hypervisor kills a terminated instance's host (its processes get a grace period).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !hv.hosts().is_empty() {
        assert!(Instant::now() < deadline, "hosts left: {:?}", hv.hosts());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ec2_configurations_fail_at_start_naming_the_key() {
    let check = |text: &str, expected: &[&str]| {
        let setup = CloudSetup::new("ec2", "");
        std::fs::write(setup.tree.join("cloud/ec2.cfg"), text).unwrap();
        let err = setup.spawn_err();
        for e in expected {
            assert!(err.contains(e), "{e:?} not in:\n{err}");
        }
    };
    let complete = "[iaas]\nDRIVER = ec2\nUSERNAME = AKID\nPASSWORD = s\nREGION = us-east-1\nIMAGE_ID = ami-1\nSIZE = t2.micro\nSECURITY_GROUP_NAME = g\nKEY_NAME = k\n";
    check(
        &complete
            .replace("IMAGE_ID = ami-1\n", "")
            .replace("KEY_NAME = k\n", "KEY_NAME =\n"),
        &[
            "Missing configuration variable \"IMAGE_ID\" in section \"iaas\"",
            "Missing configuration variable \"KEY_NAME\" in section \"iaas\"",
        ],
    );
    check(
        &format!("{complete}ENDPOINT = ftp://x\nADDRESS = both\n"),
        &[
            "invalid value for \"ENDPOINT\" in section \"iaas\"",
            "invalid value for \"ADDRESS\" in section \"iaas\"",
        ],
    );
    // Nothing listens there: the manager says so at start.
    check(
        &format!("{complete}ENDPOINT = http://127.0.0.1:{}\n", free_port()),
        &["cloud iaas: cannot reach the EC2 API", "cannot connect"],
    );
}

#[test]
fn an_ec2_api_that_goes_away_ends_in_a_reported_error() {
    let Some(program) = ec2_missing("an_ec2_api_that_goes_away_ends_in_a_reported_error") else {
        return;
    };
    let mut moto = Moto::start(program);
    let hv = Hypervisor::start(&moto);
    let m = ec2_setup(&moto, &hv, "").start();
    CloudManager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    // The cloud's API stops answering: the request fails, reported with the reason.
    moto.stop();
    CloudManager::ok(m.post("add_nodes", json!({"count": 1})));
    assert_eq!(m.settle(), "ERROR");
    let reason = m.last_reason();
    assert!(
        reason.contains("cloud iaas: RunInstances to http://127.0.0.1:")
            && reason.contains("cannot connect"),
        "{reason}"
    );
    // The manager keeps serving, with no node.
    assert_eq!(m.state(), "ERROR");
    assert!(hv.hosts().is_empty());
}

#[test]
fn an_ec2_api_that_times_out_ends_in_a_reported_error_and_leaks_nothing() {
    let Some(program) =
        ec2_missing("an_ec2_api_that_times_out_ends_in_a_reported_error_and_leaks_nothing")
    else {
        return;
    };
    let moto = Moto::start(program);
    let hv = Hypervisor::start(&moto);
    let m = ec2_setup(&moto, &hv, "NODE_HEALTH_INTERVAL_MS = 200\n").start();
    CloudManager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    // The API accepts the connection and never answers: the call times out (TIMEOUT = 5).
    moto.signal("STOP");
    CloudManager::ok(m.post("add_nodes", json!({"count": 1})));
    assert_eq!(m.settle(), "ERROR");
    let reason = m.last_reason();
    assert!(
        reason.contains("RunInstances") && reason.contains("no reply within"),
        "{reason}"
    );
    // The API comes back and may carry out the request it held: whatever it started for this
    // manager is killed, since no record names it.
    moto.signal("CONT");
    let resumed = Instant::now();
    let deadline = resumed + Duration::from_secs(60);
    let log = || {
        CloudManager::ok(m.get("get_log", None))["log"]
            .as_str()
            .unwrap()
            .to_string()
    };
    loop {
        // The held request is carried out some time after the API resumes: an empty list
        // counts only once it had time to be.
        let known = instances(&moto);
        let settled = known.values().all(|(state, _)| state == "terminated")
            && hv.hosts().is_empty()
            && (!known.is_empty() || resumed.elapsed() > Duration::from_secs(3));
        // Whatever was carried out was killed by the manager, which says so.
        if settled && (known.is_empty() || log().contains("never recorded")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left running or unexplained: {known:?} {:?}\n{}",
            hv.hosts(),
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The service recovers: started again, it adds a node that answers.
    CloudManager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING", "{}", m.last_reason());
    CloudManager::ok(m.post("add_nodes", json!({"count": 1})));
    assert_eq!(m.settle(), "RUNNING", "{}", m.last_reason());
    assert_eq!(m.node_ids().len(), 1);
    CloudManager::ok(m.post("shutdown", json!({})));
    assert_eq!(m.settle(), "STOPPED");
}
