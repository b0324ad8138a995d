//! Slow and idle clients against a real `assent serve`: a request whose headers never
//! finish, or whose body stops coming, is cut off, and connections beyond the cap wait
//! for a slot instead of taking the process's descriptors.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Server, free_port};

fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> (Server, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_assent"))
        .arg("serve")
        .env(
            "ASSENT_DATABASE_URL",
            format!("sqlite://{}/slow.db", dir.display()),
        )
        .env("ASSENT_BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "error")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if get_healthz(port).is_some() {
            return (server, port);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("assent serve did not start");
}

/// One whole request on a fresh connection: the status line, if an answer came.
fn get_healthz(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.lines().next().map(str::to_string)
}

/// Waits until the server ends the connection (EOF or reset), or the bound passes: the
/// bound only keeps a server that never does from hanging the suite.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an error answer (408, 400) before the close is fine
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn half_sent_headers_and_stalled_bodies_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, port) = start(
        dir.path(),
        &[("ASSENT_HEADER_TIMEOUT", "1"), ("ASSENT_BODY_TIMEOUT", "1")],
    );
    let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert!(closed_by_server(&mut half), "half-sent headers kept open");

    // Kept alive after an answer, then silent: closed as idle.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(closed_by_server(&mut idle), "an idle connection kept open");

    let mut stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stalled
        .write_all(
            b"POST /webhooks/twilio/sms HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nFrom=%2B1",
        )
        .unwrap();
    assert!(closed_by_server(&mut stalled), "a stalled body kept open");
    assert_eq!(get_healthz(port).as_deref(), Some("HTTP/1.1 200 OK"));
}

#[test]
fn connections_beyond_the_cap_wait_for_a_slot() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, port) = start(
        dir.path(),
        &[
            ("ASSENT_MAX_CONNECTIONS", "2"),
            ("ASSENT_HEADER_TIMEOUT", "600"),
        ],
    );
    // Two slow clients hold both slots.
    let mut holders: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    // A third is accepted by the kernel but not served while they hold on.
    let mut third = TcpStream::connect(("127.0.0.1", port)).unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        third.read(&mut buf).is_err(),
        "served beyond the connection cap"
    );
    // One slow client leaves: its slot goes to the third.
    holders.pop();
    third
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut out = String::new();
    third.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
}
