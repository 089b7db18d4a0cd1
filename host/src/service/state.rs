//! The standard service lifecycle the host owns for every manager, with its history.
//!
//! States and their strings are the original's (`INIT`, `PROLOGUE`, `RUNNING`, `ADAPTING`,
//! `EPILOGUE`, `STOPPED`, `ERROR`). An operation first [`Lifecycle::begin`]s, which checks the
//! state and enters the transient state (or refuses with the original error string), and later
//! [`Lifecycle::finish`]es, which always leaves the transient state: to the stable state the
//! operation aims for, or to `ERROR` with the reason. Unlike the original, nothing can stay in
//! a transient state. Every change is kept, with its time and reason, for
//! `get_service_history`. Plain data: no I/O, no clock but the one passed in.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A service state, as the original managers report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ServiceState {
    Init,
    Prologue,
    Running,
    Adapting,
    Epilogue,
    Stopped,
    Error,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Init => "INIT",
            ServiceState::Prologue => "PROLOGUE",
            ServiceState::Running => "RUNNING",
            ServiceState::Adapting => "ADAPTING",
            ServiceState::Epilogue => "EPILOGUE",
            ServiceState::Stopped => "STOPPED",
            ServiceState::Error => "ERROR",
        }
    }

    /// Whether the state is one an operation passes through (the frontend polls until it ends).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ServiceState::Prologue | ServiceState::Adapting | ServiceState::Epilogue
        )
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lifecycle operation of the host's generic methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Startup,
    AddNodes,
    RemoveNodes,
    /// The host's own: replacing nodes the manager component named unreachable.
    ReplaceNodes,
    Shutdown,
}

impl Operation {
    /// The method name, as in the original error strings.
    pub fn method(self) -> &'static str {
        match self {
            Operation::Startup => "startup",
            Operation::AddNodes => "add_nodes",
            Operation::RemoveNodes => "remove_nodes",
            Operation::ReplaceNodes => "replace_nodes",
            Operation::Shutdown => "shutdown",
        }
    }

    fn transient(self) -> ServiceState {
        match self {
            Operation::Startup => ServiceState::Prologue,
            Operation::AddNodes | Operation::RemoveNodes | Operation::ReplaceNodes => {
                ServiceState::Adapting
            }
            Operation::Shutdown => ServiceState::Epilogue,
        }
    }

    fn target(self) -> ServiceState {
        match self {
            Operation::Shutdown => ServiceState::Stopped,
            _ => ServiceState::Running,
        }
    }
}

/// One entry of the state history (`get_service_history`'s `state_log`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateChange {
    /// Seconds since the Unix epoch.
    pub time: f64,
    pub state: ServiceState,
    pub reason: String,
}

/// A service's state and how it got there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lifecycle {
    state: ServiceState,
    /// The operation in progress, while the state is transient.
    #[serde(skip)]
    current: Option<Operation>,
    /// Why the operation in progress was started, when not by a client's request.
    #[serde(skip)]
    cause: Option<String>,
    history: Vec<StateChange>,
}

impl Lifecycle {
    /// A new service in `INIT`.
    pub fn new(now: f64) -> Self {
        Self {
            state: ServiceState::Init,
            current: None,
            cause: None,
            history: vec![StateChange {
                time: now,
                state: ServiceState::Init,
                reason: "manager started".into(),
            }],
        }
    }

    /// A lifecycle as it was saved: its state and history, no operation in progress (call
    /// [`Lifecycle::recover`] next).
    pub fn restore(state: ServiceState, history: Vec<StateChange>) -> Self {
        Self {
            state,
            current: None,
            cause: None,
            history,
        }
    }

    pub fn state(&self) -> ServiceState {
        self.state
    }

    /// The operation in progress, while the state is transient.
    pub fn current(&self) -> Option<Operation> {
        self.current
    }

    /// Every change, oldest first.
    pub fn history(&self) -> &[StateChange] {
        &self.history
    }

    fn enter(&mut self, state: ServiceState, reason: String, now: f64) {
        self.state = state;
        self.history.push(StateChange {
            time: now,
            state,
            reason,
        });
    }

    /// Starts `op` if the state allows it, entering its transient state; otherwise the
    /// original's error string.
    pub fn begin(&mut self, op: Operation, now: f64) -> Result<(), String> {
        self.begin_because(op, None, now)
    }

    /// [`Lifecycle::begin`], for a reason of the host's own (which the history keeps, on
    /// entering the transient state and on leaving it).
    pub fn begin_because(
        &mut self,
        op: Operation,
        cause: Option<String>,
        now: f64,
    ) -> Result<(), String> {
        use ServiceState::*;
        let allowed = match op {
            Operation::Startup => matches!(self.state, Init | Stopped | Error),
            Operation::AddNodes | Operation::RemoveNodes | Operation::ReplaceNodes => {
                self.state == Running
            }
            Operation::Shutdown => !self.state.is_transient(),
        };
        if !allowed {
            return Err(match op {
                Operation::AddNodes | Operation::RemoveNodes | Operation::ReplaceNodes => {
                    format!("ERROR: Wrong state to {}", op.method())
                }
                _ => format!(
                    "ERROR: cannot perform {} in state {}",
                    op.method(),
                    self.state
                ),
            });
        }
        self.current = Some(op);
        let reason = match &cause {
            Some(cause) => format!("{cause}; {} started", op.method()),
            None => format!("{} requested", op.method()),
        };
        self.cause = cause;
        self.enter(op.transient(), reason, now);
        Ok(())
    }

