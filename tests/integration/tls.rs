//! HTTPS: the ConPaaS dialect over TLS ends every reply with `close_notify` before the close
//! (a client that reads to end of stream sees a clean end, not a truncation), JSON-RPC 2.0
//! keeps the connection, and with a client CA only clients holding a certificate it signed
//! get in.

use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{AgentSetup, component};

/// A CA, a server certificate for `localhost` and a client certificate, written as PEM files.
struct Pki {
    ca: CertificateDer<'static>,
    client_chain: Vec<CertificateDer<'static>>,
    client_key_pem: String,
}

fn write_pki(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["client".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), server_key.serialize_pem()).unwrap();
    Pki {
        ca: ca.der().clone(),
        client_chain: vec![client.der().clone()],
        client_key_pem: client_key.serialize_pem(),
    }
}

fn client_config(pki: &Pki, with_cert: bool) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_cert {
        let key = PrivateKeyDer::from_pem_slice(pki.client_key_pem.as_bytes()).unwrap();
        builder
            .with_client_auth_cert(pki.client_chain.clone(), key)
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(config)
}

/// Sends one request over TLS and reads to end of stream; an end without `close_notify` is an
/// error here, as it is for OpenSSL 3 clients.
async fn exchange(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
    request: &str,
) -> std::io::Result<String> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    tls.write_all(request.as_bytes()).await?;
    let mut bytes = Vec::new();
    tokio::time::timeout(crate::support::IO_TIMEOUT, tls.read_to_end(&mut bytes))
        .await
        .expect("the server must close the connection")?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn body_json(response: &str) -> Value {
    let body = response.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

/// An agent setup serving HTTPS with a fresh PKI, optionally requiring client certificates.
fn tls_setup(require_client_cert: bool) -> (AgentSetup, Pki) {
    let mut setup = AgentSetup::new("");
    let pki = write_pki(setup.dir.path());
    let file = |name: &str| setup.dir.path().join(name).display().to_string();
    let mut args = vec![
        "--tls-cert".to_string(),
        file("cert.pem"),
        "--tls-key".to_string(),
        file("key.pem"),
    ];
    if require_client_cert {
        args.extend(["--tls-client-ca".to_string(), file("ca.pem")]);
    }
    setup.extra_args = args;
    (setup, pki)
}

const GET_CHECK: &str = "GET /?method=check_agent_process&id=1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn conpaas_replies_over_tls_end_with_close_notify() {
    let (setup, pki) = tls_setup(false);
    let agent = setup.start(&component("helloworld-agent"));
    assert_eq!(agent.scheme, "https");
    let response = exchange(agent.addr, client_config(&pki, false), GET_CHECK)
        .await
        .expect("a clean TLS close after the reply");
    assert_eq!(
        body_json(&response),
        json!({"result": {}, "error": null, "id": "1"})
    );
    // Plain HTTP on a TLS port gets nowhere, and the agent keeps serving.
    let mut plain = tokio::net::TcpStream::connect(agent.addr).await.unwrap();
    plain.write_all(GET_CHECK.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(crate::support::IO_TIMEOUT, plain.read_to_end(&mut bytes)).await;
    assert!(
        !bytes.starts_with(b"HTTP/1.1 200"),
        "plain HTTP was answered"
    );
    let response = exchange(agent.addr, client_config(&pki, false), GET_CHECK)
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_admits_only_clients_the_ca_signed() {
    let (setup, pki) = tls_setup(true);
    let agent = setup.start(&component("helloworld-agent"));
    let response = exchange(agent.addr, client_config(&pki, true), GET_CHECK)
        .await
        .expect("a client with a certificate from the CA gets in");
    assert_eq!(body_json(&response)["result"], json!({}));
    let refused = exchange(agent.addr, client_config(&pki, false), GET_CHECK).await;
    assert!(
        refused.is_err(),
        "a client without a certificate must be refused: {refused:?}"
    );
}

#[test]
fn unusable_tls_files_are_named() {
    let mut setup = AgentSetup::new("");
    let missing = setup.dir.path().join("nope.pem");
    std::fs::write(setup.dir.path().join("empty.pem"), "").unwrap();
    setup.extra_args = vec![
        "--tls-cert".into(),
        setup.dir.path().join("empty.pem").display().to_string(),
        "--tls-key".into(),
        missing.display().to_string(),
    ];
    let output = setup.run_to_exit(&component("helloworld-agent"));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("empty.pem holds no certificates"),
        "{stderr}"
    );
}
