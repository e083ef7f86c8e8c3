//! Hostile HTTP input against a real server on a TCP socket, through a raw client (so bytes a
//! well-behaved client refuses to send — NUL, invalid UTF-8, `..` segments, huge headers — do
//! reach the server).
//!
//! Every route of `tether_server::router` is hit with malformed bodies, wrong methods, hostile
//! path segments, hostile queries, oversized bodies and headers and bad `Idempotency-Key`s.
//! The rules checked for every answer: never a 5xx; an error is a 4xx whose body is
//! `{"error": {"code", "message"}}`; and a run started beforehand (waiting on its hook) is
//! untouched: same status, same journal, same hooks.
//!
//! The only answers that are not JSON come from hyper itself, for requests that are not HTTP
//! it can parse (see `protocol_errors_hyper_answers_itself` and docs/guarantees.md).

mod hostile_support;

use hostile_support::{
    enc, expect, get_req, post_req, req, send, Server, Want, SINK_TOKEN, SQL_ISH,
};

/// The routes of `src/lib.rs`: method, path template (`{id}` is the parameter), and a body
/// that would be acceptable on an unknown id (for the path-segment cases).
const ROUTES: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/v1/runs",
        r#"{"workflow":"approval","input":{"order_id":"o"}}"#,
    ),
    ("GET", "/v1/runs", ""),
    ("GET", "/v1/runs/{id}", ""),
    ("GET", "/v1/runs/{id}/events", ""),
    ("GET", "/v1/runs/{id}/hooks", ""),
    (
        "POST",
        "/v1/runs/{id}/hooks",
        r#"{"workflow_name":"enrich_hook","args":{}}"#,
    ),
    ("GET", "/v1/runs/{id}/state", ""),
    ("POST", "/v1/signals/{id}", "{}"),
    ("POST", "/v1/runs/{id}/cancel", ""),
    ("POST", "/v1/hooks/{id}", "{}"),
    ("GET", "/v1/hooks/{id}", ""),
    ("POST", "/.well-known/workflow/v1/webhook/{id}", "{}"),
    ("GET", "/v1/workflows", ""),
    ("GET", "/healthz", ""),
    // The web UI (src/ui/mod.rs).
    ("GET", "/", ""),
    ("GET", "/runs/{id}", ""),
    ("GET", "/ui/{id}", ""),
    ("GET", "/v1/runs/stream", ""),
    ("GET", "/v1/runs/{id}/stream", ""),
    ("GET", "/v1/runs/{id}/threads", ""),
];

/// The run page is the same static HTML for any id (nothing of the request is echoed).
const STATIC_PAGE: &str = "/runs/{id}";

/// A live stream that never ends (not something to read to the end here).
const ENDLESS: &str = "/v1/runs/stream";

