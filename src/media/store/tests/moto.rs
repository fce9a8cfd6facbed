//! A real S3-compatible server for the tests: moto's `moto_server`, installed from PyPI by
//! `scripts/install-test-deps.sh`, started on a free loopback port and stopped on drop.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Exit status of a shell or pyenv shim asked for a command it cannot find.
const COMMAND_NOT_FOUND: i32 = 127;

pub struct MotoServer {
    child: Child,
    port: u16,
}

impl MotoServer {
    /// Starts the server, or returns `None` when `moto_server` is not installed, in which case
    /// the caller skips its test. Under CI (`CI` set) a missing server fails instead, so that a
    /// broken install cannot pass as a skipped test.
    pub fn start() -> Option<Self> {
        let port = free_port();
        let spawned = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut server = match spawned {
            Ok(child) => Self { child, port },
            Err(err) if err.kind() == ErrorKind::NotFound => return missing(),
            Err(err) => panic!("cannot start moto_server: {err}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                if status.code() == Some(COMMAND_NOT_FOUND) {
                    return missing();
                }
                panic!("moto_server exited with {status} before listening on port {port}");
            }
            assert!(Instant::now() < deadline, "moto_server did not listen on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(server)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn missing() -> Option<MotoServer> {
    let hint = "moto_server is not installed; run scripts/install-test-deps.sh";
    assert!(std::env::var_os("CI").is_none(), "{hint}");
    eprintln!("SKIPPED: {hint}");
    None
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().expect("local address").port()
}
