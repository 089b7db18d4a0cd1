//! The driver interface every cloud implements (the seed's `Cloud` base class).

use std::fmt;

/// A machine a cloud runs for a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The cloud's id for it (the original's `vmid`).
    pub vmid: String,
    /// The address its agent is reached at.
    pub ip: String,
    /// The address inside the cloud's network.
    pub private_ip: String,
    /// Whether it is still there.
    pub state: InstanceState,
}

/// What a cloud says about an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Running,
    Stopped,
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InstanceState::Running => "running",
            InstanceState::Stopped => "stopped",
        })
    }
}

/// A failure of a cloud operation, in the cloud's words.
#[derive(Debug, thiserror::Error)]
#[error("cloud {cloud}: {message}")]
pub struct CloudError {
    pub cloud: String,
    pub message: String,
}

/// A cloud driver: starts machines that boot from a contextualization script.
pub trait Cloud: Send + Sync {
    /// The cloud's name (the configuration section it came from).
    fn name(&self) -> &str;

    /// Starts `count` instances, each booting from `script`.
    fn new_instances(&self, count: usize, script: &str) -> Result<Vec<Instance>, CloudError>;

    /// [`Cloud::new_instances`] for nodes of `role`, for clouds that label their machines.
    fn new_instances_as(
        &self,
        count: usize,
        script: &str,
        role: &str,
    ) -> Result<Vec<Instance>, CloudError> {
        let _ = role;
        self.new_instances(count, script)
    }

    /// Stops an instance and everything running on it.
    fn kill_instance(&self, vmid: &str) -> Result<(), CloudError>;

    /// The instances this driver started that still exist.
    fn list_vms(&self) -> Result<Vec<Instance>, CloudError>;

    /// The address this machine has on the cloud's own network, when its nodes reach the
    /// manager there rather than at the manager's configured address (`MY_IP`, `BOOTSTRAP`).
    fn gateway(&self) -> Option<String> {
        None
    }
}
