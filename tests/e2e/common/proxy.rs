//! A TCP proxy between a server and its database that a test can switch: forward
//! (the database is there), refuse (the database is down: open connections are cut,
//! new ones closed at once) or stall (the database hangs: connections are accepted and
//! never answered). The database itself stays up for the other tests.

use std::net::SocketAddr;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Forward,
    Refuse,
    Stall,
}

pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free local port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, watch) = watch::channel(Mode::Forward);
        let task = tokio::spawn(accept_loop(listener, upstream, watch));
        Proxy { addr, mode, task }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// `url` (of the proxied database) with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let user = authority
            .rsplit_once('@')
            .map_or(String::new(), |(user, _)| format!("{user}@"));
        format!("{scheme}://{user}{}{path}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `host:port` of a database URL.
pub fn upstream_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, a)| a)
        .to_owned()
}

async fn accept_loop(listener: TcpListener, upstream: String, mode: watch::Receiver<Mode>) {
    while let Ok((client, _)) = listener.accept().await {
        let current = *mode.borrow();
        let mut mode = mode.clone();
        match current {
            // Closing at once is what a client sees of a database that is down.
            Mode::Refuse => drop(client),
            Mode::Stall => {
                tokio::spawn(async move {
                    // Hold the socket, silent, until the test changes its mind.
                    let _ = mode.wait_for(|m| *m != Mode::Stall).await;
                    drop(client);
                });
            }
            Mode::Forward => {
                let upstream = upstream.clone();
                tokio::spawn(async move { forward(client, &upstream, &mut mode).await });
            }
        }
    }
}

async fn forward(mut client: TcpStream, upstream: &str, mode: &mut watch::Receiver<Mode>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = copy_bidirectional(&mut client, &mut server) => {}
        // Any change cuts the connection, as a crashed or unplugged database would.
        _ = mode.wait_for(|m| *m != Mode::Forward) => {}
    }
}