    /// Ends the operation in progress: its stable state on success, `ERROR` with the reason on
    /// failure. Does nothing when no operation is in progress.
    pub fn finish(&mut self, outcome: Result<(), String>, now: f64) {
        let Some(op) = self.current.take() else {
            return;
        };
        let cause = self.cause.take();
        match outcome {
            Ok(()) => {
                let reason = match cause {
                    Some(cause) => format!("{cause}; {} done", op.method()),
                    None => format!("{} done", op.method()),
                };
                self.enter(op.target(), reason, now)
            }
            Err(reason) => self.enter(
                ServiceState::Error,
                format!("{} failed: {reason}", op.method()),
                now,
            ),
        }
    }

    /// After a restart, an operation that was in progress cannot be resumed: the service goes to
    /// `ERROR` saying so, never stays transient.
    pub fn recover(&mut self, now: f64) {
        if self.state.is_transient() {
            self.enter(
                ServiceState::Error,
                format!("the manager restarted during {}", self.state),
                now,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helloworld_flow() {
        let mut l = Lifecycle::new(0.0);
        assert_eq!(l.state(), ServiceState::Init);
        l.begin(Operation::Startup, 1.0).unwrap();
        assert_eq!(l.state(), ServiceState::Prologue);
        l.finish(Ok(()), 2.0);
        assert_eq!(l.state(), ServiceState::Running);
        l.begin(Operation::AddNodes, 3.0).unwrap();
        assert_eq!(l.state(), ServiceState::Adapting);
        l.finish(Ok(()), 4.0);
        l.begin(Operation::RemoveNodes, 5.0).unwrap();
        l.finish(Ok(()), 6.0);
        l.begin(Operation::Shutdown, 7.0).unwrap();
        assert_eq!(l.state(), ServiceState::Epilogue);
        l.finish(Ok(()), 8.0);
        assert_eq!(l.state(), ServiceState::Stopped);
        let states: Vec<&str> = l.history().iter().map(|c| c.state.as_str()).collect();
        assert_eq!(
            states,
            [
                "INIT", "PROLOGUE", "RUNNING", "ADAPTING", "RUNNING", "ADAPTING", "RUNNING",
                "EPILOGUE", "STOPPED"
            ]
        );
        // A stopped service can start again.
        l.begin(Operation::Startup, 9.0).unwrap();
    }

    #[test]
    fn wrong_states_get_the_original_errors() {
        let mut l = Lifecycle::new(0.0);
        assert_eq!(
            l.begin(Operation::AddNodes, 1.0),
            Err("ERROR: Wrong state to add_nodes".into())
        );
        assert_eq!(
            l.begin(Operation::RemoveNodes, 1.0),
            Err("ERROR: Wrong state to remove_nodes".into())
        );
        l.begin(Operation::Startup, 1.0).unwrap();
        l.finish(Ok(()), 2.0);
        assert_eq!(
            l.begin(Operation::Startup, 3.0),
            Err("ERROR: cannot perform startup in state RUNNING".into())
        );
        l.begin(Operation::AddNodes, 3.0).unwrap();
        assert_eq!(
            l.begin(Operation::Shutdown, 3.5),
            Err("ERROR: cannot perform shutdown in state ADAPTING".into())
        );
        assert_eq!(l.history().len(), 4, "refusals change nothing");
    }

    #[test]
    fn failures_end_in_error_with_the_reason() {
        let mut l = Lifecycle::new(0.0);
        l.begin(Operation::Startup, 1.0).unwrap();
        l.finish(Ok(()), 2.0);
        l.begin(Operation::AddNodes, 3.0).unwrap();
        l.finish(
            Err("node iaas3 never answered check_agent_process".into()),
            4.0,
        );
        assert_eq!(l.state(), ServiceState::Error);
        let last = l.history().last().unwrap();
        assert_eq!(
            last.reason,
            "add_nodes failed: node iaas3 never answered check_agent_process"
        );
        assert_eq!(last.time, 4.0);
        // From ERROR: shut down, or start again.
        l.begin(Operation::Shutdown, 5.0).unwrap();
        l.finish(Ok(()), 6.0);
        assert_eq!(l.state(), ServiceState::Stopped);
    }

    #[test]
    fn a_restart_never_leaves_a_transient_state() {
        let mut l = Lifecycle::new(0.0);
        l.begin(Operation::Startup, 1.0).unwrap();
        let saved = serde_json::to_string(&l).unwrap();
        let mut restored: Lifecycle = serde_json::from_str(&saved).unwrap();
        assert_eq!(restored.state(), ServiceState::Prologue);
        restored.recover(2.0);
        assert_eq!(restored.state(), ServiceState::Error);
        assert_eq!(
            restored.history().last().unwrap().reason,
            "the manager restarted during PROLOGUE"
        );
        // finish() after recovery has nothing to finish.
        restored.finish(Ok(()), 3.0);
        assert_eq!(restored.state(), ServiceState::Error);
    }

    #[test]
    fn history_serializes_like_the_original_state_log() {
        let l = Lifecycle::new(12.5);
        let json = serde_json::to_value(l.history()).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{"time": 12.5, "state": "INIT", "reason": "manager started"}])
        );
    }
}