/// Hostile path segments, as written in the request target, and whether a signal id that
/// decodes from it is a legitimate (storable) name, so `POST /v1/signals/{id}` may accept it.
fn hostile_segments() -> Vec<(String, bool)> {
    let long = "a".repeat(5_000);
    vec![
        (enc(SQL_ISH), true),
        ("'OR'1'='1'--".into(), true),
        (enc("'; DROP TABLE runs; --"), true),
        ("..%2F..%2Fetc%2Fpasswd".into(), true),
        ("%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(), true),
        ("%2E%2E".into(), true),
        ("%00".into(), false),
        ("a%00b".into(), false),
        (long, false),
        (enc("\u{202E}gnp.exe"), true),
        (enc("\u{202E}").repeat(1_000), false),
        ("%FF%FE".into(), false),
        ("%C0%AE%C0%AE".into(), false),
        ("%zz%".into(), true),
        (enc("{{7*7}}<script>$(reboot)"), true),
    ]
}

#[tokio::test]
async fn hostile_path_segments_on_every_route() {
    let s = Server::start().await;
    let before = s.snapshot().await;
    for (method, template, body) in ROUTES.iter().filter(|r| r.1.contains("{id}")) {
        for (segment, legit_name) in hostile_segments() {
            let target = template.replace("{id}", &segment);
            // A signal to any storable id is kept for a later wait; the run page is static.
            let lenient =
                (template.starts_with("/v1/signals/") && legit_name) || *template == STATIC_PAGE;
            let want = if lenient {
                Want::NoServerError
            } else {
                Want::ClientError
            };
            let r = send(&s.addr, &req(method, &target, &[], body.as_bytes())).await;
            expect(&r, want, &format!("{method} {template} with {segment:.40}"));
        }
    }
    // Raw `..` segments and empty segments change the route: unknown routes are JSON 404s.
    for target in [
        "/v1/hooks/../../etc/passwd",
        "/v1/runs/../../../etc/passwd",
        "/v1/runs//events",
        "/v1//runs",
        "/.well-known/workflow/v1/webhook/",
        "/v1/runs/x/events/../../../../etc/passwd",
    ] {
        for method in ["GET", "POST"] {
            let r = send(&s.addr, &req(method, target, &[], b"{}")).await;
            expect(&r, Want::ClientError, &format!("{method} {target}"));
        }
    }
    s.assert_untouched(&before).await;
}

#[tokio::test]
async fn the_real_run_is_not_reachable_through_hostile_variants_of_its_ids() {
    let s = Server::start().await;
    let before = s.snapshot().await;
    let run = before.run_id.clone();
    let token = before.token.clone();
    // Suffixes, prefixes and encodings of the real ids name nothing.
    for bad in [
        format!("{run}%00"),
        format!("{run}%20"),
        format!("%20{run}"),
        format!("{run}/"),
        format!("{run}%2F"),
        format!("{run}'%20OR%201=1--"),
        run.to_uppercase(),
    ] {
        let r = send(&s.addr, &post_req(&format!("/v1/runs/{bad}/cancel"), b"")).await;
        expect(&r, Want::ClientError, &format!("cancel {bad}"));
    }
    for bad in [
        format!("{token}%00"),
        format!("{token}%0A"),
        format!("{token}'--"),
        format!("%E2%80%AE{token}"),
        token.to_uppercase(),
    ] {
        let payload = br#"{"approved":true,"comment":"x"}"#;
        let r = send(&s.addr, &post_req(&format!("/v1/hooks/{bad}"), payload)).await;
        expect(&r, Want::ClientError, &format!("resume {bad}"));
    }
    s.assert_untouched(&before).await;
}

/// Bodies no endpoint accepts.
/// The last two are valid JSON (of the wrong shape for most routes).
fn hostile_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let mut deep_array = "[".repeat(100_000).into_bytes();
    deep_array.extend("]".repeat(100_000).into_bytes());
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(20_000), "}".repeat(20_000));
    vec![
        ("empty", Vec::new()),
        (
            "truncated",
            br#"{"workflow": "approval", "input": {"#.to_vec(),
        ),
        ("not json", b"hello=world&x=1".to_vec()),
        ("100k [", deep_array),
        ("20k nested objects", deep_object.into_bytes()),
        ("huge exponent", b"1e999999".to_vec()),
        (
            "huge integer",
            format!("{{\"n\": {}}}", "9".repeat(5_000)).into_bytes(),
        ),
        ("invalid UTF-8", b"{\"workflow\": \"\xff\xfe\"}".to_vec()),
        ("lone surrogate", br#"{"workflow": "\ud800"}"#.to_vec()),
        ("raw NUL", b"{\"workflow\": \"a\0b\"}".to_vec()),
        (
            "trailing garbage",
            br#"{"workflow": "approval"} {"#.to_vec(),
        ),
        ("BOM", b"\xef\xbb\xbf{\"workflow\": 1}".to_vec()),
        ("utf-16", b"\xff\xfe{\0\"\0".to_vec()),
        ("xml", b"<?xml version=\"1.0\"?><run/>".to_vec()),
        (
            "wrong types",
            br#"{"workflow": ["approval"], "workflow_name": 7, "reason": 5, "approved": "yes"}"#
                .to_vec(),
        ),
        ("null", b"null".to_vec()),
    ]
}

