//! A real Mosquitto broker for the integration tests, and a small MQTT 3.1.1 subscriber built
//! on `rumqttc`. [`Broker`] owns the `mosquitto` child process (on a free 127.0.0.1 port), its
//! temp dir (the config, the password file, the CA and server certificate made with `rcgen`,
//! and the broker's log) and its lifecycle: start (plain, password, TLS), crash (`kill`) and
//! `restart` on the same port; dropping it kills the broker. [`Sub`] owns one client
//! connection: it subscribes, hands over what arrives as [`Msg`]s, publishes at QoS 1 and
//! reconnects (and re-subscribes) by itself when the broker goes away.
//!
//! Run as root, Mosquitto 2.0 drops privileges to the `mosquitto` user, who cannot read the
//! (0700) temp dir: the config then says `user root` so the broker keeps running as root.

#![allow(dead_code)]

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS,
    SubscribeFilter, SubscribeReasonCode, TlsConfiguration, Transport,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_rustls::rustls;

/// How long a broker may take to accept connections, and a Sub to get its SubAck or PubAck.
const READY: Duration = Duration::from_secs(10);
/// The largest packet a Sub sends or takes (JPEG snapshots are up to about 1 MiB).
const MAX_PACKET: usize = 4 * 1024 * 1024;

/// Who may connect to a [`Broker`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Anyone (`allow_anonymous true`).
    None,
    /// Only this user (`allow_anonymous false` and a `mosquitto_passwd` file).
    Password { user: String, pass: String },
}

/// A running `mosquitto` on 127.0.0.1:[`Broker::port`]; dropping it kills the process.
pub struct Broker {
    child: Option<Child>,
    dir: tempfile::TempDir,
    conf: PathBuf,
    log: PathBuf,
    port: u16,
    auth: Auth,
    ca_pem: Option<String>,
}

impl Broker {
    /// Plain TCP, anonymous clients allowed.
    pub async fn start() -> Broker {
        Self::launch(Auth::None, false).await
    }

    /// Plain TCP, only `user` with `pass` (no anonymous clients).
    pub async fn start_with_password(user: &str, pass: &str) -> Broker {
        let auth = Auth::Password {
            user: user.to_string(),
            pass: pass.to_string(),
        };
        Self::launch(auth, false).await
    }

    /// A TLS listener only (a fresh CA and a server certificate for `localhost` and
    /// 127.0.0.1), anonymous clients allowed. [`Broker::ca_pem`] is the CA to trust.
    pub async fn start_tls() -> Broker {
        Self::launch(Auth::None, true).await
    }

