//! Test support for OffGrid's integration tests: `spawn_app()` starts the real
//! server (the binary's own wiring) on 127.0.0.1:0 with a temporary home, and
//! typed helpers drive it over HTTP. Used by `tests/api` and by the binaries'
//! process tests.

use std::sync::mpsc;

pub mod log_capture;

use offgrid_config::Settings;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

/// Username of the admin `setup_admin` creates.
pub const ADMIN: &str = "root";
/// Its password.
pub const ADMIN_PASSWORD: &str = "root-password-1";

/// A running server and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// An HTTP client without a cookie store.
    pub client: Client,
    /// The server's `OFFGRID_HOME`, removed on drop.
    pub home: tempfile::TempDir,
    /// The one-time setup code the server printed (multi-user, no admin).
    pub setup_code: Option<String>,
    handle: Option<actix_web::dev::ServerHandle>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(handle.stop(false));
            });
        }
    }
}

/// Multi-user mode with guests allowed (the seed's defaults).
pub fn spawn_multi_user() -> TestApp {
    spawn_app(|s| s.multi_user_mode = true)
}

/// The installed default models (`cargo xtask models`).
pub fn models_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("OFFGRID_MODELS_DIR") {
        return dir.into();
    }
    let home = std::env::var_os("OFFGRID_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".offgrid-llm"))
        })
        .expect("HOME or OFFGRID_HOME");
    home.join("models")
}

/// Like [`spawn_app`], with the real default models linked into the
/// temporary home.
pub fn spawn_with_models(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let models = models_dir();
    assert!(
        models.join("smollm2-135m-instruct").exists(),
        "{} has no default models: run `cargo xtask models`",
        models.display()
    );
    spawn_in(
        |home| {
            #[cfg(unix)]
            std::os::unix::fs::symlink(&models, home.join("models")).expect("link models");
        },
        configure,
    )
}

/// Like [`spawn_with_models`], but the temporary home gets its own models
/// folder holding only the chat model (hard links where possible, else
/// copies), so a test may import and remove models without touching the
/// installed ones.
pub fn spawn_with_private_models(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let models = models_dir();
    spawn_in(
        |home| {
            let src = models.join("smollm2-135m-instruct");
            let dst = home.join("models").join("smollm2-135m-instruct");
            std::fs::create_dir_all(&dst).expect("models dir");
            for entry in std::fs::read_dir(&src).expect("installed chat model") {
                let path = entry.expect("entry").path();
                let target = dst.join(path.file_name().expect("file name"));
                if std::fs::hard_link(&path, &target).is_err() {
                    std::fs::copy(&path, &target).expect("copy model file");
                }
            }
        },
        configure,
    )
}

/// Starts a server with default settings changed by `configure` (port 0,
/// bcrypt cost 4, a fresh temporary home).
pub fn spawn_app(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_in(|_| {}, configure)
}

fn spawn_in(
    prepare_home: impl FnOnce(&std::path::Path),
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    log_capture::install();
    let home = tempfile::tempdir().expect("tempdir");
    prepare_home(home.path());
    let mut settings = Settings::defaults(home.path().to_owned());
    settings.port = 0;
    settings.bcrypt_cost = 4;
    configure(&mut settings);
    let auth = offgrid_server::auth_config(&settings);
    let prepared = offgrid_server::prepare(settings, auth).expect("server start");
    let addr = prepared.addr;
    let setup_code = prepared.setup_code();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            match prepared.run(2) {
                Ok(server) => {
                    let _ = tx.send(Ok(server.handle()));
                    let _ = server.await;
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("{e:#}")));
                }
            }
        });
    });
    let handle = rx.recv().expect("server thread").expect("server start");
    TestApp {
        base: format!("http://{addr}"),
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        home,
        setup_code,
        handle: Some(handle),
    }
}

impl TestApp {
    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with an optional bearer credential.
    pub fn request(&self, method: &str, path: &str, auth: Option<&str>) -> RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let rb = self.client.request(method, self.url(path));
        match auth {
            Some(credential) => {
                log_capture::record_secret(credential);
                rb.bearer_auth(credential)
            }
            None => rb,
        }
    }

    /// GET.
    pub fn get(&self, path: &str, auth: Option<&str>) -> Response {
        self.request("GET", path, auth).send().expect("GET")
    }

    /// POST with a JSON body.
    pub fn post(&self, path: &str, auth: Option<&str>, body: Value) -> Response {
        log_capture::record_secrets(&body);
        self.request("POST", path, auth)
            .json(&body)
            .send()
            .expect("POST")
    }

    /// PATCH with a JSON body.
    pub fn patch(&self, path: &str, auth: Option<&str>, body: Value) -> Response {
        log_capture::record_secrets(&body);
        self.request("PATCH", path, auth)
            .json(&body)
            .send()
            .expect("PATCH")
    }

    /// DELETE.
    pub fn delete(&self, path: &str, auth: Option<&str>) -> Response {
        self.request("DELETE", path, auth).send().expect("DELETE")
    }

    /// POST /v1/auth/login.
    pub fn login(&self, username: &str, password: &str) -> Response {
        self.post(
            "/v1/auth/login",
            None,
            json!({"username": username, "password": password}),
        )
    }

    /// POST /v1/auth/login from another loopback address (`127.0.0.2`…),
    /// as a second client on the network would.
    pub fn login_from(&self, local_ip: &str, username: &str, password: &str) -> Response {
        let ip: std::net::IpAddr = local_ip.parse().expect("IP address");
        Client::builder()
            .local_address(ip)
            .build()
            .expect("client")
            .post(self.url("/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .expect("POST")
    }

    /// Logs in and returns the token, asserting success.
    pub fn token(&self, username: &str, password: &str) -> String {
        let res = self.login(username, password);
        assert_eq!(res.status(), 200, "login {username}");
        body(res)["token"].as_str().expect("token").to_owned()
    }

    /// Creates the first admin and returns a login token for it.
    pub fn setup_admin(&self) -> String {
        let res = self.post(
            "/v1/auth/setup",
            None,
            json!({"username": ADMIN, "password": ADMIN_PASSWORD}),
        );
        assert_eq!(res.status(), 201, "setup");
        self.token(ADMIN, ADMIN_PASSWORD)
    }

    /// Creates a user as `admin`; returns (id, api key).
    pub fn create_user(&self, admin: &str, username: &str, role: &str) -> (String, String) {
        let res = self.post(
            "/v1/users",
            Some(admin),
            json!({"username": username, "password": password_of(username), "role": role}),
        );
        assert_eq!(res.status(), 201, "create {username}");
        let b = body(res);
        (
            b["user"]["id"].as_str().expect("id").to_owned(),
            b["api_key"]["key"].as_str().expect("key").to_owned(),
        )
    }
}

/// The password `create_user` gives `username`.
pub fn password_of(username: &str) -> String {
    format!("{username}-password-1")
}

/// The response body as JSON (panics with the text if it is not).
pub fn body(res: Response) -> Value {
    let status = res.status();
    let text = res.text().expect("body");
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: not JSON ({e}): {text}"));
    log_capture::record_secrets(&v);
    v
}

/// Asserts an OpenAI-style error with this status and code.
pub fn assert_error(res: Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status(), status, "status");
    let b = body(res);
    assert_eq!(b["error"]["code"], code, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{b}"
    );
    assert!(b["error"]["type"].as_str().is_some(), "{b}");
    b
}
