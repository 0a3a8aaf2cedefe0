//! Debian's `nats-server` with JetStream on loopback, for tests and the benchmark runner
//! (feature `local-server`): every server listens on 127.0.0.1 only, on ports picked free,
//! with its store in a temporary directory removed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to report JetStream healthy.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `nats-server` binary: `$NATS_SERVER_BIN`, else `nats-server` on `PATH`, else Debian's
/// `/usr/sbin/nats-server`.
fn server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One node's fixed identity: its ports and directory survive a kill and a restart.
#[derive(Debug)]
struct Node {
    name: String,
    port: u16,
    monitor_port: u16,
    cluster_port: Option<u16>,
    store_dir: PathBuf,
    routes: Vec<u16>,
    child: Option<Child>,
}

impl Node {
    fn spawn(&mut self) -> std::io::Result<()> {
        let mut command = Command::new(server_binary());
        command
            .args(["-a", "127.0.0.1", "-js", "-n", &self.name])
            .args(["-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .arg("-sd")
            .arg(&self.store_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(cluster_port) = self.cluster_port {
            let routes: Vec<String> = self
                .routes
                .iter()
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect();
            command
                .args(["--cluster_name", "eventlog-test"])
                .args(["--cluster", &format!("nats://127.0.0.1:{cluster_port}")])
                .args(["--routes", &routes.join(",")]);
        }
        self.child = Some(command.spawn()?);
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether `/healthz` reports the server (and its JetStream) ready.
    fn healthy(&self) -> bool {
        let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", self.monitor_port)) else {
            return false;
        };
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!(
            "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.monitor_port
        );
        if tcp.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut response = String::new();
        let _ = tcp.read_to_string(&mut response);
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200")
    }

    fn wait_ready(&mut self) -> std::io::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if self.healthy() {
                return Ok(());
            }
            // A server that exited (a port taken since it was picked) never gets healthy.
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("nats-server {} exited at start: {status}", self.name),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("nats-server {} not healthy in {READY_TIMEOUT:?}", self.name),
        ))
    }
}

/// One `nats-server` with JetStream, on loopback, its store in a temporary directory.
/// Killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct LocalServer {
    node: Node,
    _dir: tempfile::TempDir,
}

impl LocalServer {
    /// Starts a server and waits until its JetStream is ready.
    ///
    /// # Errors
    ///
    /// When the binary cannot be run or the server is not ready within 30 s.
    pub fn start() -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut node = Node {
            name: "eventlog-test".into(),
            port: 0,
            monitor_port: 0,
            cluster_port: None,
            store_dir: dir.path().join("jetstream"),
            routes: Vec::new(),
            child: None,
        };
        // A port picked free can be taken by another process before the server binds it
        // (tests start servers in parallel): the server then exits, and is started again on
        // other ports.
        let mut attempts = 0;
        loop {
            attempts += 1;
            node.port = free_port()?;
            node.monitor_port = free_port()?;
            node.spawn()?;
            match node.wait_ready() {
                Ok(()) => return Ok(Self { node, _dir: dir }),
                Err(error) if error.kind() == std::io::ErrorKind::AddrInUse && attempts < 5 => {}
                Err(error) => {
                    // Not left running when it is not handed out.
                    node.kill();
                    return Err(error);
                }
            }
        }
    }

    /// Its client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.node.port)
    }

    /// Where it keeps its JetStream data.
    pub fn store_dir(&self) -> &Path {
        &self.node.store_dir
    }

    /// Kills it (SIGKILL); [`LocalServer::restart`] starts it again on the same port and data.
    pub fn kill(&mut self) {
        self.node.kill();
    }

    /// Starts it again (after [`LocalServer::kill`]) and waits until it is ready.
    ///
    /// # Errors
    ///
    /// As [`LocalServer::start`].
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.node.kill();
        self.node.spawn()?;
        self.node.wait_ready()
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.node.kill();
    }
}

/// A cluster of `nats-server`s with JetStream on loopback (for replicated streams).
#[derive(Debug)]
pub struct LocalCluster {
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl LocalCluster {
    /// Starts `size` nodes routed to each other and waits until every one is ready.
    ///
    /// # Errors
    ///
    /// As [`LocalServer::start`].
    pub fn start(size: usize) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let cluster_ports = (0..size)
            .map(|_| free_port())
            .collect::<std::io::Result<Vec<_>>>()?;
        let mut nodes = Vec::with_capacity(size);
        for (i, &cluster_port) in cluster_ports.iter().enumerate() {
            nodes.push(Node {
                name: format!("n{}", i + 1),
                port: free_port()?,
                monitor_port: free_port()?,
                cluster_port: Some(cluster_port),
                store_dir: dir.path().join(format!("n{}", i + 1)),
                routes: cluster_ports
                    .iter()
                    .copied()
                    .filter(|&p| p != cluster_port)
                    .collect(),
                child: None,
            });
        }
        for node in &mut nodes {
            node.spawn()?;
        }
        for node in &mut nodes {
            node.wait_ready()?;
        }
        Ok(Self { nodes, _dir: dir })
    }

    /// Every node's client URL, comma-separated (what a client is given).
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The index of the node named `name` (`n1`, `n2`, ...).
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Kills node `index` (SIGKILL).
    pub fn kill(&mut self, index: usize) {
        if let Some(node) = self.nodes.get_mut(index) {
            node.kill();
        }
    }

    /// Starts node `index` again and waits until it is ready.
    ///
    /// # Errors
    ///
    /// As [`LocalServer::start`].
    pub fn restart(&mut self, index: usize) -> std::io::Result<()> {
        let Some(node) = self.nodes.get_mut(index) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("no node {index}"),
            ));
        };
        node.kill();
        node.spawn()?;
        node.wait_ready()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}
