//! A fault-injecting HTTP proxy for the object-store tests (std threads, 127.0.0.1, one
//! request per connection): between filex and the local S3 server it passes each request
//! on, or resets, answers 500 or 503 SlowDown, stalls, or damages the body, as a [`Plan`]
//! decides from the request. It does not speak TLS or keep connections alive, and it records
//! only the requests it faulted.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// Close the connection after the request head, before any answer.
    Reset,
    /// Answer 500 InternalError.
    Error500,
    /// Answer 503 SlowDown.
    SlowDown,
    /// Read the request, answer nothing for a while, then close.
    Stall,
    /// Flip one byte of the body on its way to the server.
    Corrupt,
}

/// What the plan sees of a request.
pub struct ReqInfo<'a> {
    /// 0 for the first request the proxy accepted, counting every request.
    pub index: usize,
    pub method: &'a str,
    /// The request target (path and query).
    pub target: &'a str,
    /// The request's `Content-Length`.
    pub body_len: usize,
}

/// Decides the fault of each request; called from the proxy's threads.
pub type Plan = dyn Fn(&ReqInfo<'_>) -> Fault + Send + Sync;

/// A running proxy; dropping it stops accepting.
pub struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<(String, Fault)>>>,
    accept: Option<thread::JoinHandle<()>>,
}

/// How long a [`Fault::Stall`] holds the request before closing.
pub const STALL: Duration = Duration::from_secs(4);

impl Proxy {
    /// Listens on `127.0.0.1:0`, forwarding to `upstream` (`http://host:port`) what `plan`
    /// lets pass.
    pub fn start(upstream: &str, plan: Arc<Plan>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let counter = Arc::new(AtomicUsize::new(0));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let (stop2, log2) = (stop.clone(), log.clone());
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (plan, log, counter, upstream) = (
                    plan.clone(),
                    log2.clone(),
                    counter.clone(),
                    upstream.clone(),
                );
                thread::spawn(move || {
                    let _ = serve(conn, &upstream, plan.as_ref(), &log, &counter);
                });
            }
        });
        Proxy {
            addr,
            stop,
            log,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request faulted so far (`METHOD target`, fault), in order.
    pub fn faults(&self) -> Vec<(String, Fault)> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads until the end of the head; returns (head, bytes read past it).
fn read_head(s: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Ok(Some((String::from_utf8_lossy(&buf).into_owned(), rest)));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 1 << 20 {
            return Ok(None);
        }
    }
}

fn header_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Rewrites a head so the peer closes after this message.
fn with_close(head: &str) -> String {
    let mut out = String::new();
    for (i, line) in head.trim_end_matches("\r\n").split("\r\n").enumerate() {
        if i > 0 && line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

fn error_answer(status: &str, code: &str) -> String {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn serve(
    mut client: TcpStream,
    upstream: &str,
    plan: &Plan,
    log: &Mutex<Vec<(String, Fault)>>,
    counter: &AtomicUsize,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let Some((head, mut body)) = read_head(&mut client)? else {
        return Ok(());
    };
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let len: usize = header_value(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let index = counter.fetch_add(1, Ordering::SeqCst);
    let fault = plan(&ReqInfo {
        index,
        method: &method,
        target: &target,
        body_len: len,
    });
    if fault != Fault::Pass {
        if let Ok(mut l) = log.lock() {
            l.push((format!("{method} {target}"), fault));
        }
    }
    if fault == Fault::Reset {
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    let mut chunk = [0u8; 64 << 10];
    while body.len() < len {
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    match fault {
        Fault::Error500 => {
            client
                .write_all(error_answer("500 Internal Server Error", "InternalError").as_bytes())?;
            return Ok(());
        }
        Fault::SlowDown => {
            client.write_all(error_answer("503 Slow Down", "SlowDown").as_bytes())?;
            return Ok(());
        }
        Fault::Stall => {
            thread::sleep(STALL);
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        Fault::Corrupt if !body.is_empty() => {
            let i = body.len() / 2;
            body[i] ^= 0x5a;
        }
        _ => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    up.write_all(with_close(&head).as_bytes())?;
    up.write_all(&body)?;
    let Some((rhead, rest)) = read_head(&mut up)? else {
        return Ok(());
    };
    client.write_all(with_close(&rhead).as_bytes())?;
    client.write_all(&rest)?;
    loop {
        let n = up.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        client.write_all(&chunk[..n])?;
    }
    Ok(())
}