    async fn launch(auth: Auth, tls: bool) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut conf = String::new();
        writeln!(conf, "listener {port} 127.0.0.1").unwrap();
        writeln!(conf, "persistence false").unwrap();
        writeln!(conf, "log_dest stderr").unwrap();
        writeln!(conf, "log_type all").unwrap();
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            writeln!(conf, "user root").unwrap();
        }
        match &auth {
            Auth::None => writeln!(conf, "allow_anonymous true").unwrap(),
            Auth::Password { user, pass } => {
                let file = dir.path().join("passwd");
                let out = Command::new(tool("mosquitto_passwd"))
                    .arg("-b")
                    .arg("-c")
                    .arg(&file)
                    .arg(user)
                    .arg(pass)
                    .output()
                    .expect("run mosquitto_passwd");
                assert!(
                    out.status.success(),
                    "mosquitto_passwd failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                writeln!(conf, "allow_anonymous false").unwrap();
                writeln!(conf, "password_file {}", file.display()).unwrap();
            }
        }
        let ca_pem = tls.then(|| {
            let certs = make_certs(dir.path());
            writeln!(conf, "cafile {}", certs.ca.display()).unwrap();
            writeln!(conf, "certfile {}", certs.cert.display()).unwrap();
            writeln!(conf, "keyfile {}", certs.key.display()).unwrap();
            certs.ca_pem
        });
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut broker = Broker {
            child: None,
            log: dir.path().join("mosquitto.log"),
            dir,
            conf: conf_path,
            port,
            auth,
            ca_pem,
        };
        broker.spawn().await;
        broker
    }

    /// Starts the process with the config and waits until the port accepts connections.
    async fn spawn(&mut self) {
        assert!(self.child.is_none(), "the broker is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(tool("mosquitto"))
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start mosquitto (apt-get install mosquitto)");
        self.child = Some(child);
        let deadline = Instant::now() + READY;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!(
                    "mosquitto exited ({status}) before accepting connections on {}:\n{}",
                    self.port,
                    self.log()
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "mosquitto did not accept connections on {} within {READY:?}:\n{}",
                    self.port,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate (PEM) that signed the server certificate: TLS brokers only.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The temp dir holding the config, the password file, the certificates and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the broker logged so far (all its runs), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL and reap: a broker crash. Connected clients see their sockets close.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let deadline = Instant::now() + READY;
            while child.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "mosquitto survived SIGKILL");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Starts the broker again on the same port with the same config (no persistence: no
    /// sessions or retained messages survive) and waits until it accepts connections. Kills
    /// it first if it is still running.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A binary from the mosquitto package: /usr/sbin or /usr/bin, else whatever PATH has.
fn tool(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

struct CertFiles {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    ca_pem: String,
}

/// A CA and a server certificate for `localhost` and 127.0.0.1 signed by it, written to `dir`.
fn make_certs(dir: &Path) -> CertFiles {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "argus test mosquitto CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();

    let files = CertFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        ca_pem: ca_cert.pem(),
    };
    std::fs::write(&files.ca, &files.ca_pem).unwrap();
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    set_mode(&files.key, 0o600);
    files
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A rustls client config (ring provider, no process-wide provider needed) that trusts only
/// the given CA certificate(s) (PEM).
pub fn tls_client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).unwrap();
    }
    assert!(!roots.is_empty(), "no certificate in the CA PEM");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// The rumqttc TLS transport for [`tls_client_config`].
pub fn tls_transport(ca_pem: &str) -> Transport {
    Transport::tls_with_config(TlsConfiguration::Rustls(tls_client_config(ca_pem)))
}

/// Options for a test client of a broker on 127.0.0.1:`port`: a unique client id
/// (`<prefix>-<pid>-<n>-<nanos>`), keep-alive 5 s, packets up to 4 MiB, clean session.
pub fn client_options(prefix: &str, port: u16) -> MqttOptions {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let id = format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    o.set_max_packet_size(MAX_PACKET, MAX_PACKET);
    o
}

/// One message a [`Sub`] received.
#[derive(Clone, Debug)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Msg {
    /// The payload as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    /// The payload as JSON; panics with the topic and the text if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| {
            panic!(
                "payload on {} is not JSON ({e}): {:?}",
                self.topic,
                self.text()
            )
        })
    }
}

/// What the polling task has seen of the connection.
#[derive(Clone, Debug, Default)]
struct Status {
    connacks: u64,
    subacks: u64,
    pubacks: u64,
    last_error: Option<String>,
}

/// An MQTT 3.1.1 client (rumqttc) subscribed to some filters at QoS 1. A task polls the event
/// loop: it forwards every PUBLISH as a [`Msg`], re-subscribes after each ConnAck and, when the
/// connection fails, sleeps 200 ms and reconnects. Dropping the Sub stops the task.
pub struct Sub {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Msg>,
    status: watch::Receiver<Status>,
    published: AtomicU64,
    task: tokio::task::JoinHandle<()>,
}

impl Sub {
    /// Plain TCP, anonymous, to 127.0.0.1:`port`; returns once the broker has acknowledged
    /// the subscription (or, with no filters, the connection).
    pub async fn connect(port: u16, filters: &[&str]) -> Sub {
        Self::connect_with(client_options("test-sub", port), filters).await
    }

