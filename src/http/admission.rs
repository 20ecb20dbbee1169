//! Who may hold one of the server's connections: a cap on all connections, a cap per client
//! address (an IPv4 address, or an IPv6 /64, so one host cannot take every slot), and which
//! connection gives way when a cap is reached.
//!
//! Each open connection holds a [`Slot`] that says what it is doing. When the server is full, the
//! connection that has been waiting longest for a request (a TLS handshake, a head still
//! arriving, an idle keep-alive) is shed, so slow or idle clients cannot keep a new one out;
//! failing that, the oldest whose response is complete on the server's side but still being
//! read by a slow client. Connections whose request is being worked on, or upgraded to a
//! WebSocket, are never shed. When a
//! client address is at its cap, its own oldest idle keep-alive connection is shed, else the new
//! connection is refused.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Notify;

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// TLS handshake.
    Handshake,
    /// Waiting for (the rest of) a request head.
    Head,
    /// Keep-alive between requests, nothing received yet.
    Idle,
    /// A request is being served.
    Active,
    /// The response is done on the server's side and is being sent (a client that reads it
    /// slowly stays here).
    Responding,
    /// Upgraded to a WebSocket.
    Upgraded,
}

impl Phase {
    /// Waiting for the client to send something: the first to give way.
    fn waiting(self) -> bool {
        matches!(self, Phase::Handshake | Phase::Head | Phase::Idle)
    }
}

/// Why a new connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address already holds the most connections one address may.
    PerAddress,
    /// Every connection is busy with a request.
    Full,
}

/// The address a per-client cap counts under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(u32),
    V6Prefix(u64),
}

fn client_key(ip: IpAddr) -> ClientKey {
    match ip {
        IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => ClientKey::V4(u32::from(v4)),
            // Hosts choose their own interface identifiers: count the /64 they live in.
            None => ClientKey::V6Prefix((u128::from(v6) >> 64) as u64),
        },
    }
}

struct Entry {
    key: ClientKey,
    phase: Phase,
    since: Instant,
    shed: Arc<Notify>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    conns: HashMap<u64, Entry>,
    per_key: HashMap<ClientKey, usize>,
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let e = self.conns.remove(&id)?;
        if let Some(n) = self.per_key.get_mut(&e.key) {
            *n -= 1;
            if *n == 0 {
                self.per_key.remove(&e.key);
            }
        }
        Some(e)
    }

    /// The connection that has waited longest in a phase `pick` accepts.
    fn oldest(&self, pick: impl Fn(&Entry) -> bool) -> Option<u64> {
        self.conns
            .iter()
            .filter(|(_, e)| pick(e))
            .min_by_key(|(id, e)| (e.since, **id))
            .map(|(id, _)| *id)
    }
}

/// Counters for the operator (`/system/health`).
#[derive(Debug, Default, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
pub struct ConnectionStats {
    /// Connections open now.
    pub open: u64,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Refused because their address held too many connections.
    pub refused_per_address: u64,
    /// Refused because every connection was busy with a request.
    pub refused_full: u64,
    /// Idle or slow connections closed to make room for a new one.
    pub shed: u64,
}

/// The connection table. Cheap to share behind an `Arc`.
pub struct Admission {
    max: usize,
    per_address: usize,
    table: Mutex<Table>,
    empty: Notify,
    accepted: AtomicU64,
    refused_per_address: AtomicU64,
    refused_full: AtomicU64,
    shed: AtomicU64,
}

impl Admission {
    /// `per_address` 0 means no per-address cap.
    pub fn new(max: usize, per_address: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max: max.max(1),
            per_address,
            table: Mutex::new(Table::default()),
            empty: Notify::new(),
            accepted: AtomicU64::new(0),
            refused_per_address: AtomicU64::new(0),
            refused_full: AtomicU64::new(0),
            shed: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn shed_one(&self, t: &mut Table, id: u64) {
        if let Some(e) = t.remove(id) {
            self.shed.fetch_add(1, Ordering::Relaxed);
            e.shed.notify_one();
        }
    }

    /// Takes a slot for a new connection from `ip` in phase `phase`, shedding another
    /// connection if that is what it takes.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, phase: Phase) -> Result<Slot, Refusal> {
        let key = client_key(ip);
        let now = Instant::now();
        let mut t = self.lock();
        if self.per_address > 0 && t.per_key.get(&key).copied().unwrap_or(0) >= self.per_address {
            match t.oldest(|e| e.key == key && e.phase == Phase::Idle) {
                Some(victim) => self.shed_one(&mut t, victim),
                None => {
                    self.refused_per_address.fetch_add(1, Ordering::Relaxed);
                    return Err(Refusal::PerAddress);
                }
            }
        }
        if t.conns.len() >= self.max {
            // A connection waiting for its client first; else one whose response the server has
            // finished and its client is slow to read.
            let victim = t
                .oldest(|e| e.phase.waiting())
                .or_else(|| t.oldest(|e| e.phase == Phase::Responding));
            match victim {
                Some(victim) => self.shed_one(&mut t, victim),
                None => {
                    self.refused_full.fetch_add(1, Ordering::Relaxed);
                    return Err(Refusal::Full);
                }
            }
        }
        let id = t.next_id;
        t.next_id += 1;
        let shed = Arc::new(Notify::new());
        t.conns.insert(
            id,
            Entry {
                key,
                phase,
                since: now,
                shed: shed.clone(),
            },
        );
        *t.per_key.entry(key).or_insert(0) += 1;
        self.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            admission: self.clone(),
            id,
            shed,
        })
    }

    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            open: self.lock().conns.len() as u64,
            accepted: self.accepted.load(Ordering::Relaxed),
            refused_per_address: self.refused_per_address.load(Ordering::Relaxed),
            refused_full: self.refused_full.load(Ordering::Relaxed),
            shed: self.shed.load(Ordering::Relaxed),
        }
    }

    /// Waits until no connection holds a slot.
    pub async fn drained(&self) {
        loop {
            let notified = self.empty.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().conns.is_empty() {
                return;
            }
            notified.await;
        }
    }
}

