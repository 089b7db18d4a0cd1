//! Secrets of the frontend: user passwords (Argon2id, the current OWASP recommendation, in
//! PHC string form so parameters can change later), API tokens and the per-service secrets
//! managers authenticate their callbacks with. Tokens and secrets are random 256-bit values;
//! only their SHA-256 is stored, so a copy of the database grants nothing.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

/// Why a secret could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read random bytes from the system: {0}")]
    Random(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(bytes)
}

/// The PHC string of `password` hashed with Argon2id and a fresh salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC string (false for a malformed one).
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A new random token (64 hex digits) for an API session or a service's callbacks.
pub fn new_secret() -> Result<String, AuthError> {
    Ok(hex::encode(random_bytes::<32>()?))
}

/// What the database keeps of a token or secret.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two hashes without leaking where they differ.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let stored = hash_password("correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify_password("correct horse", &stored));
        assert!(!verify_password("correct horsE", &stored));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(stored, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn secrets_are_random_and_hashed() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same_hash(&secret_hash(&a), &secret_hash(&a)));
        assert!(!same_hash(&secret_hash(&a), &secret_hash(&b)));
    }
}
