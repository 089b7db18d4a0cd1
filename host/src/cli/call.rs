//! `paasm call`: call a method of a manager or an agent from the command line, in the ConPaaS
//! dialect the original command-line clients spoke.
//!
//! The method's verb comes from the server's own `rpc.discover` document, so the caller never
//! has to know whether a method is a GET or a POST. Parameters are `NAME=VALUE` pairs (a value
//! that parses as JSON is sent as that JSON, so `count=2` is the integer 2; anything else is a
//! string) or one JSON object. With `--wait`, a call that starts a long operation is followed
//! until the service is in a stable state again, with a spinner showing the state; the exit
//! status says whether it ended well.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use crate::rpc::Verb;
use crate::rpc::client::{self, ClientError};

/// States a manager passes through; `--wait` follows them.
const TRANSIENT: [&str; 3] = ["PROLOGUE", "ADAPTING", "EPILOGUE"];

/// What `paasm call` was asked to do.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// `http://HOST:PORT[/]` or `HOST:PORT`.
    pub server: String,
    pub method: String,
    /// `NAME=VALUE` pairs, or one JSON object.
    pub params: Vec<String>,
    /// Follow the service until its state is stable.
    pub wait: bool,
    /// How long one request, and with `--wait` the whole operation, may take.
    pub timeout: Duration,
    /// Show a spinner while waiting (a terminal is attached).
    pub progress: bool,
}

/// The server address from `http://HOST:PORT/` or `HOST:PORT`.
pub fn parse_server(text: &str) -> Result<SocketAddr> {
    let trimmed = text
        .trim()
        .strip_prefix("http://")
        .unwrap_or(text.trim())
        .trim_end_matches('/');
    if text.trim().starts_with("https://") {
        bail!("invalid server {text:?}: paasm call speaks plain HTTP; use http://HOST:PORT");
    }
    use std::net::ToSocketAddrs;
    trimmed
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .with_context(|| format!("invalid server {text:?}: expected http://HOST:PORT or HOST:PORT"))
}

/// The params object from the command line.
pub fn parse_params(args: &[String]) -> Result<Map<String, Value>> {
    if let [single] = args
        && single.trim_start().starts_with('{')
    {
        return match serde_json::from_str(single) {
            Ok(Value::Object(map)) => Ok(map),
            _ => bail!("invalid params {single:?}: expected a JSON object or NAME=VALUE pairs"),
        };
    }
    let mut params = Map::new();
    for arg in args {
        let Some((name, value)) = arg.split_once('=').filter(|(n, _)| !n.is_empty()) else {
            bail!("invalid parameter {arg:?}: expected NAME=VALUE or one JSON object");
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
        if params.insert(name.to_string(), value).is_some() {
            bail!("parameter {name:?} is given twice");
        }
    }
    Ok(params)
}

/// Runs the call; returns whether it ended well (for the exit status).
pub async fn run(options: CallOptions) -> Result<bool> {
    let addr = parse_server(&options.server)?;
    let params = parse_params(&options.params)?;
    let verb = verb_of(addr, &options.method, options.timeout).await?;
    let result = match client::call(addr, verb, &options.method, &params, options.timeout).await {
        Ok(result) => result,
        Err(ClientError::Remote(message)) => {
            eprintln!("error: {message}");
            return Ok(false);
        }
        Err(e) => return Err(e).context(format!("cannot call {}", options.method)),
    };
    println!("{}", serde_json::to_string_pretty(&result)?);
    if !options.wait {
        return Ok(true);
    }
    wait_until_stable(addr, &options).await
}

/// The verb of `method` from the server's OpenRPC document.
async fn verb_of(addr: SocketAddr, method: &str, timeout: Duration) -> Result<Verb> {
    let document = client::call(addr, Verb::Get, crate::rpc::DISCOVER, &Map::new(), timeout)
        .await
        .with_context(|| format!("cannot ask {addr} for its methods"))?;
    let methods = document["methods"].as_array().cloned().unwrap_or_default();
    let Some(entry) = methods.iter().find(|m| m["name"] == method) else {
        let mut names: Vec<&str> = methods.iter().filter_map(|m| m["name"].as_str()).collect();
        names.sort_unstable();
        bail!(
            "{addr} has no method {method:?}; it serves: {}",
            names.join(", ")
        );
    };
    match entry["x-verb"].as_str() {
        Some("GET") => Ok(Verb::Get),
        Some("POST") => Ok(Verb::Post),
        Some("UPLOAD") => bail!("{method} is an UPLOAD method, which paasm call cannot send"),
        other => bail!("{addr} describes {method} with an unknown verb {other:?}"),
    }
}

/// Polls `get_service_info` until the state is stable; prints it, and the reason of an ERROR.
async fn wait_until_stable(addr: SocketAddr, options: &CallOptions) -> Result<bool> {
    let spinner = options.progress.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    });
    let started = Instant::now();
    let state = loop {
        let info = client::call(
            addr,
            Verb::Get,
            "get_service_info",
            &Map::new(),
            options.timeout,
        )
        .await
        .context("cannot follow the service's state")?;
        let state = info["state"].as_str().unwrap_or_default().to_string();
        if !TRANSIENT.contains(&state.as_str()) {
            break state;
        }
        if started.elapsed() > options.timeout {
            if let Some(bar) = &spinner {
                bar.finish_and_clear();
            }
            bail!("the service is still {state} after {:?}", options.timeout);
        }
        if let Some(bar) = &spinner {
            bar.set_message(format!(
                "{} {state} ({:.0} s)",
                options.method,
                started.elapsed().as_secs_f64()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if let Some(bar) = &spinner {
        bar.finish_and_clear();
    }
    if state != "ERROR" {
        eprintln!("state: {state}");
        return Ok(true);
    }
    let history = client::call(
        addr,
        Verb::Get,
        "get_service_history",
        &Map::new(),
        options.timeout,
    )
    .await
    .ok();
    let reason = history
        .as_ref()
        .and_then(|h| h["state_log"].as_array())
        .and_then(|log| log.last())
        .and_then(|last| last["reason"].as_str())
        .unwrap_or("no reason recorded");
    eprintln!("state: ERROR: {reason}");
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn params_are_pairs_or_one_object() {
        let p = parse_params(&args(&["count=2", "cloud=edge", "flag=true"])).unwrap();
        assert_eq!(p["count"], 2);
        assert_eq!(p["cloud"], "edge");
        assert_eq!(p["flag"], true);
        let p = parse_params(&args(&["{\"count\": \"2\"}"])).unwrap();
        assert_eq!(p["count"], "2");
        assert!(
            parse_params(&args(&["count"]))
                .unwrap_err()
                .to_string()
                .contains("NAME=VALUE")
        );
        assert!(parse_params(&args(&["=2"])).is_err());
        assert!(
            parse_params(&args(&["a=1", "a=2"]))
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        assert!(parse_params(&args(&["{nope"])).is_err());
        assert!(parse_params(&[]).unwrap().is_empty());
    }

    #[test]
    fn servers_are_urls_or_addresses() {
        assert_eq!(
            parse_server("http://127.0.0.1:8080/").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            parse_server("127.0.0.1:5555").unwrap(),
            "127.0.0.1:5555".parse().unwrap()
        );
        assert!(parse_server("https://127.0.0.1:8080").is_err());
        assert!(
            parse_server("nowhere")
                .unwrap_err()
                .to_string()
                .contains("HOST:PORT")
        );
    }
}
