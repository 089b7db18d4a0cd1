//! The dashboard in a real headless Chromium, driven through ChromeDriver (WebDriver): log
//! in, create a helloworld service, watch it become INIT and then RUNNING, add a node and see
//! it in the node table, call `get_helloworld` from the form generated from the manager's
//! OpenRPC document and upload a file through another, terminate. A screenshot is saved to `<target>/test-artifacts/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::frontend::FrontendSetup;
use crate::managers::free_port;
use crate::support;

/// How long the page may take to show what a step waits for.
const STEP: Duration = Duration::from_secs(120);

/// ChromeDriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new(which("chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (Debian package chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("{name} is not installed: `cargo xtask test` installs it"))
}

fn artifacts() -> PathBuf {
    let dir = support::target_dir().join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn browser(driver: &Driver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": which("chromium").display().to_string(),
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,1000"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a ChromeDriver session")
}

/// Waits until the element's text satisfies `ok`; the text.
async fn wait_text(
    client: &Client,
    css: &str,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> Result<String, String> {
    let deadline = Instant::now() + STEP;
    let mut last = String::new();
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            if ok(&text) {
                return Ok(text);
            }
            last = text;
        }
        if Instant::now() > deadline {
            let error = client.find(Locator::Css(".error:not(:empty)")).await.ok();
            let error = match error {
                Some(e) => e.text().await.unwrap_or_default(),
                None => String::new(),
            };
            return Err(format!(
                "{what}: {css} shows {last:?} after {STEP:?} (page error: {error:?})"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn click(client: &Client, css: &str) -> Result<(), String> {
    // Wait until it exists and is enabled (buttons are frozen while a service is busy).
    let deadline = Instant::now() + STEP;
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && element.prop("disabled").await.ok().flatten().as_deref() != Some("true")
            && element.click().await.is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{css} never became clickable"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn fill(client: &Client, css: &str, text: &str) -> Result<(), String> {
    let element = client
        .wait()
        .at_most(STEP)
        .for_element(Locator::Css(css))
        .await
        .map_err(|e| format!("{css}: {e}"))?;
    element.clear().await.map_err(|e| e.to_string())?;
    element.send_keys(text).await.map_err(|e| e.to_string())
}

/// The walk through the dashboard; the service id it created.
async fn walk(client: &Client, url: &str) -> Result<i64, String> {
    client.goto(url).await.map_err(|e| e.to_string())?;
    fill(client, "#login-username", "erin").await?;
    fill(client, "#login-password", "erin-password").await?;
    click(client, "#login-submit").await?;
    wait_text(client, "#credit", "the credit after logging in", |t| {
        t == "50"
    })
    .await?;
    // The catalogue says where each package came from (this one: no registry, no signer).
    wait_text(client, "#origin-helloworld", "the package's origin", |t| {
        t.contains("installed from a directory")
    })
    .await?;

    click(client, "#create-helloworld").await?;
    wait_text(client, "#state-1", "the new service's state", |t| {
        t.starts_with("INIT")
    })
    .await?;
    let led = client
        .find(Locator::Css("#led-1"))
        .await
        .map_err(|e| e.to_string())?;
    let class = led.attr("class").await.map_err(|e| e.to_string())?;
    if class.as_deref() != Some("led light-blue") {
        return Err(format!(
            "an INIT service's light is light blue, found {class:?}"
        ));
    }
    wait_text(client, "#credit", "the credit after creating", |t| {
        t == "49"
    })
    .await?;

    click(client, "#service-row-1 a").await?;
    click(client, "#btn-start").await?;
    wait_text(client, "#service-state", "the state after start", |t| {
        t == "RUNNING"
    })
    .await?;
    fill(client, "#node-count", "1").await?;
    click(client, "#btn-add-nodes").await?;
    wait_text(client, "#nodes-body", "the node table", |t| {
        t.contains("iaas1")
    })
    .await?;
    wait_text(client, "#service-state", "the state after add", |t| {
        t == "RUNNING"
    })
    .await?;

    // The form generated from the manager's OpenRPC document.
    click(client, "button[data-method=get_helloworld]").await?;
    wait_text(
        client,
        "#result-get_helloworld",
        "get_helloworld's answer",
        |t| t.contains("helloworld") && t.contains("iaas1"),
    )
    .await?;
    wait_text(client, "#manager-log", "the manager log", |t| {
        t.contains("Received")
    })
    .await?;

    // An UPLOAD method's form takes a file.
    let note = artifacts().join("note.txt");
    std::fs::write(&note, "hello operators\nsecond line\n").map_err(|e| e.to_string())?;
    let note = note.canonicalize().map_err(|e| e.to_string())?;
    let input = client
        .find(Locator::Css("#param-upload_note-note"))
        .await
        .map_err(|e| format!("the upload form's file field: {e}"))?;
    input
        .send_keys(&note.display().to_string())
        .await
        .map_err(|e| e.to_string())?;
    click(client, "button[data-method=upload_note]").await?;
    wait_text(client, "#result-upload_note", "upload_note's answer", |t| {
        t.contains("hello operators") && t.contains("28")
    })
    .await?;
    let shot = client.screenshot().await.map_err(|e| e.to_string())?;
    std::fs::write(artifacts().join("dashboard.png"), shot).map_err(|e| e.to_string())?;

    client
        .execute("window.confirm = () => true;", Vec::new())
        .await
        .map_err(|e| e.to_string())?;
    click(client, "#btn-terminate").await?;
    wait_text(client, "#no-services", "the list after terminating", |t| {
        t.contains("No services")
    })
    .await?;
    Ok(1)
}

#[test]
fn the_dashboard_drives_a_service_in_a_real_browser() {
    let fe = FrontendSetup::new().start();
    let admin = fe.user(None, "admin", None);
    fe.api_ok(
        Some(&admin),
        "user.create",
        json!({"username": "erin", "password": "erin-password"}),
    );
    let driver = Driver::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = format!("{}/", fe.url());
    let outcome = runtime.block_on(async {
        let client = browser(&driver).await;
        let outcome = walk(&client, &url).await;
        if outcome.is_err()
            && let Ok(shot) = client.screenshot().await
        {
            let _ = std::fs::write(artifacts().join("dashboard-failure.png"), shot);
        }
        let _ = client.close().await;
        outcome
    });
    if let Err(e) = outcome {
        panic!(
            "{e} (screenshot: {})",
            artifacts().join("dashboard-failure.png").display()
        );
    }
    // The service is gone from the frontend and no process of it is left.
    let erin = fe.api_ok(
        None,
        "login",
        json!({"username": "erin", "password": "erin-password"}),
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        fe.api_ok(Some(&erin), "service.list", json!({})),
        Value::Array(Vec::new())
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !fe.leftovers().is_empty() {
        assert!(Instant::now() < deadline, "left: {:?}", fe.leftovers());
        std::thread::sleep(Duration::from_millis(100));
    }
}
