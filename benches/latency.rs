//! What the latency benchmarks share: the rounds argument, the runtime they run on, waiting for
//! a `/ws` message, and the summary line (median, a high percentile, max).

// Each benchmark uses some of these.
#![allow(dead_code)]

use futures_util::StreamExt;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{Error, Message};

/// The first argument that is not a flag, as a number of rounds.
pub fn rounds(default: usize) -> usize {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Two workers, like the 2-core boards these numbers are for.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// When the first `/ws` message `pick` accepts arrived (within 10 s).
pub async fn ws_message(
    ws: &mut (impl futures_util::Stream<Item = Result<Message, Error>> + Unpin),
    pick: impl Fn(&Value) -> bool,
) -> Instant {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s");
        if let Some(Ok(Message::Text(t))) = next {
            let m: Value = serde_json::from_str(t.as_str()).unwrap();
            if pick(&m) {
                return Instant::now();
            }
        }
    }
}

/// Prints the median, the `pct` percentile and the maximum.
pub fn summary(name: &str, mut v: Vec<Duration>, pct: u32) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let high = v[((v.len() as f64 * f64::from(pct) / 100.0).ceil() as usize).clamp(1, v.len()) - 1];
    println!(
        "{name:<40} median {:7.2} ms   p{pct} {:7.2} ms   max {:7.2} ms   ({} rounds)",
        ms(v[v.len() / 2]),
        ms(high),
        ms(*v.last().unwrap()),
        v.len()
    );
}
