//! The test's server, the document, and the checker that validates answers against it.
#![allow(dead_code)]

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether_core::Registry;
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, serve, ServerOptions};
use tether_store_sqlite::SqliteStore;

pub(crate) const TOKEN: &str = "openapi-test-token";

/// The methods a path item can hold (OpenAPI 3.1), which `ANY` stands for.
pub(crate) const OPENAPI_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// A running server and a client for it.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) client: reqwest::Client,
    pub(crate) engine: Engine,
    pub(crate) stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub(crate) task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub(crate) _dir: tempfile::TempDir,
}

pub(crate) async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("t.db").to_str().unwrap())
        .await
        .unwrap();
    let mut registry = Registry::new();
    tether_examples::register(&mut registry);
    let engine = Engine::start(Arc::new(store), registry, EngineConfig::default());
    let options = ServerOptions {
        api_token: Some(TOKEN.to_string()),
        ..ServerOptions::default()
    };
    let app = router(engine.clone(), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, app, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        client: reqwest::Client::new(),
        engine,
        stop: Some(stop),
        task: Some(task),
        _dir: dir,
    }
}

impl Server {
    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.engine.shutdown().await;
    }
}

/// One answer of the server.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) content_type: String,
    /// The body as JSON, when it is JSON.
    pub(crate) json: Option<Value>,
}

/// The document, and every answer checked against it.
pub(crate) struct Checker {
    pub(crate) doc: Value,
    pub(crate) server: Server,
    /// `(method, path template, status)` of every answer checked.
    pub(crate) seen: BTreeSet<(String, String, u16)>,
}

impl Checker {
    /// Send a request (with the API token unless `token` says otherwise) and check the answer
    /// against the operation `method template`.
    pub(crate) async fn call_as(
        &mut self,
        token: Option<&str>,
        method: Method,
        template: &str,
        uri: &str,
        body: Option<Vec<u8>>,
    ) -> Answer {
        let url = format!("http://{}{uri}", self.server.addr);
        let mut req = self.server.client.request(method.clone(), url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let json = if content_type.starts_with("text/event-stream") {
            // A stream never ends: read its first event only.
            let mut resp = resp;
            let first = resp.chunk().await.unwrap().unwrap_or_default();
            let text = String::from_utf8_lossy(&first);
            assert!(text.contains("event: ready"), "{uri}: {text}");
            None
        } else {
            let bytes = resp.bytes().await.unwrap();
            if content_type.starts_with("application/json") {
                Some(
                    serde_json::from_slice(&bytes)
                        .unwrap_or_else(|e| panic!("{method} {uri}: not JSON ({e}): {bytes:?}")),
                )
            } else {
                None
            }
        };
        let answer = Answer {
            status,
            content_type,
            json,
        };
        self.check(method.as_str(), template, &answer);
        answer
    }

    pub(crate) async fn call(
        &mut self,
        method: Method,
        template: &str,
        uri: &str,
        body: Option<Value>,
    ) -> Answer {
        self.call_as(
            Some(TOKEN),
            method,
            template,
            uri,
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    pub(crate) async fn get(&mut self, template: &str, uri: &str) -> Answer {
        self.call(Method::GET, template, uri, None).await
    }

    pub(crate) async fn post(&mut self, template: &str, uri: &str, body: Value) -> Answer {
        self.call(Method::POST, template, uri, Some(body)).await
    }

    /// The answer to `method template` validates against the document.
    pub(crate) fn check(&mut self, method: &str, template: &str, answer: &Answer) {
        let what = format!("{method} {template} → {}", answer.status);
        let op = &self.doc["paths"][template][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{what}: no such operation in the document");
        let responses = &op["responses"];
        let status = answer.status.as_u16().to_string();
        let response = if responses[&status].is_object() {
            &responses[&status]
        } else {
            &responses["default"]
        };
        assert!(
            response.is_object(),
            "{what}: the status is not documented: {}",
            answer
                .json
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default()
        );
        let content = &response["content"];
        match content.as_object() {
            None => {
                // No content documented: a webhook's own answer, or an empty body.
                assert!(
                    responses[&status].is_null() || answer.content_type.is_empty(),
                    "{what}: a body of {} where none is documented",
                    answer.content_type
                );
            }
            Some(types) => {
                let media = answer.content_type.split(';').next().unwrap_or("").trim();
                let Some(media_type) = types.get(media) else {
                    panic!("{what}: content type {media:?} is not among {types:?}");
                };
                if let Some(body) = &answer.json {
                    let schema = &media_type["schema"];
                    validate(&self.doc, schema, body, &what);
                    // An error names a code listed on that response.
                    let failed = answer.status.is_client_error() || answer.status.is_server_error();
                    if let Some(code) = body["error"]["code"].as_str().filter(|_| failed) {
                        let listed = response["description"]
                            .as_str()
                            .unwrap_or_default()
                            .contains(&format!("`{code}`"));
                        assert!(listed, "{what}: `{code}` is not listed on that response");
                    }
                }
            }
        }
        self.seen.insert((
            method.to_string(),
            template.to_string(),
            answer.status.as_u16(),
        ));
    }
}

/// `instance` validates against `schema`, whose `$ref`s point into the document's
/// `#/components/schemas` (OpenAPI 3.1 schemas are JSON Schema 2020-12).
pub(crate) fn validate(doc: &Value, schema: &Value, instance: &Value, what: &str) {
    let mut root = schema.clone();
    if let Value::Object(m) = &mut root {
        // `#/components/schemas/X` then resolves inside this one schema resource.
        m.insert("components".into(), doc["components"].clone());
    }
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("{what}: the schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: the answer does not match the document:\n{}\n{instance:#}",
        errors.join("\n")
    );
}

pub(crate) async fn fetch_document(s: &Server) -> Value {
    let resp = s
        .client
        .get(format!("http://{}/openapi.json", s.addr))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

/// Replace `{name}` segments with `x`.
pub(crate) fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

pub(crate) async fn first_hook(c: &mut Checker, run: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = c
            .get("/v1/runs/{run_id}/hooks", &format!("/v1/runs/{run}/hooks"))
            .await;
        assert_eq!(a.status, StatusCode::OK);
        if let Some(h) = a
            .json
            .as_ref()
            .and_then(|v| v.as_array())
            .and_then(|v| v.first())
        {
            return h.clone();
        }
        assert!(Instant::now() < deadline, "run {run} created no hook");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) async fn start(c: &mut Checker, workflow: &str, input: Value) -> String {
    let a = c
        .post(
            "/v1/runs",
            "/v1/runs",
            json!({"workflow": workflow, "input": input}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.json);
    a.json.unwrap()["run_id"].as_str().unwrap().to_string()
}

pub(crate) async fn wait(c: &mut Checker, run: &str) -> Value {
    let a = c
        .get(
            "/v1/runs/{run_id}",
            &format!("/v1/runs/{run}?wait_ms=30000"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    a.json.unwrap()
}

pub(crate) fn code(a: &Answer) -> &str {
    a.json
        .as_ref()
        .and_then(|v| v["error"]["code"].as_str())
        .unwrap_or_default()
}
