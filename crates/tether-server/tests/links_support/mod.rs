//! What the resume-link tests share (`resume_links.rs`): a real server on TCP over a given
//! store, behind an API token, with the bundled examples; requests with and without the token.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::ACCEPT;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tether_core::Registry;
use tether_engine::{Clock, Engine, EngineConfig};
use tether_server::{router, serve, LinkKeys, ServerOptions};
use tether_store::Store;

/// The API token of every test server.
pub const TOKEN: &str = "links-test-token";
/// Secrets of the keys `k1` and `k2`.
pub const S1: &str = "k1-secret-0123456789abcdef0123456789";
pub const S2: &str = "k2-secret-0123456789abcdef0123456789";

/// A running server.
pub struct Node {
    pub addr: SocketAddr,
    pub engine: Engine,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// How a node is made.
pub struct Setup {
    pub keys: LinkKeys,
    pub clock: Clock,
    pub node_id: Option<String>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            keys: LinkKeys::new("k1", S1).expect("a key"),
            clock: Clock::system(),
            node_id: None,
        }
    }
}

/// A server over `store`, listening on a free port of 127.0.0.1.
pub async fn node(store: Arc<dyn Store>, setup: Setup) -> Node {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("an address");
    let mut registry = Registry::new();
    tether_examples::register(&mut registry);
    let config = EngineConfig {
        public_url: Some(format!("http://{addr}")),
        clock: setup.clock,
        node_id: setup.node_id,
        // Long enough that no node takes another's run over during a test.
        lease: Duration::from_secs(60),
        ..EngineConfig::default()
    };
    let engine = Engine::start(store, registry, config);
    serve_on(listener, engine, setup.keys)
}

/// Another server of `engine` with other link keys (as after a restart with new keys).
pub async fn sibling(of: &Node, keys: LinkKeys) -> Node {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    serve_on(listener, of.engine.clone(), keys)
}

fn serve_on(listener: tokio::net::TcpListener, engine: Engine, keys: LinkKeys) -> Node {
    let addr = listener.local_addr().expect("an address");
    let options = ServerOptions {
        api_token: Some(TOKEN.to_string()),
        link_keys: keys,
        ..ServerOptions::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, router(engine.clone(), options), async {
        let _ = stopped.await;
    }));
    Node {
        addr,
        engine,
        client: reqwest::Client::new(),
        stop: Some(stop),
        task: Some(task),
    }
}

/// A status and a JSON body (`Null` when the body is not JSON).
pub type Answer = (StatusCode, Value);

async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status();
    let text = resp.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

impl Node {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The same link, on this node.
    pub fn on(&self, link_url: &str) -> String {
        let path = link_url.find("/l/").map_or(link_url, |i| &link_url[i..]);
        self.url(path)
    }

    /// Start an `approval` run and wait for its hook: the run and the hook's token.
    pub async fn approval_run(&self, order: &str) -> (String, String) {
        let resp = self
            .client
            .post(self.url("/v1/runs"))
            .bearer_auth(TOKEN)
            .json(&json!({"workflow": "approval", "input": {"order_id": order}}))
            .send()
            .await
            .expect("start");
        let (status, body) = answer(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let run = body["run_id"].as_str().expect("a run id").to_owned();
        for _ in 0..2000 {
            let resp = self
                .client
                .get(self.url(&format!("/v1/runs/{run}/hooks")))
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("hooks");
            let (_, hooks) = answer(resp).await;
            if let Some(token) = hooks[0]["token"].as_str() {
                return (run, token.to_owned());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("run {run} created no hook");
    }

    /// `POST /v1/hooks/{token}/links` with `body`, with the API token or not.
    pub async fn create_link(&self, token: &str, body: Value, auth: bool) -> Answer {
        let mut req = self
            .client
            .post(self.url(&format!("/v1/hooks/{token}/links")))
            .json(&body);
        if auth {
            req = req.bearer_auth(TOKEN);
        }
        answer(req.send().await.expect("create a link")).await
    }

    /// A new link's URL (the creation must succeed).
    pub async fn link(&self, token: &str, body: Value) -> String {
        let (status, answer) = self.create_link(token, body, true).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer["url"].as_str().expect("a url").to_owned()
    }

    /// `POST` a link as a program would (JSON), never with the API token.
    pub async fn use_link(&self, url: &str) -> Answer {
        answer(self.client.post(url).send().await.expect("use")).await
    }

    /// `GET` or `POST` a link as a browser would: status, headers, HTML.
    pub async fn browse(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let resp = self
            .client
            .request(method, url)
            .header(ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
            .await
            .expect("browse");
        let (status, headers) = (resp.status(), resp.headers().clone());
        (status, headers, resp.text().await.expect("a page"))
    }

    /// The run as the API shows it.
    pub async fn run(&self, run: &str) -> Value {
        let resp = self
            .client
            .get(self.url(&format!("/v1/runs/{run}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("run");
        answer(resp).await.1
    }

    /// Wait until `run` has ended; its output.
    pub async fn output(&self, run: &str) -> Value {
        let done = self
            .engine
            .wait_for_run(run, Duration::from_secs(20))
            .await
            .expect("the run");
        assert_eq!(done.status, tether_core::RunStatus::Completed, "{done:?}");
        done.output.unwrap_or(Value::Null)
    }

    /// Stop the server and the engine; the store is released when this returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        self.engine.shutdown().await;
    }
}

/// The same link with its claims or signature changed by one character.
pub fn tampered(url: &str) -> String {
    let (head, sig) = url.rsplit_once('.').expect("a signed link");
    let mut sig: Vec<char> = sig.chars().collect();
    sig[0] = if sig[0] == 'A' { 'B' } else { 'A' };
    format!("{head}.{}", sig.into_iter().collect::<String>())
}
