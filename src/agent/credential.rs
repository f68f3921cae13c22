//! Agent credentials are stored only as Argon2id hashes (PHC strings in the config); the
//! plain credential exists on the agent's machine and in the login message, never on disk here.
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// A PHC string (`$argon2id$v=19$m=…`) for `credential`, with a fresh random salt.
pub fn hash(credential: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(credential.as_bytes(), &salt)
        // Hashing with the default parameters and a generated salt has no failure case.
        .expect("argon2 with default parameters")
        .to_string()
}

/// Whether `credential` matches the stored `phc` hash; a malformed hash matches nothing.
pub fn verify(credential: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(credential.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Checks that a configured hash is a PHC string this build can verify.
pub fn check_hash(phc: &str) -> Result<(), String> {
    let h = PasswordHash::new(phc).map_err(|e| format!("not a password hash string: {e}"))?;
    if h.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "hash algorithm {} is not argon2id: create it with `trunkgate hash-credential`",
            h.algorithm
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_credential_and_are_salted() {
        let h = hash("s3cret");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("s3cret", &h));
        assert!(!verify("s3cret ", &h));
        assert!(!verify("", &h));
        assert_ne!(hash("s3cret"), h, "a fresh salt every time");
        assert!(!verify("s3cret", "not a hash"));
        assert!(check_hash(&h).is_ok());
        assert!(check_hash("$2b$12$abcdefghijklmnopqrstuv").is_err());
    }
}
