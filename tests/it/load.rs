//! A steady load of real HTTP requests (`GET /`, one connection each) on a few client threads,
//! over TCP or a unix socket, and what it saw: answered, refused, failed (issue 20).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;

/// What the load saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stats {
    pub(crate) ok: u64,
    /// connect(2) got ECONNREFUSED.
    pub(crate) refused: u64,
    /// Connected, but no complete 200 answer (reset, EOF, timeout).
    pub(crate) failed: Vec<String>,
    /// The pids that answered, in order of first answer.
    pub(crate) pids: Vec<String>,
}

/// Clients sending `GET /` one after another on a few threads until stopped.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<Stats>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    pub(crate) fn start(target: impl Into<Target>, clients: usize) -> Load {
        let target = target.into();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(Stats::default()));
        let threads = (0..clients)
            .map(|_| {
                let (stop, stats, target) = (stop.clone(), stats.clone(), target.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let result = request_to(&target);
                        let mut s = stats.lock().unwrap();
                        match result {
                            Ok(pid) => {
                                s.ok += 1;
                                if !s.pids.contains(&pid) {
                                    s.pids.push(pid);
                                }
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                                s.refused += 1
                            }
                            Err(e) => s.failed.push(e.to_string()),
                        }
                        drop(s);
                        std::thread::sleep(Duration::from_millis(2));
                    }
                })
            })
            .collect();
        Load {
            stop,
            stats,
            threads,
        }
    }

    pub(crate) fn now(&self) -> Stats {
        self.stats.lock().unwrap().clone()
    }

    /// Waits until at least `n` more requests were answered than `since`.
    pub(crate) fn wait_served(&self, since: u64, n: u64) {
        let ok = wait_until("requests served", || self.now().ok >= since + n);
        assert!(ok, "the load was not served: {:?}", self.now());
    }

    pub(crate) fn finish(self) -> Stats {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let stats = self.stats.lock().unwrap().clone();
        stats
    }
}

/// Where the load connects: a TCP address or a unix socket's path.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl From<SocketAddr> for Target {
    fn from(addr: SocketAddr) -> Target {
        Target::Tcp(addr)
    }
}

impl From<PathBuf> for Target {
    fn from(path: PathBuf) -> Target {
        Target::Unix(path)
    }
}

/// One `GET /`: the pid that answered.
pub(crate) fn request(target: impl Into<Target>) -> std::io::Result<String> {
    request_to(&target.into())
}

fn request_to(target: &Target) -> std::io::Result<String> {
    let mut answer = String::new();
    match target {
        Target::Tcp(addr) => exchange(TcpStream::connect(addr)?, &mut answer)?,
        Target::Unix(path) => exchange(UnixStream::connect(path)?, &mut answer)?,
    }
    match (answer.starts_with("HTTP/1.1 200 OK"), answer.find("pid=")) {
        (true, Some(at)) => Ok(answer[at + 4..].trim().to_string()),
        _ => Err(std::io::Error::other(format!(
            "incomplete answer {answer:?}"
        ))),
    }
}

fn exchange(mut stream: impl Read + Write + Timeout, answer: &mut String) -> std::io::Result<()> {
    stream.read_timeout(Duration::from_secs(10))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")?;
    stream.read_to_string(answer)?;
    Ok(())
}

trait Timeout {
    fn read_timeout(&self, t: Duration) -> std::io::Result<()>;
}

impl Timeout for TcpStream {
    fn read_timeout(&self, t: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(t))
    }
}

impl Timeout for UnixStream {
    fn read_timeout(&self, t: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(t))
    }
}
