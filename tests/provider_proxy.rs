//! Provider calls honour the standard proxy variables (corporate networks):
//! with `HTTP_PROXY` set they go through the proxy, with the target in
//! `NO_PROXY` they do not. The emulator speaks plain HTTP, so a small
//! absolute-form HTTP proxy, written here, is enough to see the variable
//! used. The proxy forwards one request per connection and records the
//! request line it was sent.
//!
//! This binary holds one test: it sets process environment variables,
//! which no other thread of this process reads meanwhile.

#[path = "support/emulator.rs"]
mod emulator;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudrotate::providers::huaweicloud::client::{HuaweiClient, HuaweiConfig};
use cloudrotate::providers::{ConnectionOptions, Credentials, RetryPolicy};
use emulator::{Emulator, fixture};

/// The request lines the proxy received.
type Seen = Arc<Mutex<Vec<String>>>;

/// Starts the proxy on a free loopback port: `(address, seen)`.
fn start_proxy() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let record = record.clone();
            std::thread::spawn(move || forward(client, &record));
        }
    });
    (address, seen)
}

/// Reads one absolute-form request, sends it on in origin form with
/// `Connection: close`, and copies the answer back.
fn forward(client: TcpStream, seen: &Seen) {
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    seen.lock().unwrap().push(request_line.trim().to_owned());
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap(), parts.next().unwrap());
    let rest = target
        .strip_prefix("http://")
        .expect("an absolute-form target");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
        if !lower.starts_with("connection:") && !lower.starts_with("proxy-connection:") {
            head.push_str(&line);
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let mut upstream = TcpStream::connect(authority).unwrap();
    upstream.write_all(head.as_bytes()).unwrap();
    upstream.write_all(&body).unwrap();
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer).unwrap();
    let mut client = client;
    client.write_all(&answer).unwrap();
}

/// A DCS client of the emulator, built now (it reads the proxy variables
/// when built).
fn dcs_client(emu: &Emulator) -> HuaweiClient {
    let mut options = ConnectionOptions::new("cn-north-4");
    options.endpoint = Some(emu.url.clone());
    options.requests_per_second = None;
    HuaweiClient::new(HuaweiConfig {
        credentials: Credentials::new(fixture::HW_AK, fixture::HW_SK),
        options,
        project_id: fixture::PROJECT.to_owned(),
        domain_id: None,
    })
    .unwrap()
    .with_retry_policy(RetryPolicy::none())
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn provider_calls_go_through_http_proxy_unless_no_proxy_names_the_host() {
    let emu = Emulator::start();
    emu.seed(fixture::seed());
    let (proxy, seen) = start_proxy();
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "http_proxy",
        "no_proxy",
    ] {
        // SAFETY: the only test of this binary; nothing else reads the
        // environment while it changes.
        unsafe { std::env::remove_var(name) };
    }
    // SAFETY: as above.
    unsafe {
        std::env::set_var("HTTP_PROXY", &proxy);
        std::env::remove_var("NO_PROXY");
    }
    let through_proxy = dcs_client(&emu);
    block_on(through_proxy.dcs().show_instance("dcs-1")).expect("a call through the proxy");
    let lines = seen.lock().unwrap().clone();
    let expected = format!(
        "GET {}/v2/{}/instances/dcs-1 HTTP/1.1",
        emu.url,
        fixture::PROJECT
    );
    assert_eq!(lines, vec![expected], "the call went through the proxy");

    // SAFETY: as above.
    unsafe { std::env::set_var("NO_PROXY", "127.0.0.1") };
    let direct = dcs_client(&emu);
    block_on(direct.dcs().show_instance("dcs-1")).expect("a direct call");
    assert_eq!(seen.lock().unwrap().len(), 1, "NO_PROXY bypasses the proxy");
    assert_eq!(emu.calls("dcs.ShowInstance"), 2);
}
