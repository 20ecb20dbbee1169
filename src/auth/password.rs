//! Password hashing (Argon2id with the crate's recommended parameters), the bound on how many
//! hashes run at once ([`Hasher`]), and the password policy.
//!
//! Each Argon2id hash or check fills [`HASH_MEMORY_BYTES`] (19 MiB) of memory for tens of
//! milliseconds. Request handlers go through [`Hasher`], which runs at most a few at once
//! (a semaphore) and lets the others queue for a bounded time; without it, a flood of wrong
//! passwords from many addresses costs 19 MiB per attempt in flight.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Memory one hash or check fills (Argon2's default `m_cost`, 19 MiB).
pub const HASH_MEMORY_BYTES: usize = argon2::Params::DEFAULT_M_COST as usize * 1024;

/// At most this many hashes at once by default, whatever the number of cores.
pub const MAX_DEFAULT_IN_FLIGHT: usize = 4;

/// The default bound on hashes in flight: the machine's cores, at most
/// [`MAX_DEFAULT_IN_FLIGHT`] (more threads hashing would only share the same cores, with a
/// further 19 MiB each).
pub fn default_in_flight() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_DEFAULT_IN_FLIGHT)
}

/// No hashing slot became free within the wait: the request should be refused (429) and
/// retried later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks in progress; try again in {retry_after_s} s")]
pub struct Busy {
    /// What to send as `Retry-After`, in seconds.
    pub retry_after_s: u64,
}

/// Runs Argon2id hashes and checks on the blocking pool, at most `in_flight` at once. A caller
/// that finds every slot taken waits up to `wait` for one, then gets [`Busy`].
///
/// The slot is held by the blocking task itself, so a request that is abandoned (its client
/// disconnected) keeps counting until its hash has really finished.
pub struct Hasher {
    slots: Arc<Semaphore>,
    in_flight: usize,
    wait: Duration,
}

impl Hasher {
    pub fn new(in_flight: usize, wait: Duration) -> Self {
        let in_flight = in_flight.max(1);
        Hasher {
            slots: Arc::new(Semaphore::new(in_flight)),
            in_flight,
            wait,
        }
    }

    /// From `[auth] password_hashes_in_flight` (default: [`default_in_flight`]) and
    /// `password_hash_wait_secs`.
    pub fn from_config(auth: &crate::config::AuthSection) -> Self {
        Self::new(
            auth.password_hashes_in_flight
                .unwrap_or_else(default_in_flight),
            Duration::from_secs(auth.password_hash_wait_secs),
        )
    }

    /// The most hashes that run at once.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Slots free right now (for status and tests).
    pub fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }

    /// Checks a password against a PHC string (see [`verify`]).
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, Busy> {
        self.run(move || verify(&password, &phc)).await
    }

    /// Hashes a password into a PHC string (see [`hash`]).
    pub async fn hash(&self, password: String) -> Result<String, Busy> {
        self.run(move || hash(&password)).await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let busy = Busy {
            retry_after_s: self.wait.as_secs().max(1),
        };
        let slot = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| busy)?
            .expect("the semaphore is never closed");
        let task = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        });
        match task.await {
            Ok(v) => Ok(v),
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // The runtime is shutting down.
                Err(_) => Err(busy),
            },
        }
    }
}

/// Hashes a password into a PHC string. CPU-heavy (tens of milliseconds) and 19 MiB of memory:
/// request handlers use [`Hasher::hash`]; one-off callers (the CLI, the first admin) call it
/// directly, off the async runtime.
pub fn hash(password: &str) -> String {
    let salt_bytes = crate::crypto::random_bytes::<16>();
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes is a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

/// Checks a password against a PHC string. As costly as [`hash`]: request handlers use
/// [`Hasher::verify`].
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// The policy for chosen passwords: 10 to 128 characters, not all of one kind.
pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < 10 {
        return Err("new_password: use at least 10 characters".into());
    }
    if n > 128 {
        return Err("new_password: use at most 128 characters".into());
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if classes.iter().filter(|x| **x).count() < 2 {
        return Err(
            "new_password: mix at least two of lower case, upper case, digits, symbols".into(),
        );
    }
    Ok(())
}

/// A generated password: 20 URL-safe random characters (about 120 bits).
pub fn generate() -> String {
    crate::crypto::random_token(20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse 9");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse 9", &h));
        assert!(!verify("wrong", &h));
        assert!(!verify("x", "not a hash"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_hasher_bounds_hashes_in_flight_and_refuses_after_its_wait() {
        let phc = hash("correct horse 9");
        let h = Arc::new(Hasher::new(1, Duration::from_millis(20)));
        assert_eq!((h.in_flight(), h.free_slots()), (1, 1));
        assert!(h
            .verify("correct horse 9".into(), phc.clone())
            .await
            .unwrap());
        // Two at once with one slot: the second waits 20 ms, far less than one hash takes.
        let (a, b) = tokio::join!(
            h.verify("wrong".into(), phc.clone()),
            h.verify("wrong".into(), phc.clone())
        );
        let mut outcomes = [a, b];
        outcomes.sort_by_key(|r| r.is_err());
        assert_eq!(outcomes[0], Ok(false));
        assert_eq!(outcomes[1], Err(Busy { retry_after_s: 1 }));
        // An abandoned check keeps its slot until its hash is done.
        let abandoned =
            tokio::time::timeout(Duration::from_millis(1), h.hash("x".repeat(12))).await;
        assert!(abandoned.is_err());
        assert_eq!(h.free_slots(), 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while h.free_slots() == 0 {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(h
            .hash("y".repeat(12))
            .await
            .unwrap()
            .starts_with("$argon2id$"));
    }

    #[test]
    fn the_default_bound_is_the_cores_at_most_four() {
        let n = default_in_flight();
        assert!((1..=MAX_DEFAULT_IN_FLIGHT).contains(&n));
        assert_eq!(HASH_MEMORY_BYTES, 19 << 20);
    }

    #[test]
    fn policy() {
        assert!(check_policy("short1").is_err());
        assert!(check_policy("alllowercaseletters").is_err());
        assert!(check_policy("lowercase-and-symbols").is_ok());
    }
}
