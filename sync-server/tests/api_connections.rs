//! Connections under the server's timeouts and cap, over real sockets: a
//! client trickling its headers is cut off, an idle kept-alive connection
//! is closed (a long answer is not idle), a body trickled too slowly is
//! answered 408 in the one error shape, more connections than the cap make
//! room for `/health` (or are refused when all are busy), and the real
//! binary under a low open-file limit still answers `/health` with more
//! idle sockets open than it has descriptors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::task::JoinHandle;

fn addr_of(server: &TestServer) -> SocketAddr {
    server.url.trim_start_matches("http://").parse().unwrap()
}

/// Everything the server sends until it closes the connection.
fn read_until_closed(mut reader: tokio::net::tcp::OwnedReadHalf) -> JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let mut answer = Vec::new();
        // A reset is a close too.
        let _ = reader.read_to_end(&mut answer).await;
        answer
    })
}

/// Sends `piece` every quarter second, `times` times, unless the server
/// closed the connection first (`closed` finished); whether it did.
async fn trickle(
    writer: &mut OwnedWriteHalf,
    closed: &JoinHandle<Vec<u8>>,
    piece: &[u8],
    times: usize,
) -> bool {
    for _ in 0..times {
        if closed.is_finished() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let _ = writer.write_all(piece).await;
    }
    closed.is_finished()
}