    /// Like [`Sub::connect`] with the caller's options (credentials, TLS transport...).
    pub async fn connect_with(options: MqttOptions, filters: &[&str]) -> Sub {
        let (client, eventloop) = AsyncClient::new(options, 256);
        let (tx, rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(Status::default());
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let task = tokio::spawn(poll_loop(
            eventloop,
            client.clone(),
            filters.clone(),
            tx,
            status_tx,
        ));
        let sub = Sub {
            client,
            rx,
            status,
            published: AtomicU64::new(0),
            task,
        };
        if filters.is_empty() {
            sub.wait_status(READY, "the ConnAck", |s| s.connacks >= 1)
                .await;
        } else {
            sub.wait_subscriptions(1, READY.as_secs()).await;
        }
        sub
    }

    /// Waits until the broker has acknowledged the `n`-th subscription (1: the first one;
    /// each reconnect subscribes again), e.g. to know a Sub is back after a broker restart.
    pub async fn wait_subscriptions(&self, n: u64, secs: u64) {
        let what = format!("SubAck #{n}");
        self.wait_status(Duration::from_secs(secs), &what, |s| s.subacks >= n)
            .await;
    }

    /// How many times the client got a ConnAck (1 + the reconnects).
    pub fn connects(&self) -> u64 {
        self.status.borrow().connacks
    }

    async fn wait_status(&self, limit: Duration, what: &str, done: impl Fn(&Status) -> bool) {
        let mut status = self.status.clone();
        let res = tokio::time::timeout(limit, status.wait_for(|s| done(s))).await;
        if !matches!(res, Ok(Ok(_))) {
            panic!(
                "MQTT client: no {what} within {limit:?}; status {:?}",
                *self.status.borrow()
            );
        }
    }

    /// The next message within `secs` seconds.
    pub async fn next(&mut self, secs: u64) -> Option<Msg> {
        tokio::time::timeout(Duration::from_secs(secs), self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// The first message within `secs` seconds that `pick` accepts (others are skipped);
    /// panics naming the topics it saw if none comes.
    pub async fn wait_for(&mut self, secs: u64, pick: impl Fn(&Msg) -> bool) -> Msg {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) if pick(&m) => return m,
                Ok(Some(m)) => seen.push(m.topic),
                Ok(None) | Err(_) => panic!(
                    "no matching MQTT message within {secs} s; saw {} other(s) on {seen:?}; \
                     status {:?}",
                    seen.len(),
                    *self.status.borrow()
                ),
            }
        }
    }

