//! A TCP proxy standing where Twilio reaches "the server" (the public URL),
//! whose upstream a test can switch: connections opened after the switch
//! reach another instance, as a load balancer may send a call's next Media
//! Stream elsewhere. Connections already open stay where they are.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// The proxy; it stops when dropped.
pub struct SwitchingProxy {
    addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    accept: AbortHandle,
}

impl SwitchingProxy {
    /// Listen on a loopback port, forwarding to `upstream` until switched.
    pub async fn start(upstream: SocketAddr) -> SwitchingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = Arc::new(Mutex::new(upstream));
        let target = upstream.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let to = *target.lock().unwrap();
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        })
        .abort_handle();
        SwitchingProxy {
            addr,
            upstream,
            accept,
        }
    }

    /// `http://127.0.0.1:PORT`: the public URL to give both instances.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// New connections go to `upstream` from now on.
    pub fn switch_to(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap() = upstream;
    }
}

impl Drop for SwitchingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