#[tokio::test]
async fn malformed_bodies_on_every_body_route() {
    let s = Server::start().await;
    let before = s.snapshot().await;
    let run = &before.run_id;
    let targets = [
        "/v1/runs".to_string(),
        format!("/v1/runs/{run}/hooks"),
        format!("/v1/runs/{run}/cancel"),
        format!("/v1/hooks/{}", before.token),
        format!("/v1/hooks/{SINK_TOKEN}"),
        "/v1/signals/sig-1".to_string(),
    ];
    let content_types: [&[u8]; 4] = [
        b"application/json",
        b"text/plain",
        b"application/x-www-form-urlencoded",
        b"multipart/form-data; boundary=\xff",
    ];
    for target in &targets {
        for (what, body) in hostile_bodies() {
            // An empty body is a valid cancel request: it would cancel the real run.
            if what == "empty" && target.ends_with("/cancel") {
                continue;
            }
            // A signal or the sink hook takes any JSON payload.
            let any_json = target.contains("/signals/") || target.contains(SINK_TOKEN);
            let want = if any_json && (what == "wrong types" || what == "null") {
                Want::NoServerError
            } else {
                Want::ClientError
            };
            for ct in content_types {
                let r = send(
                    &s.addr,
                    &req("POST", target, &[("content-type", ct)], &body),
                )
                .await;
                expect(&r, want, &format!("POST {target} with {what}"));
            }
        }
    }
    // A webhook takes any body (as JSON, text or base64): never a 5xx.
    let hook = s.webhook_path().await;
    for (what, body) in hostile_bodies() {
        for method in ["POST", "PUT", "PATCH", "DELETE", "GET"] {
            let r = send(&s.addr, &req(method, &hook, &[], &body)).await;
            expect(
                &r,
                Want::NoServerError,
                &format!("{method} webhook with {what}"),
            );
        }
    }
    s.assert_untouched(&before).await;
}

#[tokio::test]
async fn wrong_methods_on_every_route() {
    let s = Server::start().await;
    let before = s.snapshot().await;
    for (method, template, _) in ROUTES {
        // The webhook URL answers any method.
        if template.starts_with("/.well-known/") {
            continue;
        }
        let path = template.replace("{id}", &before.run_id);
        let other = if *method == "GET" { "POST" } else { "GET" };
        for wrong in [
            other, "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO", "G3T",
        ] {
            // `GET /v1/runs` and `POST /v1/runs/{id}/hooks` exist beside their POST/GET.
            let exists = ROUTES.iter().any(|(m, t, _)| *m == wrong && t == template);
            if exists {
                continue;
            }
            let r = send(&s.addr, &req(wrong, &path, &[], b"{}")).await;
            expect(&r, Want::ClientError, &format!("{wrong} {template}"));
            assert_eq!(r.status, 405, "{wrong} {template}: {}", r.text());
        }
    }
    s.assert_untouched(&before).await;
}

