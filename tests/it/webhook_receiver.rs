//! A webhook receiver for the tests and the alert benchmark: a real HTTP server on loopback
//! that records every request and answers scripted statuses (then 200).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub headers: hyper::HeaderMap,
    pub raw: Vec<u8>,
    pub body: Value,
    pub answered: u16,
    /// When it arrived.
    pub at: Instant,
}

impl Hit {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A webhook receiver: answers the scripted statuses in turn, then 200.
pub struct Receiver {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    pub script: Arc<Mutex<VecDeque<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        Self::on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    pub fn on(listener: tokio::net::TcpListener) -> Receiver {
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<u16>>> = Arc::default();
        let (h, s) = (hits.clone(), script.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (h, s) = (h.clone(), s.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (h, s) = (h.clone(), s.clone());
                        async move {
                            let headers = req.headers().clone();
                            let raw = req.into_body().collect().await.unwrap().to_bytes().to_vec();
                            let status = s.lock().unwrap().pop_front().unwrap_or(200);
                            h.lock().unwrap().push(Hit {
                                headers,
                                body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
                                raw,
                                answered: status,
                                at: Instant::now(),
                            });
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"thanks")))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Receiver {
            url,
            hits,
            script,
            task,
        }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub async fn wait(&self, n: usize, secs: u64) -> Vec<Hit> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let h = self.hits();
            if h.len() >= n {
                return h;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} webhook requests within {secs} s, wanted {n}",
                h.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
