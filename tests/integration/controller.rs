//! The controller on the local cloud with real `paasm agent` nodes: nodes boot from their
//! script, answer `check_agent_process`, and are gone after deletion; nodes that never answer
//! are replaced a bounded number of times, then the whole request fails with the reason and
//! leaves nothing running.

use std::sync::Arc;
use std::time::Duration;

use paasm::iaas::cloud::Cloud;
use paasm::iaas::controller::{Controller, ControllerOptions, check_agent_process};
use paasm::iaas::local::LocalCloud;

use crate::support::{component, paasm_bin};

/// A boot script that writes an agent configuration and runs the real agent on the node's
/// address, as the default start script does.
fn agent_script() -> String {
    format!(
        r#"cat > config.cfg <<CFG
[agent]
LOG_FILE = $NODE_DIR/agent.log
ETC = $NODE_DIR/etc
VAR_TMP = $NODE_DIR/tmp
VAR_CACHE = $NODE_DIR/cache
VAR_RUN = $NODE_DIR/run
STRING_TO_GENERATE = from-a-node
CFG
exec "{bin}" agent --config config.cfg --component "{component}" --listen "$NODE_IP:5555" --cache-dir "{cache}"
"#,
        bin = paasm_bin().display(),
        component = component("helloworld-agent").display(),
        cache = std::env::temp_dir()
            .join("paasm-controller-test-cache")
            .display(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_boot_answer_and_are_replaced_within_bounds() {
    let base = tempfile::tempdir().unwrap();
    let local = Arc::new(LocalCloud::new("local", base.path()));
    let options = ControllerOptions {
        agent_port: 5555,
        boot_timeout: Duration::from_secs(60),
        poll_interval: Duration::from_millis(100),
        max_attempts: 2,
    };
    let mut controller = Controller::new(options);
    controller.add_cloud(local.clone());

    let nodes = controller
        .create_nodes(2, "local", &agent_script())
        .await
        .unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0].id, format!("local{}", nodes[0].vmid));
    for node in &nodes {
        let addr = format!("{}:5555", node.ip).parse().unwrap();
        check_agent_process(addr).await.unwrap();
    }
    assert!(controller.delete_nodes(&nodes).await.is_empty());
    for node in &nodes {
        let addr = format!("{}:5555", node.ip).parse().unwrap();
        assert!(
            check_agent_process(addr).await.is_err(),
            "{} still answers",
            node.id
        );
    }
    assert!(local.list_vms().unwrap().is_empty());

    // Nodes whose agent never answers: two rounds of replacements, then a clear failure.
    let mut impatient = Controller::new(ControllerOptions {
        boot_timeout: Duration::from_millis(500),
        ..options
    });
    impatient.add_cloud(local.clone());
    let err = impatient
        .create_nodes(1, "local", "sleep 600\n")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1 of 1 nodes did not start after 2 attempts"),
        "{err}"
    );
    assert!(err.contains("did not answer check_agent_process"), "{err}");
    assert!(
        local.list_vms().unwrap().is_empty(),
        "failed nodes are killed"
    );

    let err = impatient
        .create_nodes(1, "ec2", "true\n")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(err, "unknown cloud: ec2; available clouds: local");
}