#[tokio::test]
async fn hostile_queries() {
    let s = Server::start().await;
    let before = s.snapshot().await;
    let long = "w".repeat(5_000);
    for (query, want) in [
        ("limit=-1", Want::ClientError),
        ("limit=1e3", Want::ClientError),
        ("limit=99999999999999999999999999", Want::ClientError),
        ("limit=18446744073709551615", Want::NoServerError),
        ("limit=0x10", Want::ClientError),
        ("status=%00", Want::ClientError),
        ("status=running%27%20OR%201=1--", Want::ClientError),
        ("status=running&status=failed", Want::ClientError),
        ("workflow=%00", Want::ClientError),
        ("workflow=approval%00", Want::ClientError),
        (&format!("workflow={long}"), Want::ClientError),
        ("workflow=%27%20OR%201=1--", Want::NoServerError),
        ("workflow=%E2%80%AE", Want::NoServerError),
        ("workflow=%FF", Want::NoServerError),
        ("%zz=1&=&&", Want::NoServerError),
    ] {
        let r = send(&s.addr, &get_req(&format!("/v1/runs?{query}"))).await;
        expect(&r, want, &format!("GET /v1/runs?{query:.40}"));
    }
    let run = &before.run_id;
    for query in [
        "wait_ms=-1",
        "wait_ms=1e9",
        "wait_ms=%00",
        "wait_ms=99999999999999999999999",
    ] {
        let r = send(&s.addr, &get_req(&format!("/v1/runs/{run}?{query}"))).await;
        expect(&r, Want::ClientError, &format!("GET run ?{query}"));
    }
    s.assert_untouched(&before).await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let s = Server::start().await;
    let before = s.snapshot().await;
    let limit = s.limit;
    let run = &before.run_id;
    let hook = s.webhook_path().await;
    let targets = [
        ("/v1/runs".to_string(), limit + 64 * 1024),
        (format!("/v1/runs/{run}/hooks"), limit),
        (format!("/v1/runs/{run}/cancel"), limit),
        (format!("/v1/hooks/{}", before.token), limit),
        ("/v1/signals/sig-1".to_string(), limit),
        (hook, limit),
    ];
    for (target, max) in &targets {
        let body = vec![b' '; max + 1];
        let r = send(&s.addr, &post_req(target, &body)).await;
        expect(
            &r,
            Want::ClientError,
            &format!("POST {target} {} bytes", body.len()),
        );
        assert_eq!(r.status, 413, "{target}: {}", r.text());
        assert_eq!(r.code(), "payload_too_large");
        // The same size, chunked (no Content-Length to check up front).
        let r = send(&s.addr, &hostile_support::chunked_req(target, &body)).await;
        expect(&r, Want::ClientError, &format!("chunked POST {target}"));
        assert_eq!(r.status, 413, "{target} chunked: {}", r.text());
    }
    // A body that fits but whose JSON payload is over the engine's limit once parsed.
    let big = format!(
        r#"{{"workflow":"approval","input":{{"order_id":"{}"}}}}"#,
        "x".repeat(limit)
    );
    let r = send(&s.addr, &post_req("/v1/runs", big.as_bytes())).await;
    expect(&r, Want::ClientError, "start with an input over the limit");
    s.assert_untouched(&before).await;
}

#[tokio::test]
async fn idempotency_keys_and_headers() {
    let s = Server::start().await;
    let before = s.snapshot().await;
    let valid = br#"{"approved":true,"comment":"x"}"#;
    let real = format!("/v1/hooks/{}", before.token);
    // Keys no store should hold are refused before anything is looked up or written, even with
    // a payload the real run would accept.
    let too_long = "k".repeat(5_000);
    let r = send(
        &s.addr,
        &req(
            "POST",
            &real,
            &[("idempotency-key", too_long.as_bytes())],
            valid,
        ),
    )
    .await;
    expect(&r, Want::ClientError, "5,000-byte Idempotency-Key");
    s.assert_untouched(&before).await;

    // Odd but storable keys on a hook that accepts anything: accepted once, then idempotent.
    let sink = format!("/v1/hooks/{SINK_TOKEN}");
    let rlo = "\u{202E}key".as_bytes().to_vec();
    for key in [
        SQL_ISH.as_bytes().to_vec(),
        b"../../etc/passwd".to_vec(),
        b"\xff\xfe\x80".to_vec(),
        rlo,
        b"   ".to_vec(),
        b"\t".to_vec(),
    ] {
        let first = send(
            &s.addr,
            &req("POST", &sink, &[("idempotency-key", &key)], b"1"),
        )
        .await;
        expect(&first, Want::NoServerError, &format!("key {key:?}"));
        let again = send(
            &s.addr,
            &req("POST", &sink, &[("idempotency-key", &key)], b"1"),
        )
        .await;
        expect(&again, Want::NoServerError, &format!("key {key:?} again"));
        assert_eq!(first.status, again.status, "key {key:?}");
        assert_eq!(first.body, again.body, "key {key:?}");
    }

    // Oversized and hostile headers on every route.
    let big = "h".repeat(64 * 1024);
    for (method, template, body) in ROUTES.iter().filter(|r| r.1 != ENDLESS) {
        let path = template.replace("{id}", "no-such-id");
        let headers: [(&str, &[u8]); 6] = [
            ("x-big", big.as_bytes()),
            ("authorization", b"Bearer ' OR 1=1--"),
            ("content-type", b"application/json\xff"),
            ("x-rlo", "\u{202E}".as_bytes()),
            ("accept", b"../../etc/passwd"),
            ("cookie", b"a=\xff\xfe"),
        ];
        let r = send(&s.addr, &req(method, &path, &headers, body.as_bytes())).await;
        expect(
            &r,
            Want::NoServerError,
            &format!("{method} {template} with hostile headers"),
        );
    }
    s.assert_untouched(&before).await;
}