/// One connection's place in the table; dropping it frees the place.
pub struct Slot {
    admission: Arc<Admission>,
    id: u64,
    shed: Arc<Notify>,
}

impl Slot {
    /// Records what the connection does now. `false` when it has been shed meanwhile: the
    /// connection must close.
    pub fn set(&self, phase: Phase) -> bool {
        let mut t = self.admission.lock();
        match t.conns.get_mut(&self.id) {
            Some(e) => {
                if e.phase != phase {
                    e.phase = phase;
                    e.since = Instant::now();
                }
                true
            }
            None => false,
        }
    }

    /// Completes when the connection has been shed to make room for another.
    pub async fn shed(&self) {
        self.shed.notified().await
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.admission.lock();
        t.remove(self.id);
        if t.conns.is_empty() {
            self.admission.empty.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let a = Admission::new(10, 2);
        let s1 = a.admit(ip("10.0.0.1"), Phase::Head).unwrap();
        let _s2 = a.admit(ip("10.0.0.1"), Phase::Head).unwrap();
        // Both are mid-request-head: the third from that address is refused ...
        assert_eq!(
            a.admit(ip("10.0.0.1"), Phase::Head).err(),
            Some(Refusal::PerAddress)
        );
        // ... another address is not,
        let _other = a.admit(ip("10.0.0.2"), Phase::Head).unwrap();
        // and an idle keep-alive connection of the same address gives way to a new one.
        assert!(s1.set(Phase::Idle));
        let _s3 = a.admit(ip("10.0.0.1"), Phase::Head).unwrap();
        assert!(!s1.set(Phase::Active), "the idle one was shed");
        assert_eq!(a.stats().shed, 1);
        assert_eq!(a.stats().refused_per_address, 1);
    }

    #[test]
    fn ipv6_hosts_count_by_their_64() {
        let a = Admission::new(10, 1);
        let _s = a.admit(ip("fd00:1:2:3::1"), Phase::Head).unwrap();
        assert!(a.admit(ip("fd00:1:2:3::2"), Phase::Head).is_err());
        assert!(a.admit(ip("fd00:1:2:4::1"), Phase::Head).is_ok());
        // An IPv4-mapped address is its IPv4 address.
        let _v4 = a.admit(ip("192.0.2.1"), Phase::Head).unwrap();
        assert!(a.admit(ip("::ffff:192.0.2.1"), Phase::Head).is_err());
    }

    #[tokio::test]
    async fn when_full_the_longest_waiting_gives_way_and_busy_ones_never_do() {
        let a = Admission::new(3, 0);
        let slow = a.admit(ip("10.0.0.1"), Phase::Head).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let busy = a.admit(ip("10.0.0.2"), Phase::Head).unwrap();
        assert!(busy.set(Phase::Active));
        let idle = a.admit(ip("10.0.0.3"), Phase::Idle).unwrap();
        let newcomer = a.admit(ip("10.0.0.4"), Phase::Head).unwrap();
        // The slow head was the oldest sheddable one: it is told, and its slot is gone.
        tokio::time::timeout(std::time::Duration::from_secs(1), slow.shed())
            .await
            .expect("the shed connection is notified");
        assert!(!slow.set(Phase::Active));
        assert!(idle.set(Phase::Idle));
        assert!(newcomer.set(Phase::Active));
        assert!(busy.set(Phase::Upgraded));
        // Now the only waiting one is `idle`: it goes first, ...
        let n2 = a.admit(ip("10.0.0.5"), Phase::Head).unwrap();
        assert!(!idle.set(Phase::Idle));
        assert!(n2.set(Phase::Active));
        // ... then a response a slow client is still reading, ...
        assert!(newcomer.set(Phase::Responding));
        let n3 = a.admit(ip("10.0.0.6"), Phase::Head).unwrap();
        assert!(!newcomer.set(Phase::Idle));
        assert!(n3.set(Phase::Active));
        // ... and when every connection is being worked on, nothing gives way.
        assert_eq!(
            a.admit(ip("10.0.0.7"), Phase::Head).err(),
            Some(Refusal::Full)
        );
        let s = a.stats();
        assert_eq!((s.open, s.shed, s.refused_full), (3, 3, 1));
        drop((busy, newcomer, n2, n3, slow, idle));
        tokio::time::timeout(std::time::Duration::from_secs(1), a.drained())
            .await
            .expect("drained once every slot is dropped");
    }
}
