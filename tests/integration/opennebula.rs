//! The `opennebula` driver against a fixture server: no OpenNebula can run here, so a loopback
//! HTTP server answers each XML-RPC call with a reply recorded in the shape OpenNebula's
//! XML-RPC reference documents (`[success, result-or-message, error-code]`; `one.vmpool.info`
//! returning a `VM_POOL` document) and records every call, which the test asserts: method
//! names, session, template contents (the hex-encoded contextualization in
//! `CONTEXT/USERDATA`), VM ids.
//!
//! For the whole helloworld flow, the fixture also boots what it allocates, as OpenNebula
//! would: every VM becomes a network-namespace host (the `netns` driver's machinery) with the
//! address the fixture leased it, running the decoded `USERDATA`; a terminated VM's host is
//! killed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paasm::iaas::cloud::Cloud;
use paasm::iaas::opennebula::{OpenNebulaCloud, OpenNebulaSettings};
use serde_json::json;

use crate::clouds::{CloudManager, CloudSetup};

/// One recorded call: the method and its parameters as text.
type Call = (String, Vec<String>);

fn reply(values: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><methodResponse><params><param><value><array><data>{values}</data></array></value></param></params></methodResponse>"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The fixture: VMs allocated so far (id, owner attribute, state) and every call.
#[derive(Default)]
struct Fixture {
    calls: Vec<Call>,
    vms: Vec<(u32, String, u32)>,
    refuse_allocate: bool,
    /// Where VMs boot, when they do: VM id -> the host's vmid.
    hosts: Option<(paasm::iaas::netns::NetnsCloud, BTreeMap<u32, String>)>,
}

impl Fixture {
    /// The address VM `id` is leased: on the hosts' network when VMs boot, else documentation
    /// addresses.
    fn ip(&self, id: u32) -> String {
        match &self.hosts {
            Some((hosts, _)) => {
                let [a, b, c] = hosts.network();
                format!("{a}.{b}.{c}.{id}")
            }
            None => format!("192.0.2.{id}"),
        }
    }
}

fn answer(fixture: &Mutex<Fixture>, body: &str) -> String {
    let doc = roxmltree_free_parse(body);
    let mut f = fixture.lock().unwrap();
    f.calls.push(doc.clone());
    let (method, params) = doc;
    match method.as_str() {
        "one.vm.allocate" if f.refuse_allocate => reply(
            "<value><boolean>0</boolean></value><value><string>[one.vm.allocate] Error allocating a new virtual machine. Cannot get IP/MAC lease from virtual network 0.</string></value><value><i4>2048</i4></value>",
        ),
        "one.vm.allocate" => {
            let id = 40 + f.vms.len() as u32;
            let owner = params[1]
                .lines()
                .find_map(|l| l.strip_prefix("PAASM_OWNER = \""))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default();
            f.vms.push((id, owner, 3));
            let ip = f.ip(id);
            if let Some((hosts, booted)) = &mut f.hosts {
                let script = unhex(&userdata(&params[1]));
                let host = hosts.boot_at(&ip, &script).unwrap();
                booted.insert(id, host.vmid);
            }
            reply(&format!(
                "<value><boolean>1</boolean></value><value><i4>{id}</i4></value><value><i4>0</i4></value>"
            ))
        }
        "one.vm.action" => {
            let id: u32 = params[2].parse().unwrap();
            match f.vms.iter_mut().find(|v| v.0 == id) {
                Some(vm) => {
                    vm.2 = 6;
                    if let Some((hosts, booted)) = &mut f.hosts
                        && let Some(vmid) = booted.remove(&id)
                    {
                        let _ = hosts.kill_instance(&vmid);
                    }
                    reply(&format!(
                        "<value><boolean>1</boolean></value><value><i4>{id}</i4></value><value><i4>0</i4></value>"
                    ))
                }
                None => reply(&format!(
                    "<value><boolean>0</boolean></value><value><string>[one.vm.action] Error getting virtual machine [{id}].</string></value><value><i4>1024</i4></value>"
                )),
            }
        }
        "one.vmpool.info" => {
            let mut pool = String::from("<VM_POOL>");
            for (id, owner, state) in f.vms.iter().filter(|v| v.2 != 6) {
                let ip = f.ip(*id);
                pool.push_str(&format!(
                    "<VM><ID>{id}</ID><UID>0</UID><NAME>paasm-helloworld-helloworld</NAME><STATE>{state}</STATE><LCM_STATE>3</LCM_STATE><TEMPLATE><NIC><IP>{ip}</IP><NETWORK_ID>0</NETWORK_ID></NIC></TEMPLATE><USER_TEMPLATE><PAASM_OWNER>{owner}</PAASM_OWNER></USER_TEMPLATE></VM>"
                ));
            }
            pool.push_str("</VM_POOL>");
            reply(&format!(
                "<value><boolean>1</boolean></value><value><string>{}</string></value><value><i4>0</i4></value>",
                escape(&pool)
            ))
        }
        other => panic!("unexpected call {other}"),
    }
}

/// The method name and parameters of a `methodCall`, read with plain string work (the test
/// keeps its own reading of the XML, independent of the driver's).
fn roxmltree_free_parse(body: &str) -> Call {
    let between = |text: &str, open: &str, close: &str| -> Vec<String> {
        let mut found = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find(open) {
            let after = &rest[start + open.len()..];
            let end = after.find(close).unwrap();
            found.push(after[..end].to_string());
            rest = &after[end + close.len()..];
        }
        found
    };
    let unescape = |t: &str| {
        t.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let method = between(body, "<methodName>", "</methodName>")[0].clone();
    let params = between(body, "<value>", "</value>")
        .iter()
        .map(|v| {
            let inner = v.trim_start_matches(|c| c != '>').trim_start_matches('>');
            let inner = inner.rsplit_once("</").map(|(a, _)| a).unwrap_or(inner);
            unescape(inner)
        })
        .collect();
    (method, params)
}

/// Serves the fixture on a loopback port until the test ends.
fn serve(fixture: Arc<Mutex<Fixture>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let text = answer(&fixture, &String::from_utf8_lossy(&body));
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    port
}

/// The cloud section for the fixture on `port`, its VMs' gateway `gateway`.
fn cloud_config(port: u16, gateway: &str) -> String {
    format!(
        "[iaas]\nDRIVER = opennebula\nURL = http://127.0.0.1:{port}/RPC2\nUSER = oneadmin\nPASSWORD = opennebula\n\
         IMAGE_ID = 7\nINST_TYPE = small\nNET_ID = 0\nNET_GATEWAY = {gateway}\nNET_NAMESERVER = 192.0.2.53\n\
         OS_ARCH = x86_64\nOS_ROOT = sda1\nDISK_TARGET = sda\nCONTEXT_TARGET = sdb\n"
    )
}

fn settings(port: u16) -> OpenNebulaSettings {
    let ini = paasm::config::IniConfig::parse(&cloud_config(port, "192.0.2.1")).unwrap();
    OpenNebulaSettings::read(&ini, "iaas").unwrap()
}

#[test]
fn the_opennebula_driver_speaks_xml_rpc_to_the_fixture() {
    let fixture = Arc::new(Mutex::new(Fixture::default()));
    let port = serve(fixture.clone());
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let cloud = OpenNebulaCloud::new("iaas", settings(port), dir.path(), "helloworld").unwrap();
    let script = "#!/bin/bash\necho booted\n";
    let nodes = cloud.new_instances_as(2, script, "helloworld").unwrap();
    assert_eq!(
        nodes.iter().map(|n| n.ip.as_str()).collect::<Vec<_>>(),
        ["192.0.2.40", "192.0.2.41"]
    );
    assert_eq!(cloud.list_vms().unwrap().len(), 2);
    cloud.kill_instance(&nodes[0].vmid).unwrap();
    // Killing what is gone already is not an error.
    cloud.kill_instance("99").unwrap();
    assert_eq!(cloud.list_vms().unwrap().len(), 1);

    let calls = fixture.lock().unwrap().calls.clone();
    let methods: Vec<&str> = calls.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        methods,
        [
            "one.vmpool.info",
            "one.vm.allocate",
            "one.vm.allocate",
            "one.vmpool.info",
            "one.vmpool.info",
            "one.vm.action",
            "one.vm.action",
            "one.vmpool.info"
        ]
    );
    assert!(calls.iter().all(|(_, p)| p[0] == "oneadmin:opennebula"));
    assert_eq!(calls[0].1[1..], ["-3", "-1", "-1", "-1"]);
    let template = &calls[1].1[1];
    assert!(
        template.contains(&format!("USERDATA = \"{}\"", hex(script))),
        "{template}"
    );
    for part in [
        "DISK = [ IMAGE_ID = \"7\", TARGET = \"sda\" ]",
        "NIC = [ NETWORK_ID = \"0\" ]",
        "OS = [ ARCH = \"x86_64\", ROOT = \"sda1\" ]",
        "IP_PUBLIC = \"$NIC[IP]\"",
        "IP_GATEWAY = \"192.0.2.1\"",
        "NAMESERVER = \"192.0.2.53\"",
        "TARGET = \"sdb\"",
        "PAASM_ROLE = \"helloworld\"",
        "PAASM_SERVICE = \"helloworld\"",
    ] {
        assert!(template.contains(part), "{part} not in {template}");
    }
    assert_eq!(calls[1].1[2], "0", "not held");
    assert_eq!(calls[5].1[1..], ["terminate-hard", &nodes[0].vmid]);

    // A refusal is reported in OpenNebula's words, and nothing is left allocated.
    fixture.lock().unwrap().refuse_allocate = true;
    let err = cloud.new_instances(1, script).unwrap_err().to_string();
    assert!(
        err.contains("cloud iaas: one.vm.allocate failed: [one.vm.allocate] Error allocating a new virtual machine")
            && err.contains("(error 2048)"),
        "{err}"
    );
    assert_eq!(cloud.list_vms().unwrap().len(), 1);
}

#[test]
fn an_unreachable_opennebula_fails_at_start() {
    let port = crate::managers::free_port();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let err = OpenNebulaCloud::new("iaas", settings(port), dir.path(), "helloworld")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("cloud iaas: cannot reach the OpenNebula API")
            && err.contains("cannot connect"),
        "{err}"
    );
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The hex-encoded `USERDATA` of a template's `CONTEXT`.
fn userdata(template: &str) -> String {
    let start = template
        .find("USERDATA = \"")
        .map(|i| i + "USERDATA = \"".len())
        .unwrap_or_else(|| panic!("no USERDATA in {template}"));
    let end = start + template[start..].find('"').unwrap();
    template[start..end].to_string()
}

/// Kills whatever hosts a fixture booted, however the test ends.
struct KillHosts(std::path::PathBuf);

impl Drop for KillHosts {
    fn drop(&mut self) {
        paasm::iaas::netns::kill_all(&self.0);
    }
}

fn unhex(text: &str) -> String {
    let bytes: Vec<u8> = (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn the_helloworld_flow_on_the_opennebula_fixture() {
    if let Some(why) = paasm::iaas::netns::unavailable() {
        eprintln!(
            "the_helloworld_flow_on_the_opennebula_fixture: not run: its VMs boot as network namespaces: {why}"
        );
        return;
    }
    let hosts_dir = tempfile::tempdir().unwrap();
    let _kill = KillHosts(hosts_dir.path().join("hosts"));
    let hosts =
        paasm::iaas::netns::NetnsCloud::new("opennebula", &hosts_dir.path().join("hosts"), None)
            .unwrap();
    let gateway = hosts.gateway().unwrap();
    let fixture = Arc::new(Mutex::new(Fixture {
        hosts: Some((hosts, BTreeMap::new())),
        ..Fixture::default()
    }));
    let port = serve(fixture.clone());
    let setup = CloudSetup::new("opennebula", "");
    std::fs::write(
        setup.tree.join("cloud/opennebula.cfg"),
        format!("{}MANAGER_IP = {gateway}\n", cloud_config(port, &gateway)),
    )
    .unwrap();
    let m = setup.start();
    CloudManager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    CloudManager::ok(m.post("add_nodes", json!({"count": 2})));
    assert_eq!(m.settle(), "RUNNING", "{}", m.last_reason());
    let mut ids = m.node_ids();
    ids.sort();
    assert_eq!(ids, ["iaas40", "iaas41"]);
    let hello = CloudManager::ok(m.get("get_helloworld", None));
    let mut answered: Vec<String> = hello["helloworld"]
        .as_array()
        .unwrap_or_else(|| panic!("{hello}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    answered.sort();
    assert_eq!(answered, ids);
    {
        let f = fixture.lock().unwrap();
        let allocations: Vec<&Call> = f
            .calls
            .iter()
            .filter(|(m, _)| m == "one.vm.allocate")
            .collect();
        assert_eq!(allocations.len(), 2);
        for (_, params) in allocations {
            assert_eq!(params[0], "oneadmin:opennebula");
            let template = &params[1];
            let script = unhex(&userdata(template));
            assert!(
                script.contains("STRING_TO_GENERATE = helloworld"),
                "{script}"
            );
            assert!(
                script.contains(&format!("SOURCE=http://{gateway}:")),
                "{script}"
            );
            assert!(
                template.contains(&format!("IP_GATEWAY = \"{gateway}\"")),
                "{template}"
            );
        }
    }

    CloudManager::ok(m.post("remove_nodes", json!({"count": 1})));
    assert_eq!(m.settle(), "RUNNING");
    assert_eq!(m.node_ids().len(), 1);
    CloudManager::ok(m.post("shutdown", json!({})));
    assert_eq!(m.settle(), "STOPPED");
    let f = fixture.lock().unwrap();
    let terminated: Vec<&str> = f
        .calls
        .iter()
        .filter(|(m, p)| m == "one.vm.action" && p[1] == "terminate-hard")
        .map(|(_, p)| p[2].as_str())
        .collect();
    let mut terminated = terminated;
    terminated.sort();
    assert_eq!(terminated, ["40", "41"]);
    assert!(f.vms.iter().all(|v| v.2 == 6), "{:?}", f.vms);
    let (_, booted) = f.hosts.as_ref().unwrap();
    assert!(booted.is_empty(), "hosts left: {booted:?}");
    drop(f);
    // Every host's processes and namespace are gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !paasm::iaas::netns::records(&hosts_dir.path().join("hosts")).is_empty() {
        assert!(Instant::now() < deadline, "namespaces left behind");
        std::thread::sleep(Duration::from_millis(100));
    }
}
