//! Several `reservoice serve` processes (the built binary) behind one public
//! address, against one real PostgreSQL database made for the test, with the
//! simulated Twilio and the Realtime stand-in running in the test process.
//!
//! Every instance gets the same settings but its own port and data
//! directory; `PUBLIC_URL` is a name no instance listens on, so a request
//! reaches an instance only because the telephone routes it there
//! ([`Routes`]), signed for the public address, as behind a load balancer.
//! Each instance logs to a file, shown when a test fails.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;
use reservoice::sim::realtime::RealtimeSim;
use reservoice::sim::scenario::{Booking, Scenario};
use reservoice::sim::telephone::{Routes, TelephoneConfig, TelephoneSim};
use reservoice::store::scratch::ScratchDatabase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// The address Twilio is given (every instance's `PUBLIC_URL`); nothing
/// listens there, the telephone routes each request to an instance.
pub const PUBLIC_URL: &str = "http://reservoice.fleet.test";
/// The restaurant the telephone answers for.
pub const RESTAURANT: &str = "+12125550123";

/// One `reservoice serve` process.
pub struct Instance {
    /// "A", "B", "C": how the test and the logs name it.
    pub name: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://addr`, for the API and the CLI.
    pub url: String,
    log: PathBuf,
    child: Child,
}

impl Instance {
    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`: no drain, no goodbye, no lease released.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL sent");
        let _ = self.child.wait().await;
    }

    /// One counter of its `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    }
}

/// Three instances, the telephone and the model.
pub struct Fleet {
    /// The instances, in the order started (A, B, C).
    pub instances: Vec<Instance>,
    /// The simulated Twilio.
    pub phone: TelephoneSim,
    /// The Realtime stand-in.
    pub model: RealtimeSim,
    /// The reservation the scenario expects.
    pub booking: Booking,
    /// What the host and the stand-in model play.
    pub scenario: Scenario,
    /// The Twilio auth token every instance and the telephone share.
    pub auth_token: String,
    /// The instances' database (dropped with the fleet).
    pub db: ScratchDatabase,
    dir: tempfile::TempDir,
}

impl Fleet {
    /// Start instances named `names` on a fresh database (`None`: no
    /// PostgreSQL here, the test is skipped with a note; under `CI=true`
    /// that is a failure). Leases last `lease_secs`.
    pub async fn start(names: &[&'static str], lease_secs: u64) -> Option<Fleet> {
        let db = ScratchDatabase::for_test().await?;
        let dir = tempfile::tempdir().expect("temporary directory");
        let auth_token = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
        let account_sid = format!("AC{:032x}", rand::thread_rng().gen::<u128>());
        let model_key = Alphanumeric.sample_string(&mut rand::thread_rng(), 24);
        let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
        let booking = Booking::demo_on(tomorrow);
        let scenario = Scenario::alternative(&booking);
        let model = RealtimeSim::start(scenario.clone(), Some(model_key.clone()))
            .await
            .expect("model stand-in starts");
        let phone = TelephoneSim::start(TelephoneConfig {
            account_sid: account_sid.clone(),
            auth_token: auth_token.clone(),
            scenario: scenario.clone(),
            lines: Default::default(),
            ring_ms: 600,
            key_press_update: Default::default(),
        })
        .await
        .expect("telephone starts");
        let mut instances = Vec::new();
        for name in names {
            let addr = free_port().await;
            let data = dir.path().join(name);
            std::fs::create_dir_all(&data).expect("data directory");
            let log = dir.path().join(format!("{name}.log"));
            let out = std::fs::File::create(&log).expect("log file");
            let child = Command::new(env!("CARGO_BIN_EXE_reservoice"))
                .arg("serve")
                .current_dir(dir.path())
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("TWILIO_ACCOUNT_SID", &account_sid)
                .env("TWILIO_AUTH_TOKEN", &auth_token)
                .env("TWILIO_FROM_NUMBER", "+12125550100")
                .env("TWILIO_API_BASE", phone.api_base())
                .env("OPENAI_API_KEY", &model_key)
                .env("OPENAI_REALTIME_URL", model.url())
                .env("PUBLIC_URL", PUBLIC_URL)
                .env("RESERVOICE_BIND", addr.to_string())
                .env("DATABASE_URL", db.url())
                .env("RESERVOICE_DATA_DIR", &data)
                .env("RESERVOICE_TIMEZONE", "UTC")
                .env("RESERVOICE_LEASE_SECS", lease_secs.to_string())
                .env("RESERVOICE_DRAIN_SECS", "2")
                .env("RUST_LOG", "info")
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("log file"))
                .stderr(out)
                .kill_on_drop(true)
                .spawn()
                .expect("reservoice serve starts");
            instances.push(Instance {
                name,
                addr,
                url: format!("http://{addr}"),
                log,
                child,
            });
        }
        let fleet = Fleet {
            instances,
            phone,
            model,
            booking,
            scenario,
            auth_token,
            db,
            dir,
        };
        for instance in &fleet.instances {
            fleet.wait_healthy(instance).await;
        }
        Some(fleet)
    }