#[tokio::test]
async fn protocol_errors_hyper_answers_itself() {
    // These never reach the router: hyper refuses them while parsing with its own 4xx, whose
    // empty body the server rewrites as a JSON error (`src/protocol_errors.rs`; documented in
    // docs/guarantees.md). Checked here so a change in that list is noticed.
    let s = Server::start().await;
    let before = s.snapshot().await;
    let many: String = (0..200).map(|i| format!("x-h{i}: v\r\n")).collect();
    let huge = "h".repeat(1024 * 1024);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "NUL in the path",
            b"GET /v1/hooks/a\0b HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "raw invalid UTF-8 in the path",
            b"GET /v1/hooks/\xff HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "space in the path",
            b"GET /v1/hooks/a b HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
            400,
        ),
        ("not HTTP", b"HELLO\r\n\r\n".to_vec(), 400),
        (
            "bad header line",
            b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(),
            400,
        ),
        (
            "NUL in a header",
            b"GET /healthz HTTP/1.1\r\nx-a: a\0b\r\n\r\n".to_vec(),
            400,
        ),
        (
            "bad Content-Length",
            b"POST /v1/runs HTTP/1.1\r\ncontent-length: abc\r\n\r\n".to_vec(),
            400,
        ),
        (
            "two Content-Lengths",
            b"POST /v1/runs HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n{}".to_vec(),
            400,
        ),
        (
            "200 headers",
            format!("GET /healthz HTTP/1.1\r\n{many}\r\n").into_bytes(),
            431,
        ),
        (
            "a 70 KiB URI",
            format!(
                "GET /v1/hooks/{} HTTP/1.1\r\nhost: x\r\n\r\n",
                "u".repeat(70 * 1024)
            )
            .into_bytes(),
            414,
        ),
        (
            "a 1 MiB header",
            format!("GET /healthz HTTP/1.1\r\nx-big: {huge}\r\n\r\n").into_bytes(),
            431,
        ),
    ];
    for (what, raw, status) in cases {
        let r = send(&s.addr, &raw).await;
        assert_eq!(r.status, status, "{what}: {}", r.text());
        // hyper's own empty answer is rewritten into the API's JSON error shape.
        let json: serde_json::Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("{what}: not a JSON body ({e}): {:?}", r.text()));
        let code = json["error"]["code"].as_str().unwrap_or_default();
        let want = match status {
            414 => "uri_too_long",
            431 => "headers_too_large",
            _ => "bad_request",
        };
        assert_eq!(code, want, "{what}: {json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: a message says what to do: {json}"
        );
    }
    // A bad chunked body does reach the handler, as a body read error: JSON 400.
    let bad_chunk = b"POST /v1/signals/s HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n";
    let r = send(&s.addr, bad_chunk).await;
    expect(&r, Want::ClientError, "bad chunk size");
    s.assert_untouched(&before).await;
}