/// (status, headers, body) of one HTTP/1.1 answer as raw bytes; status 0
/// when there is no whole answer.
fn parse_answer(raw: &[u8]) -> (u16, String, serde_json::Value) {
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return (0, text.into_owned(), serde_json::Value::Null);
    };
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    (status, head.to_ascii_lowercase(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_headers_is_cut_off_before_it_finishes() {
    let server = start_with(
        Db::Sqlite,
        |c| c.connections.header_timeout_secs = 1,
        |_| axum::Router::new(),
    )
    .await;
    let (reader, mut writer) = TcpStream::connect(addr_of(&server))
        .await
        .unwrap()
        .into_split();
    let closed = read_until_closed(reader);
    writer
        .write_all(b"GET /health HTTP/1.1\r\nhost: gate\r\n")
        .await
        .unwrap();
    // Forty header lines over ten seconds: ten times the header timeout.
    let cut_off = trickle(&mut writer, &closed, b"x-slow: still-coming\r\n", 40).await;
    assert!(cut_off, "the server still waits for headers after 10 s");
    assert!(closed.await.unwrap().is_empty(), "no answer to half a head");

    // Other clients are served meanwhile and after.
    let (status, body, _) = server
        .call(reqwest::Method::GET, "/health", None, None)
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_but_a_long_answer_is_not_idle() {
    let server = start_with(
        Db::Sqlite,
        |c| {
            c.connections.idle_timeout_secs = 1;
            c.connections.header_timeout_secs = 1;
        },
        |_| {
            axum::Router::new().route(
                "/test/slow",
                axum::routing::get(|| async {
                    // Answering takes three idle timeouts (like a long poll).
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    "done"
                }),
            )
        },
    )
    .await;
    let (reader, mut writer) = TcpStream::connect(addr_of(&server))
        .await
        .unwrap()
        .into_split();
    let closed = read_until_closed(reader);
    writer
        .write_all(b"GET /test/slow HTTP/1.1\r\nhost: gate\r\n\r\n")
        .await
        .unwrap();
    // Kept alive after the answer, then closed for idleness; the guard
    // only keeps a broken server from hanging the test.
    let answer = tokio::time::timeout(Duration::from_secs(30), closed)
        .await
        .expect("the idle connection was never closed")
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("done"), "the long answer came whole: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_too_slowly_is_answered_408_as_json() {
    let server = start_with(
        Db::Sqlite,
        |c| c.connections.body_timeout_secs = 1,
        |_| axum::Router::new(),
    )
    .await;
    let (reader, mut writer) = TcpStream::connect(addr_of(&server))
        .await
        .unwrap()
        .into_split();
    let closed = read_until_closed(reader);
    writer
        .write_all(
            b"POST /api/auth/nonce HTTP/1.1\r\nhost: gate\r\ncontent-type: application/json\r\n\
              content-length: 200\r\n\r\n{\"wallet\":",
        )
        .await
        .unwrap();
    let answered = trickle(&mut writer, &closed, b" ", 40).await;
    assert!(answered, "the server still waits for the body after 10 s");
    let (status, head, body) = parse_answer(&closed.await.unwrap());
    assert_eq!(status, 408, "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert_eq!(body["error"], "request_timeout", "{body}");
    assert!(body["message"].as_str().unwrap().contains("1 s"), "{body}");

    // A body sent at once within the same limit is fine.
    let (status, body, _) = server
        .call(
            reqwest::Method::POST,
            "/api/auth/nonce",
            None,
            Some(serde_json::json!({ "wallet": address(&wallet(3)) })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_cap_waiting_connections_make_room_and_busy_ones_refuse_newcomers() {
    let server = start_with(
        Db::Sqlite,
        |c| {
            c.connections.max_connections = 3;
            c.connections.header_timeout_secs = 600;
            c.connections.idle_timeout_secs = 600;
            c.connections.body_timeout_secs = 600;
        },
        |_| axum::Router::new(),
    )
    .await;
    let addr = addr_of(&server);

    // Five sockets that say nothing: more than the cap.
    let mut silent = Vec::new();
    for _ in 0..5 {
        let (reader, writer) = TcpStream::connect(addr).await.unwrap().into_split();
        silent.push((read_until_closed(reader), writer));
        // Accepted one after the other, so "longest waiting" is defined.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body, _) = server
        .call(reqwest::Method::GET, "/health", None, None)
        .await;
    assert_eq!(status, 200, "{body}");
    // The oldest silent ones were closed to make room; the newest stays.
    let (first, _) = silent.remove(0);
    let first = tokio::time::timeout(Duration::from_secs(30), first)
        .await
        .expect("the oldest silent connection was never closed")
        .unwrap();
    assert!(first.is_empty());
    assert!(!silent.last().unwrap().0.is_finished());
    drop(silent);

    // Three uploads in progress: every connection is busy answering. An
    // upload whose head the server had not read yet may itself be closed
    // to make room; it is started again until three are under way.
    let start_upload = || async move {
        let (reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
        writer
            .write_all(
                b"POST /api/auth/nonce HTTP/1.1\r\nhost: gate\r\ncontent-type: application/json\r\n\
                  content-length: 100\r\n\r\n{",
            )
            .await
            .unwrap();
        (read_until_closed(reader), writer)
    };
    let mut busy = Vec::new();
    for _ in 0..3 {
        busy.push(start_upload().await);
    }
    let mut refused = None;
    for _ in 0..100 {
        for upload in &mut busy {
            if upload.0.is_finished() {
                *upload = start_upload().await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut newcomer = TcpStream::connect(addr).await.unwrap();
        newcomer
            .write_all(b"GET /health HTTP/1.1\r\nhost: gate\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(10), newcomer.read_to_end(&mut answer)).await;
        let (status, head, body) = parse_answer(&answer);
        if status == 503 {
            refused = Some((head, body));
            break;
        }
    }
    let (head, body) = refused.expect("a newcomer past a cap of busy connections is refused");
    assert!(head.contains("retry-after: 1"), "{head}");
    assert_eq!(body["error"], "overloaded", "{body}");

    // One upload gives up: its place serves /health again.
    drop(busy.pop());
    let mut served = false;
    for _ in 0..100 {
        // Until the place is free, the refusal may come before the request
        // went out, which the client reports as an error.
        if let Ok(r) = reqwest::get(format!("{}/health", server.url)).await
            && r.status() == 200
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "a freed place was never used");
}

/// The real binary, started under `prlimit` with few file descriptors.
struct Limited {
    child: Child,
    url: String,
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_low_file_limit_idle_sockets_do_not_starve_health() {
    const FILES: usize = 256;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("sync.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\n\
             database_url = \"sqlite://{d}/sync.db\"\n\
             server_key_file = \"{d}/server-key\"\n\
             [connections]\n\
             header_timeout_secs = 600\n\
             idle_timeout_secs = 600\n\
             [chain]\n\
             embedded_file = \"{d}/chain.sqlite\"\n\
             authority_key_file = \"{d}/authority.json\"\n\
             issuer_key_file = \"{d}/issuer-key\"\n\
             [replay]\n\
             enabled = false\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let child = Command::new("prlimit")
        .arg(format!("--nofile={FILES}:{FILES}"))
        .arg(env!("CARGO_BIN_EXE_sync-server"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prlimit (util-linux) runs the server");
    let server = Limited {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut up = false;
    for _ in 0..1200 {
        if let Ok(r) = http.get(format!("{}/health", server.url)).send().await
            && r.status().is_success()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server did not come up");

    // Twice as many idle sockets as the server may have files, each
    // having sent nothing, held open by this test.
    let mut idle = Vec::new();
    for _ in 0..2 * FILES {
        idle.push(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    }
    let health = http
        .get(format!("{}/health", server.url))
        .send()
        .await
        .expect("/health answers with every descriptor's worth of idle sockets open");
    assert_eq!(health.status(), 200);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["database"], true, "{body}");
    drop(idle);
}