    /// The instance named `name`.
    pub fn instance(&self, name: &str) -> &Instance {
        self.instances
            .iter()
            .find(|i| i.name == name)
            .expect("an instance of that name")
    }

    /// The instance named `name`, to kill it.
    pub fn instance_mut(&mut self, name: &str) -> &mut Instance {
        self.instances
            .iter_mut()
            .find(|i| i.name == name)
            .expect("an instance of that name")
    }

    /// Send each kind of Twilio request to the instance at these addresses.
    pub fn route(&self, routes: Routes) {
        self.phone.route(routes);
    }

    async fn wait_healthy(&self, instance: &Instance) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let client = reqwest::Client::new();
        loop {
            let ok = client
                .get(format!("{}/healthz", instance.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "instance {} did not start; its log:\n{}",
                instance.name,
                instance.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every instance's log, to read when a test fails.
    pub fn logs(&self) -> String {
        self.instances
            .iter()
            .map(|i| format!("----- instance {} ({}):\n{}", i.name, i.addr, i.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stop the instances (SIGTERM, then SIGKILL after 20 s), the
    /// simulators, and drop the database.
    pub async fn shutdown(mut self) {
        for instance in &mut self.instances {
            if let Some(pid) = instance.child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
        for instance in &mut self.instances {
            if tokio::time::timeout(Duration::from_secs(20), instance.child.wait())
                .await
                .is_err()
            {
                instance.kill().await;
            }
        }
        self.model.shutdown().await;
        self.phone.shutdown().await;
        let _ = self.db.drop_now().await;
        drop(self.dir);
    }
}

/// A loopback port nothing listens on (taken and released at once).
async fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    listener.local_addr().expect("its address")
}

/// A relay in front of an instance that does not pass on the end of the
/// instance's connections: when the instance dies, the telephone's side stays
/// open and what it sends is dropped, as when a machine vanishes from the
/// network without closing anything. The phone line then stays open until
/// somebody ends the call through Twilio's REST API.
pub struct HoldingRelay {
    /// Where it listens.
    pub addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl HoldingRelay {
    /// Relay connections to `upstream`.
    pub async fn start(upstream: SocketAddr) -> HoldingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("its address");
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(hold(client, upstream));
            }
        });
        HoldingRelay { addr, accept }
    }
}

impl Drop for HoldingRelay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn hold(client: TcpStream, upstream: SocketAddr) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let down = async {
        // `copy` does not close `to_client` when the server's side ends.
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
        std::future::pending::<()>().await
    };
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                // Once the server is gone, this fails and the bytes are dropped.
                Ok(n) => {
                    let _ = to_server.write_all(&buf[..n]).await;
                }
            }
        }
    };
    tokio::select! {
        () = down => {}
        () = up => {}
    }
}
