//! A loopback-only HTTP server for slice pixels, the alternative transport to the `dokuei://`
//! URI scheme: bound to 127.0.0.1 on a port the OS picks, and answering only paths that start
//! with a secret made at launch (`/{secret}/slice/…`), so another local program or a web page
//! cannot read the study. GET only, HTTP/1.1 with keep-alive, one thread per connection.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

/// Where the server listens and the secret its paths start with.
#[derive(Debug, Clone, serde::Serialize, specta::Type)]
pub struct PixelServer {
    pub port: u16,
    pub secret: String,
}

/// Starts the server; `serve(path)` answers a path (without the secret) with
/// (status, content type, body).
pub fn start<F>(serve: F) -> std::io::Result<PixelServer>
where
    F: Fn(&str) -> (u16, &'static str, Vec<u8>) + Send + Sync + Clone + 'static,
{
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let port = listener.local_addr()?.port();
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let prefix = format!("/{secret}/");
    std::thread::Builder::new()
        .name("dokuei-pixels".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let (serve, prefix) = (serve.clone(), prefix.clone());
                let _ = std::thread::Builder::new()
                    .name("dokuei-pixels-conn".into())
                    .spawn(move || {
                        let _ = connection(stream, &prefix, &serve);
                    });
            }
        })?;
    Ok(PixelServer { port, secret })
}

/// The longest request or header line read; a longer one ends the connection.
const MAX_LINE: u64 = 8 * 1024;

/// One CRLF-terminated line, or None at the end of the stream or when the line is too long.
fn read_line<R: BufRead>(reader: &mut R) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    let n = std::io::Read::take(&mut *reader, MAX_LINE).read_line(&mut line)?;
    Ok((n > 0 && line.ends_with('\n')).then_some(line))
}

fn connection<F>(stream: TcpStream, prefix: &str, serve: &F) -> std::io::Result<()>
where
    F: Fn(&str) -> (u16, &'static str, Vec<u8>),
{
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let Some(line) = read_line(&mut reader)? else {
            return Ok(());
        };
        let mut close = false;
        loop {
            let Some(header) = read_line(&mut reader)? else {
                return Ok(());
            };
            let h = header.trim_end();
            if h.is_empty() {
                break;
            }
            if h.to_ascii_lowercase().starts_with("connection:")
                && h.to_ascii_lowercase().contains("close")
            {
                close = true;
            }
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (status, kind, body) = match (method, target.strip_prefix(prefix)) {
            ("GET", Some(path)) => serve(path),
            ("OPTIONS", Some(_)) => (204, "text/plain", Vec::new()),
            (_, None) => (404, "text/plain; charset=utf-8", b"not found".to_vec()),
            _ => (405, "text/plain; charset=utf-8", b"GET only".to_vec()),
        };
        // Anything but GET or OPTIONS may carry a body this server does not read: end there.
        close |= !matches!(method, "GET" | "OPTIONS");
        let reason = match status {
            200 => "OK",
            204 => "No Content",
            404 => "Not Found",
            405 => "Method Not Allowed",
            _ => "Error",
        };
        write!(
            out,
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
             Access-Control-Allow-Origin: *\r\nCache-Control: no-store\r\n\
             Connection: {}\r\n\r\n",
            body.len(),
            if close { "close" } else { "keep-alive" }
        )?;
        out.write_all(&body)?;
        out.flush()?;
        if close {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn server() -> PixelServer {
        start(|path: &str| match path {
            "slice/1/0/0/7" => (200, "application/octet-stream", vec![7u8; 300_000]),
            _ => (
                404,
                "text/plain; charset=utf-8",
                format!("no `{path}`").into_bytes(),
            ),
        })
        .expect("the server starts")
    }

    /// Sends `request` and reads one response: (status line, body).
    fn exchange(stream: &mut TcpStream, request: &str) -> (String, Vec<u8>) {
        stream.write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let status = read_line(&mut reader).unwrap().unwrap();
        let mut length = 0usize;
        loop {
            let h = read_line(&mut reader).unwrap().unwrap();
            if h.trim_end().is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).unwrap();
        (status.trim_end().to_owned(), body)
    }

    #[test]
    fn answers_only_under_its_secret_and_keeps_the_connection() {
        let s = server();
        assert_eq!(s.secret.len(), 48, "a 192-bit secret in hex");
        assert_ne!(s.secret, server().secret, "a new secret per start");
        let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        let (status, body) = exchange(&mut c, &get(&format!("/{}/slice/1/0/0/7", s.secret)));
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, vec![7u8; 300_000]);
        // The same connection serves the next request (keep-alive), and errors pass through.
        let (status, body) = exchange(&mut c, &get(&format!("/{}/slice/1/0/0/8", s.secret)));
        assert_eq!(status, "HTTP/1.1 404 Not Found");
        assert_eq!(body, b"no `slice/1/0/0/8`");
        // Without the secret, or with another one, nothing is served.
        let (status, _) = exchange(&mut c, &get("/slice/1/0/0/7"));
        assert_eq!(status, "HTTP/1.1 404 Not Found");
        let wrong = "0".repeat(48);
        let (status, body) = exchange(&mut c, &get(&format!("/{wrong}/slice/1/0/0/7")));
        assert_eq!(status, "HTTP/1.1 404 Not Found");
        assert_eq!(body, b"not found");
    }

    #[test]
    fn refuses_other_methods_and_overlong_lines() {
        let s = server();
        let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        let post = format!(
            "POST /{}/slice/1/0/0/7 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            s.secret
        );
        let (status, _) = exchange(&mut c, &post);
        assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert!(
            rest.is_empty(),
            "the connection ends after a refused method"
        );
        // A request line longer than 8 KiB ends the connection without an answer.
        let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        c.write_all(format!("GET /{} HTTP/1.1\r\n", "a".repeat(20_000)).as_bytes())
            .unwrap();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        assert!(rest.is_empty());
    }
}
