//! The HTTP side of the cloud APIs: an endpoint URL (`http://` or `https://`, host, port,
//! path) and one request to it, plain through the host's own client
//! ([`rpc::client::exchange`](crate::rpc::client::exchange)) or over TLS checked against the
//! web's root certificates.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

/// Where a cloud's API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// The path requests go to, `/` at least.
    pub path: String,
}

impl Endpoint {
    /// Parses `http://HOST[:PORT][/PATH]` or `https://HOST[:PORT][/PATH]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!(
                "expected an http:// or https:// URL, found {url:?}"
            ));
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            return Err(format!("expected SCHEME://HOST[:PORT], found {url:?}"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host.to_string(),
                port.parse()
                    .map_err(|_| format!("invalid port in {url:?}"))?,
            ),
            None => (authority.to_string(), if https { 443 } else { 80 }),
        };
        Ok(Self {
            https,
            host,
            port,
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
        })
    }

    /// `HOST` or `HOST:PORT` when the port is not the scheme's.
    pub fn authority(&self) -> String {
        match (self.https, self.port) {
            (true, 443) | (false, 80) => self.host.clone(),
            _ => format!("{}:{}", self.host, self.port),
        }
    }

    /// The whole URL.
    pub fn url(&self) -> String {
        format!(
            "{}://{}{}",
            if self.https { "https" } else { "http" },
            self.authority(),
            self.path
        )
    }

    fn resolve(&self) -> Result<SocketAddr, String> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("{} resolves to nothing", self.host))
    }

    /// Sends `request` (its URI may be absolute: the request line carries the path only)
    /// within `timeout`; the reply's status and body.
    pub async fn send(
        &self,
        mut request: hyper::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<(hyper::StatusCode, Bytes), String> {
        *request.uri_mut() = self
            .path
            .parse()
            .map_err(|e| format!("invalid path {:?}: {e}", self.path))?;
        if !request.headers().contains_key(hyper::header::HOST) {
            let host = self
                .authority()
                .parse()
                .map_err(|_| "bad host header".to_string())?;
            request.headers_mut().insert(hyper::header::HOST, host);
        }
        let addr = self.resolve()?;
        if self.https {
            exchange_tls(addr, &self.host, request, timeout).await
        } else {
            crate::rpc::client::exchange(addr, request, timeout).await
        }
    }
}

/// One HTTPS exchange with `addr` (server name `host`, checked against the web's root
/// certificates) within `timeout`.
async fn exchange_tls(
    addr: SocketAddr,
    host: &str,
    request: hyper::Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<(hyper::StatusCode, Bytes), String> {
    let exchange = async {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("invalid server name {host:?}: {e}"))?;
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        crate::rpc::client::send_over(tls, request).await
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no reply within {timeout:?}"))?
}

/// Runs `fut` to its end from a driver's synchronous method: on a thread of the runtime (a
/// caller's `block_in_place`) or of its blocking pool (`spawn_blocking`).
pub fn block_on<T>(runtime: &tokio::runtime::Handle, fut: impl Future<Output = T>) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => tokio::task::block_in_place(|| runtime.block_on(fut)),
        Err(_) => runtime.block_on(fut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_or_https_urls() {
        let e = Endpoint::parse("http://127.0.0.1:5000").unwrap();
        assert!(!e.https);
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("127.0.0.1", 5000, "/")
        );
        assert_eq!(e.url(), "http://127.0.0.1:5000/");
        let e = Endpoint::parse("https://ec2.eu-west-1.amazonaws.com/").unwrap();
        assert_eq!((e.https, e.port), (true, 443));
        assert_eq!(e.url(), "https://ec2.eu-west-1.amazonaws.com/");
        let e = Endpoint::parse("http://one:2633/RPC2").unwrap();
        assert_eq!(e.path, "/RPC2");
        for bad in ["ftp://x", "http://", "http://h:port"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
