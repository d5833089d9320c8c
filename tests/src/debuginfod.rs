//! A real debuginfod server (Debian's `debuginfod`) on the loopback
//! address, serving the debug files in one directory, stopped on drop.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct DebuginfodServer {
    child: Child,
    port: u16,
    pub url: String,
}

impl DebuginfodServer {
    /// Starts a server indexing `dir` (its database in `dir` too) and waits
    /// until it serves `build_id`'s debug file.
    pub fn start(dir: &Path, build_id: &str) -> DebuginfodServer {
        let port = free_port();
        let child = Command::new("debuginfod")
            .args(["-p", &port.to_string(), "-F"])
            .arg(dir)
            .arg("-d")
            .arg(dir.join("debuginfod.sqlite"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start debuginfod (Debian package debuginfod): {e}"));
        let server = DebuginfodServer { child, port, url: format!("http://127.0.0.1:{port}") };
        let started = Instant::now();
        while !server.serves(build_id) {
            assert!(started.elapsed() < Duration::from_secs(60), "debuginfod did not serve {build_id} within 60 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    /// GET (the server answers nothing else); only the status line is read.
    fn serves(&self, build_id: &str) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request =
            format!("GET /buildid/{build_id}/debuginfo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        let mut status = [0u8; 12];
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_exact(&mut status).is_ok()
            && status.ends_with(b" 200")
    }
}

impl Drop for DebuginfodServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind a loopback port").port()
}

/// The hex build-id of an ELF file (`readelf -n`).
pub fn build_id_of(path: &Path) -> String {
    let out = Command::new("readelf").arg("-n").arg(path).output().expect("run readelf (binutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|line| line.trim().strip_prefix("Build ID: "))
        .unwrap_or_else(|| panic!("{} has no build-id", path.display()))
        .trim()
        .to_owned()
}
