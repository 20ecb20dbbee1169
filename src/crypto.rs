//! Secrets and cryptography, all on one stack (ring): the data dir's master key, keys derived
//! from it (API-key hashing, JWT signing, sealing credentials at rest), random tokens, and the
//! ring-backed HS256 provider that `jsonwebtoken` signs and verifies with.
//!
//! The master key lives in `<data-dir>/secret.key` (32 random bytes, mode 0600). It is created on
//! first boot and never logged. Losing it invalidates every API key, every login and every
//! stored camera password, so backups must include it.

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{aead, hkdf, hmac};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("cannot read or create the key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the key file {0} is damaged (expected 32 bytes)")]
    BadKeyFile(String),
    #[error("sealed secret cannot be opened (wrong data-dir key or damaged value)")]
    Unseal,
}

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // SystemRandom only fails if the OS has no entropy source, which is unrecoverable.
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the operating system has no random source");
    buf
}

/// A URL-safe random token of `n_chars` characters (6 bits of entropy each).
pub fn random_token(n_chars: usize) -> String {
    let mut out = String::with_capacity(n_chars);
    while out.len() < n_chars {
        let bytes = random_bytes::<48>();
        out.push_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    }
    out.truncate(n_chars);
    out
}

/// A v4 UUID from the system CSPRNG.
pub fn new_uuid() -> String {
    uuid::Builder::from_random_bytes(random_bytes::<16>())
        .into_uuid()
        .to_string()
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename) with mode 0600.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// The keys derived from the data dir's master key. Cheap to clone.
#[derive(Clone)]
pub struct Keys {
    api_key_hmac: hmac::Key,
    jwt_secret: [u8; 32],
    seal_key: [u8; 32],
    media_key: [u8; 32],
    node_id: String,
}

impl Keys {
    /// Loads `<data-dir>/secret.key`, creating it on first boot.
    pub fn load_or_create(data_dir: &Path) -> Result<Keys, CryptoError> {
        let path = data_dir.join("secret.key");
        let err = |source| CryptoError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        let master: [u8; 32] = match std::fs::read(&path) {
            Ok(bytes) => bytes
                .try_into()
                .map_err(|_| CryptoError::BadKeyFile(path.display().to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = random_bytes::<32>();
                write_secret_file(&path, &key).map_err(err)?;
                key
            }
            Err(e) => return Err(err(e)),
        };
        Ok(Keys::from_master(&master))
    }

    pub fn from_master(master: &[u8; 32]) -> Keys {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"argus-edge v1").extract(master);
        let derive = |label: &'static [u8]| {
            let mut out = [0u8; 32];
            let info = [label];
            prk.expand(&info, Len(32))
                .and_then(|okm| okm.fill(&mut out))
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            out
        };
        Keys {
            api_key_hmac: hmac::Key::new(hmac::HMAC_SHA256, &derive(b"api-key-hash")),
            jwt_secret: derive(b"jwt-hs256"),
            seal_key: derive(b"seal-aes256gcm"),
            media_key: derive(b"media-links-hmac"),
            node_id: {
                let d = derive(b"mqtt-node-id");
                let hex: String = d[..4].iter().map(|b| format!("{b:02x}")).collect();
                format!("argus_{hex}")
            },
        }
    }

    /// The keyed hash under which an API key is stored. API keys carry 192 bits of randomness,
    /// so a fast keyed hash is as strong as a slow password hash and costs microseconds.
    pub fn api_key_hash(&self, key: &str) -> Vec<u8> {
        hmac::sign(&self.api_key_hmac, key.as_bytes())
            .as_ref()
            .to_vec()
    }

    pub fn jwt_secret(&self) -> &[u8] {
        &self.jwt_secret
    }

    /// This appliance's stable default MQTT node id (`argus_` and 8 hex digits, derived from the
    /// master key: the same across restarts, different for every data dir).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The key that signs media links (an event's snapshot without an API key).
    pub fn media_key(&self) -> &[u8] {
        &self.media_key
    }

    /// Encrypts a secret (camera password, AI key) for storage: nonce || ciphertext+tag.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let key = aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_256_GCM, &self.seal_key).expect("32-byte key"),
        );
        let nonce_bytes = random_bytes::<12>();
        let mut buf = plaintext.to_vec();
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce_bytes),
            aead::Aad::empty(),
            &mut buf,
        )
        .expect("AES-GCM sealing of an in-memory buffer cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    /// Decrypts what [`Keys::seal`] produced.
    pub fn unseal(&self, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 12 + 16 {
            return Err(CryptoError::Unseal);
        }
        let key = aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_256_GCM, &self.seal_key).expect("32-byte key"),
        );
        let (nonce, ct) = sealed.split_at(12);
        let nonce =
            aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Unseal)?;
        let mut buf = ct.to_vec();
        let plain = key
            .open_in_place(nonce, aead::Aad::empty(), &mut buf)
            .map_err(|_| CryptoError::Unseal)?;
        Ok(plain.to_vec())
    }
}

