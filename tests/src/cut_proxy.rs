//! A TCP proxy in front of an upstream that can break every connection at once, as a killed
//! upstream process does, while calls are provably in flight.
//!
//! [`CutProxy::hold`] stops forwarding what the client sends (the bytes stay unread in the
//! kernel's buffer, so the client's calls are in flight and unanswered);
//! [`CutProxy::has_held_data`] says a held connection has something waiting;
//! [`CutProxy::kill`] closes the listener and every connection (unread data makes the kernel
//! answer with RST, as for a killed process); [`CutProxy::restart`] listens again on the same
//! port, passing traffic through.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub struct CutProxy {
    addr: SocketAddr,
    target: SocketAddr,
    shared: Arc<Shared>,
    tasks: Mutex<JoinSet<()>>,
}

#[derive(Default)]
struct Shared {
    holding: AtomicBool,
    held_data: AtomicBool,
    conns: Mutex<JoinSet<()>>,
}

impl CutProxy {
    /// Listens on 127.0.0.1, port 0, forwarding to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            target,
            shared: Arc::default(),
            tasks: Mutex::default(),
        };
        proxy.accept_on(listener);
        proxy
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn accept_on(&self, listener: TcpListener) {
        let (shared, target) = (self.shared.clone(), self.target);
        self.tasks.lock().unwrap().spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(upstream) = TcpStream::connect(target).await else {
                    continue;
                };
                let conn_shared = shared.clone();
                shared
                    .conns
                    .lock()
                    .unwrap()
                    .spawn(pipe(client, upstream, conn_shared));
            }
        });
    }

    /// From now on, nothing the client sends is forwarded (until [`Self::kill`]).
    pub fn hold(&self) {
        self.shared.holding.store(true, Ordering::SeqCst);
    }

    /// True once a held connection has unforwarded data: a call is in flight.
    pub fn has_held_data(&self) -> bool {
        self.shared.held_data.load(Ordering::SeqCst)
    }

    /// Closes the listener and every connection at once (returns once they are closed).
    pub async fn kill(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        let mut conns = std::mem::take(&mut *self.shared.conns.lock().unwrap());
        tasks.abort_all();
        conns.abort_all();
        while tasks.join_next().await.is_some() {}
        while conns.join_next().await.is_some() {}
        self.shared.holding.store(false, Ordering::SeqCst);
        self.shared.held_data.store(false, Ordering::SeqCst);
    }

    /// Listens again on the same port, passing traffic through.
    pub async fn restart(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.accept_on(listener);
    }
}

async fn pipe(client: TcpStream, upstream: TcpStream, shared: Arc<Shared>) {
    let (client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let down = tokio::io::copy(&mut upstream_read, &mut client_write);
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if client_read.readable().await.is_err() {
                return;
            }
            if shared.holding.load(Ordering::SeqCst) {
                // Leave the data in the kernel's buffer: closing the socket later resets the
                // connection like a dead process's would. Only `kill` ends this wait.
                shared.held_data.store(true, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
            match client_read.try_read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if upstream_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    tokio::select! {
        _ = down => {}
        () = up => {}
    }
}
