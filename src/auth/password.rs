//! Password hashing (Argon2id with the crate's recommended parameters) and the password policy.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Hashes a password into a PHC string. CPU-heavy (tens of milliseconds): call it off the async
/// runtime.
pub fn hash(password: &str) -> String {
    let salt_bytes = crate::crypto::random_bytes::<16>();
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes is a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

/// Checks a password against a PHC string. CPU-heavy: call it off the async runtime.
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

    #[test]
    fn policy() {
        assert!(check_policy("short1").is_err());
        assert!(check_policy("alllowercaseletters").is_err());
        assert!(check_policy("lowercase-and-symbols").is_ok());
    }
}
