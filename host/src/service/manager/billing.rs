//! Node time, charged to the frontend that started the manager.
//!
//! Every agent node costs one credit per started `CREDIT_PERIOD`: at a check a node owes
//! `floor((now - created) / period) + 1` credits minus what was billed already. What was billed
//! is kept per node in the manager's database, so a killed and restarted manager neither loses
//! nor repeats a charge (the original's per-batch timers lost everything on a crash). A check
//! runs every quarter period (at most every 30 s) and before nodes are removed; the charge goes
//! to `FE_CREDIT_URL` as the original's form (`sid`, `decrement`) with the service's secret as
//! a bearer token. A refusal for lack of credit shuts the service down with the reason in its
//! history; any other failure (the frontend unreachable) is retried at the next check.
//! The `terminate` method asks the frontend to end the service through `FE_TERMINATE_URL`.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;

use super::settings::Billing;
use super::{Manager, Node, now};
use crate::service::state::ServiceState;

/// How long one callback to the frontend may take.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a check came to.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Charge {
    /// Nothing was owed, or billing is off.
    Nothing,
    /// The frontend accepted this many credits.
    Charged(i64),
    /// The frontend refused for lack of credit (its message).
    NoCredit(String),
    /// No answer, or another refusal: retried at the next check.
    Failed(String),
}

/// The interval between checks for a period.
fn interval(period: Duration) -> Duration {
    (period / 4).clamp(Duration::from_millis(100), Duration::from_secs(30))
}

/// Checks on a timer for as long as the manager lives.
pub(super) fn spawn(manager: &Arc<Manager>) {
    let Some(billing) = manager.settings.billing.clone() else {
        return;
    };
    let weak: Weak<Manager> = Arc::downgrade(manager);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval(billing.period));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(manager) = weak.upgrade() else {
                return;
            };
            let nodes = manager.lock().nodes.clone();
            if let Charge::NoCredit(message) = manager.bill(&nodes).await {
                let state = manager.state();
                if state.is_transient() || state == ServiceState::Stopped {
                    // A shutdown is under way or done; an add_nodes finishes first.
                    continue;
                }
                let cause = format!("credit exhausted: {message}");
                tracing::warn!("{cause}; shutting the service down");
                if let Err(e) = manager.shutdown_because(cause) {
                    tracing::warn!("cannot shut down: {e:?}");
                }
            }
        }
    });
}

impl Manager {
    /// Charges what `nodes` owe; records it when the frontend accepts.
    pub(super) async fn bill(&self, nodes: &[Node]) -> Charge {
        let Some(billing) = &self.settings.billing else {
            return Charge::Nothing;
        };
        let billed = match self.store.billed() {
            Ok(b) => b,
            Err(e) => return Charge::Failed(e.to_string()),
        };
        let period = billing.period.as_secs_f64();
        let at = now();
        let mut owed = 0;
        let mut updates = Vec::new();
        for n in nodes {
            let done = billed
                .iter()
                .find(|(id, created, _)| *id == n.node.id && *created == n.created)
                .map_or(0, |(_, _, count)| *count);
            let due = ((at - n.created).max(0.0) / period).floor() as i64 + 1;
            if due > done {
                owed += due - done;
                updates.push((n.node.id.clone(), n.created, due));
            }
        }
        if owed == 0 {
            return Charge::Nothing;
        }
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("sid", &billing.service_id)
            .append_pair("decrement", &owed.to_string())
            .finish();
        match post(billing, &billing.credit_url, form).await {
            Ok(reply) if reply["error"] == false || reply["error"].is_null() => {
                let keep: Vec<(String, f64)> = self
                    .lock()
                    .nodes
                    .iter()
                    .map(|n| (n.node.id.clone(), n.created))
                    .collect();
                if let Err(e) = self.store.set_billed(&updates, &keep) {
                    // Charged but not recorded: the next check charges it again. Say so.
                    tracing::error!("charged {owed} credit(s) but cannot record it: {e}");
                }
                tracing::info!(credits = owed, "node time charged");
                Charge::Charged(owed)
            }
            Ok(reply) => {
                let message = reply["msg"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| reply.to_string());
                if message.to_ascii_lowercase().contains("not enough credit") {
                    Charge::NoCredit(message)
                } else {
                    tracing::warn!("the frontend refused a charge of {owed}: {message}");
                    Charge::Failed(message)
                }
            }
            Err(e) => {
                tracing::warn!("cannot charge node time (retrying later): {e}");
                Charge::Failed(e)
            }
        }
    }
}

/// Asks the frontend to terminate the service (`FE_TERMINATE_URL`, `sid`).
pub(super) async fn request_termination(billing: &Billing) -> Result<(), String> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("sid", &billing.service_id)
        .finish();
    let reply = post(billing, &billing.terminate_url, form)
        .await
        .map_err(|e| format!("cannot ask the frontend to terminate the service: {e}"))?;
    if reply["error"] == false || reply["error"].is_null() {
        Ok(())
    } else {
        Err(format!(
            "the frontend refused to terminate the service: {}",
            reply["msg"].as_str().unwrap_or("no reason given")
        ))
    }
}

/// POSTs a form to one of the frontend's callbacks with the service's secret; its JSON reply.
async fn post(billing: &Billing, url: &str, form: String) -> Result<Value, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr: SocketAddr = {
        use std::net::ToSocketAddrs;
        let with_port = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        with_port
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| format!("cannot resolve {host}"))?
    };
    let request = hyper::Request::post(path)
        .header("Host", host)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Authorization", format!("Bearer {}", billing.secret))
        .body(Full::new(Bytes::from(form)))
        .map_err(|e| e.to_string())?;
    let (status, body) = crate::rpc::client::exchange(addr, request, CALLBACK_TIMEOUT)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("HTTP {status} from {url}"));
    }
    serde_json::from_slice::<Value>(&body).map_err(|e| format!("reply is not JSON: {e}"))
}