    /// Everything that arrives within `secs` seconds.
    pub async fn collect(&mut self, secs: f64) -> Vec<Msg> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
        let mut out = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            out.push(m);
        }
        out
    }

    /// Publishes at QoS 1 and waits (up to 10 s) for the broker's PubAck.
    pub async fn publish(&self, topic: &str, payload: &[u8], retain: bool) {
        let ticket = self.published.fetch_add(1, Ordering::SeqCst) + 1;
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.to_vec())
            .await
            .unwrap_or_else(|e| panic!("publish to {topic}: {e}"));
        let what = format!("PubAck for {topic}");
        self.wait_status(READY, &what, |s| s.pubacks >= ticket)
            .await;
    }

    /// The underlying client, for anything else.
    pub fn client(&self) -> &AsyncClient {
        &self.client
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn poll_loop(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<String>,
    tx: mpsc::UnboundedSender<Msg>,
    status: watch::Sender<Status>,
) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                status.send_modify(|s| s.connacks += 1);
                if !filters.is_empty() {
                    // From another task: this one must keep polling for the request to leave.
                    let c = client.clone();
                    let f: Vec<SubscribeFilter> = filters
                        .iter()
                        .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce))
                        .collect();
                    tokio::spawn(async move {
                        let _ = c.subscribe_many(f).await;
                    });
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let failed = ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure));
                status.send_modify(|s| {
                    if failed {
                        s.last_error = Some(format!("subscription refused: {ack:?}"));
                    } else {
                        s.subacks += 1;
                    }
                });
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => status.send_modify(|s| s.pubacks += 1),
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let _ = tx.send(Msg {
                    topic: p.topic,
                    payload: p.payload.to_vec(),
                    retain: p.retain,
                });
            }
            Ok(_) => {}
            Err(ConnectionError::RequestsDone) => return,
            Err(e) => {
                status.send_modify(|s| s.last_error = Some(e.to_string()));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Polls a fresh event loop until the first ConnAck or error (within 10 s).
pub async fn first_connack(options: MqttOptions) -> Result<ConnectReturnCode, ConnectionError> {
    let (_client, mut eventloop) = AsyncClient::new(options, 10);
    let res = tokio::time::timeout(READY, async {
        loop {
            match eventloop.poll().await? {
                Event::Incoming(Packet::ConnAck(ack)) => return Ok(ack.code),
                _ => continue,
            }
        }
    })
    .await;
    res.expect("no ConnAck or error within 10 s")
}

#[tokio::test]
async fn plain_broker_delivers_and_retains() {
    let broker = Broker::start().await;
    let mut a = Sub::connect(broker.port(), &["t/#"]).await;
    let b = Sub::connect(broker.port(), &[]).await;

    b.publish("t/hello", br#"{"n":1}"#, false).await;
    let m = a.wait_for(5, |m| m.topic == "t/hello").await;
    assert_eq!(m.json()["n"], 1);
    assert_eq!(m.text(), r#"{"n":1}"#);
    assert!(!m.retain);

    // A 1 MiB payload (a JPEG snapshot's size) goes through.
    let big = vec![0xA5u8; 1024 * 1024];
    b.publish("t/big", &big, false).await;
    let m = a.wait_for(5, |m| m.topic == "t/big").await;
    assert_eq!(m.payload, big);

    b.publish("t/state", b"online", true).await;
    let m = a.wait_for(5, |m| m.topic == "t/state").await;
    assert!(!m.retain, "a live delivery is not flagged retained");
    let mut late = Sub::connect(broker.port(), &["t/state"]).await;
    let m = late.next(5).await.expect("the retained message");
    assert_eq!((m.topic.as_str(), m.text().as_str()), ("t/state", "online"));
    assert!(m.retain);
    assert!(late.collect(0.3).await.is_empty());
}

#[tokio::test]
async fn password_broker_refuses_wrong_credentials() {
    let broker = Broker::start_with_password("argus", "s3cret-pass").await;
    let mut wrong = client_options("test-auth", broker.port());
    wrong.set_credentials("argus", "not-the-pass");
    match first_connack(wrong).await {
        // Mosquitto answers 5 (not authorised) to MQTT 3.1.1, not 4 (bad user name or password).
        Err(ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, ConnectReturnCode::NotAuthorized)
        }
        other => panic!("wrong password: {other:?}\n{}", broker.log()),
    }
    let anonymous = client_options("test-auth", broker.port());
    assert!(matches!(
        first_connack(anonymous).await,
        Err(ConnectionError::ConnectionRefused(_))
    ));

    let mut right = client_options("test-auth", broker.port());
    right.set_credentials("argus", "s3cret-pass");
    assert_eq!(
        first_connack(right.clone()).await.unwrap(),
        ConnectReturnCode::Success
    );
    let mut sub = Sub::connect_with(right, &["a/#"]).await;
    sub.publish("a/b", b"x", false).await;
    assert_eq!(sub.wait_for(5, |m| m.topic == "a/b").await.text(), "x");
}

#[tokio::test]
async fn tls_broker_accepts_clients_trusting_its_ca() {
    let broker = Broker::start_tls().await;
    let ca = broker.ca_pem().expect("a TLS broker has a CA");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));

    for host in ["localhost", "127.0.0.1"] {
        let id = client_options("test-tls", broker.port()).client_id();
        let mut o = MqttOptions::new(id, host, broker.port());
        o.set_transport(tls_transport(&ca));
        let code = first_connack(o).await;
        assert!(
            matches!(code, Ok(ConnectReturnCode::Success)),
            "{host}: {code:?}\n{}",
            broker.log()
        );
    }

    // Another CA: the handshake fails.
    let other = Broker::start_tls().await;
    let mut o = client_options("test-tls", broker.port());
    o.set_transport(tls_transport(&other.ca_pem().unwrap()));
    let res = first_connack(o).await;
    assert!(matches!(res, Err(ConnectionError::Tls(_))), "{res:?}");

    // Plain MQTT to the TLS port gets no ConnAck.
    let res = first_connack(client_options("test-tls", broker.port())).await;
    assert!(res.is_err(), "{res:?}");

    // A Sub over TLS.
    let mut o = client_options("test-tls", broker.port());
    o.set_transport(tls_transport(&ca));
    let mut sub = Sub::connect_with(o, &["s/#"]).await;
    sub.publish("s/1", b"over tls", false).await;
    assert_eq!(
        sub.wait_for(5, |m| m.topic == "s/1").await.text(),
        "over tls"
    );
}

#[tokio::test]
async fn sub_reconnects_after_broker_restart() {
    let mut broker = Broker::start().await;
    let port = broker.port();
    let mut sub = Sub::connect(port, &["r/#"]).await;
    assert_eq!(sub.connects(), 1);

    broker.kill().await;
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err());
    broker.restart().await;
    assert_eq!(broker.port(), port);

    sub.wait_subscriptions(2, 8).await;
    assert!(sub.connects() >= 2);
    let publisher = Sub::connect(port, &[]).await;
    publisher.publish("r/after", b"back", false).await;
    let m = sub.wait_for(5, |m| m.topic == "r/after").await;
    assert_eq!(m.text(), "back");
}
