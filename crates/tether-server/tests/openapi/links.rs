//! Resume links: made behind the API token (a payload the hook refuses, then one it takes),
//! then opened and used once without it, for the document check of `main.rs`.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{code, first_hook, start, wait, Checker};

/// A link made for an approval, its page, a forged link, its one use and the second refused.
pub(crate) async fn exercise(c: &mut Checker) {
    let run2 = start(c, "approval", json!({"order_id": "o-2"})).await;
    let token2 = first_hook(c, &run2).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let links = "/v1/hooks/{token}/links";
    let create = format!("/v1/hooks/{token2}/links");
    let a = c
        .post(links, &create, json!({"payload": {"approved": "yes"}}))
        .await;
    assert_eq!(code(&a), "invalid_payload");
    let a = c
        .post(
            links,
            &create,
            json!({"payload": {"approved": true, "comment": "ok"}, "label": "Approve o-2?"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let url = a.json.as_ref().unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let link = &url[url.find("/l/").unwrap()..];
    let a = c.call_as(None, Method::GET, "/l/{link}", link, None).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = c
        .call_as(None, Method::GET, "/l/{link}", "/l/k1.nope.nope", None)
        .await;
    assert_eq!(code(&a), "link_invalid");
    let a = c.call_as(None, Method::POST, "/l/{link}", link, None).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = c.call_as(None, Method::POST, "/l/{link}", link, None).await;
    assert_eq!((a.status, code(&a)), (StatusCode::GONE, "link_used"));
    let done = wait(c, &run2).await;
    assert_eq!(done["status"], "completed", "{done}");
}