/// Constant-time equality for secrets.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub mod jwt_provider {
    //! A `jsonwebtoken` crypto provider backed by ring, for HS256 only. It keeps the binary on one
    //! crypto stack instead of pulling in RustCrypto's RSA/ECDSA code or aws-lc.

    use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
    use jsonwebtoken::errors::{Error, ErrorKind};
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
    use ring::hmac;

    struct Hs256(hmac::Key);

    impl signature::Signer<Vec<u8>> for Hs256 {
        fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
            Ok(hmac::sign(&self.0, msg).as_ref().to_vec())
        }
    }
    impl JwtSigner for Hs256 {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }
    impl signature::Verifier<Vec<u8>> for Hs256 {
        fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
            hmac::verify(&self.0, msg, sig).map_err(|_| signature::Error::new())
        }
    }
    impl JwtVerifier for Hs256 {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }

    fn signer(
        alg: &Algorithm,
        key: &EncodingKey,
    ) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
        if *alg != Algorithm::HS256 {
            return Err(Error::from(ErrorKind::InvalidAlgorithm));
        }
        Ok(Box::new(Hs256(hmac::Key::new(
            hmac::HMAC_SHA256,
            key.as_bytes(),
        ))))
    }

    fn verifier(
        alg: &Algorithm,
        key: &DecodingKey,
    ) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
        if *alg != Algorithm::HS256 {
            return Err(Error::from(ErrorKind::InvalidAlgorithm));
        }
        Ok(Box::new(Hs256(hmac::Key::new(
            hmac::HMAC_SHA256,
            key.try_get_as_bytes()?,
        ))))
    }

    static PROVIDER: CryptoProvider = CryptoProvider {
        signer_factory: signer,
        verifier_factory: verifier,
        key_utils: KeyUtils::new_unimplemented(),
    };

    /// Installs the provider; idempotent.
    pub fn install() {
        let _ = PROVIDER.install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_tamper_detection() {
        let keys = Keys::from_master(&[7u8; 32]);
        let sealed = keys.seal(b"hunter2");
        assert_ne!(&sealed[12..], b"hunter2");
        assert_eq!(keys.unseal(&sealed).unwrap(), b"hunter2");
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(keys.unseal(&bad).is_err());
        let other = Keys::from_master(&[8u8; 32]);
        assert!(other.unseal(&sealed).is_err());
    }

    #[test]
    fn tokens_are_url_safe_and_long_enough() {
        let t = random_token(40);
        assert_eq!(t.len(), 40);
        assert!(t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(random_token(40), t);
    }

    #[test]
    fn api_key_hash_is_keyed() {
        let a = Keys::from_master(&[1u8; 32]);
        let b = Keys::from_master(&[2u8; 32]);
        assert_eq!(a.api_key_hash("argus_x"), a.api_key_hash("argus_x"));
        assert_ne!(a.api_key_hash("argus_x"), b.api_key_hash("argus_x"));
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
