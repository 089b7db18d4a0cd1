//! The OCI 1.1 referrers branch of `paasm package sign` and `verify`.
//!
//! Debian's registry (distribution 2.8) has no referrers API, and no registry that has one
//! installs from this machine's package registries. So [`ReferrersFront`] stands in front of
//! the real registry and adds just that part of the OCI distribution 1.1 spec: it notes every
//! manifest pushed with a `subject` (answering with the `OCI-Subject` header, as the spec
//! asks) and answers `GET /v2/<name>/referrers/<digest>` with an image index of them.
//! Everything else (blobs, manifests, tags, uploads) goes to the registry unchanged, so the
//! signatures themselves live in the real registry.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::managers::services_dir;
use crate::registry::{
    Registry, fails, generate_key, install, ok, pushed_digest, sign, text, trust_policy,
};

/// Referrers noted per `(repository, subject digest)`: their descriptors.
type Noted = Arc<Mutex<HashMap<(String, String), Vec<Value>>>>;

/// A loopback front adding the referrers API to a registry; stops when dropped.
struct ReferrersFront {
    addr: SocketAddr,
    noted: Noted,
    /// Requests to the referrers API it answered.
    asked: Arc<Mutex<usize>>,
    _runtime: tokio::runtime::Runtime,
}

impl ReferrersFront {
    fn start(upstream: SocketAddr) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let noted = Noted::default();
        let asked = Arc::new(Mutex::new(0));
        let (n, a) = (noted.clone(), asked.clone());
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (noted, asked) = (n.clone(), a.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (noted, asked) = (noted.clone(), asked.clone());
                        async move {
                            Ok::<_, Infallible>(answer(req, upstream, &noted, &asked).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            noted,
            asked,
            _runtime: runtime,
        }
    }

    fn at(&self, path: &str) -> String {
        format!("{}/{path}", self.addr)
    }
}

/// `(repository, digest)` of `/v2/<repository>/<what>/<digest>`.
fn split_path<'a>(path: &'a str, what: &str) -> Option<(&'a str, &'a str)> {
    let rest = path.strip_prefix("/v2/")?;
    let (repository, reference) = rest.rsplit_once(&format!("/{what}/"))?;
    Some((repository, reference))
}

async fn answer(
    req: Request<Incoming>,
    upstream: SocketAddr,
    noted: &Noted,
    asked: &Mutex<usize>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if req.method() == Method::GET
        && let Some((repository, digest)) = split_path(&path, "referrers")
    {
        *asked.lock().unwrap() += 1;
        let manifests = noted
            .lock()
            .unwrap()
            .get(&(repository.to_string(), digest.to_string()))
            .cloned()
            .unwrap_or_default();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let mut response = Response::new(Full::new(Bytes::from(index.to_string())));
        response.headers_mut().insert(
            "content-type",
            "application/vnd.oci.image.index.v1+json".parse().unwrap(),
        );
        return response;
    }
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let mut forward = Request::from_parts(parts.clone(), Full::new(body.clone()));
    *forward.uri_mut() = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()
        .unwrap();
    let stream = tokio::net::TcpStream::connect(upstream).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let reply = sender.send_request(forward).await.unwrap();
    let (mut reply_parts, reply_body) = reply.into_parts();
    let reply_body = reply_body.collect().await.unwrap().to_bytes();
    if parts.method == Method::PUT
        && reply_parts.status == StatusCode::CREATED
        && let Some((repository, _)) = split_path(&path, "manifests")
        && let Ok(manifest) = serde_json::from_slice::<Value>(&body)
        && let Some(subject) = manifest["subject"]["digest"].as_str()
    {
        let digest = reply_parts.headers["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_string();
        let mut descriptor = json!({
            "mediaType": manifest["mediaType"],
            "digest": digest,
            "size": body.len(),
        });
        for key in ["artifactType", "annotations"] {
            if !manifest[key].is_null() {
                descriptor[key] = manifest[key].clone();
            }
        }
        noted
            .lock()
            .unwrap()
            .entry((repository.to_string(), subject.to_string()))
            .or_default()
            .push(descriptor);
        reply_parts
            .headers
            .insert("oci-subject", subject.parse().unwrap());
    }
    Response::from_parts(reply_parts, Full::new(reply_body))
}

#[test]
fn signatures_go_through_the_referrers_api_where_the_registry_has_it() {
    let registry = Registry::start();
    let front = ReferrersFront::start(registry.addr);
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path();
    let acme = generate_key(keys, "acme");
    let policy = trust_policy(keys, &front.at("acme"), "acme");
    let source = services_dir().join("helloworld");
    let tag = front.at("acme/helloworld:1");
    let digest = pushed_digest(&ok(&["package", "push", source.to_str().unwrap(), &tag]));

    let out = sign(&tag, keys, "acme");
    assert!(out.contains(&digest) && out.contains(&acme), "{out}");
    // The signature manifest was pushed with the package as its subject and is listed by the
    // referrers API; no fallback tag was written.
    let listed = front.noted.lock().unwrap().clone();
    let signatures = &listed[&("acme/helloworld".to_string(), digest.clone())];
    assert_eq!(signatures.len(), 1, "{listed:?}");
    assert_eq!(
        signatures[0]["artifactType"], "application/vnd.paasm.signature.v1+json",
        "{signatures:?}"
    );
    let tags: Value =
        serde_json::from_str(&http_get(registry.addr, "/v2/acme/helloworld/tags/list")).unwrap();
    assert_eq!(tags["tags"], json!(["1"]), "only the package's tag: {tags}");

    // Verify and install find it through the referrers API.
    let asked = *front.asked.lock().unwrap();
    let out = ok(&[
        "package",
        "verify",
        &tag,
        "--trust-policy",
        policy.to_str().unwrap(),
    ]);
    assert!(out.contains(&format!("signed by {acme}")), "{out}");
    let services = tmp.path().join("services");
    let out = install(&format!("oci://{tag}"), &services, Some(&policy));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&acme), "{}", text(&out));
    assert!(*front.asked.lock().unwrap() >= asked + 2);

    // The same registry without the referrers API (and without a fallback tag) has no
    // signature to show: the one found above came through the API.
    let direct = format!("{}/acme/helloworld:1", registry.addr);
    let out = fails(
        &[
            "package",
            "verify",
            &direct,
            "--key",
            keys.join("acme.pub").to_str().unwrap(),
        ],
        "",
        &[],
    );
    assert!(out.contains("has no signature"), "{out}");
}

/// The body of `GET path` on `addr`.
fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}
