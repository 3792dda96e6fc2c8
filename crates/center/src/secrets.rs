//! Secrets at rest and in flight: the server's master secret (for play tokens and for
//! sealing viewer passwords), member passwords (argon2id), session tokens and random
//! identifiers. Member passwords and session tokens are only ever stored hashed; viewer
//! passwords must be e-mailed to invitees again on every change, so they are stored
//! sealed (ChaCha20-Poly1305 under a key derived from the master secret), never in clear.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use rand::Rng as _;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;

/// Fresh random bytes from the OS-seeded CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rng().fill_bytes(&mut b);
    b
}

/// Largest id handed out: 2^53 − 1, the largest integer JavaScript numbers (and so JSON
/// clients in browsers) represent exactly.
pub const MAX_ID: i64 = (1 << 53) - 1;

/// A random id in 1..=[`MAX_ID`] (53 random bits: collisions stay negligible and are
/// refused by the primary key anyway).
pub fn random_id() -> i64 {
    (i64::from_be_bytes(random_bytes::<8>()) & MAX_ID).max(1)
}

/// An unguessable program slug: 128 random bits, 26 lower-case base32 characters.
pub fn new_slug() -> String {
    const A: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let bytes = random_bytes::<16>();
    let mut acc: u128 = u128::from_be_bytes(bytes);
    (0..26)
        .map(|_| {
            let c = A[(acc & 31) as usize] as char;
            acc >>= 5;
            c
        })
        .collect()
}

/// A new session token and the hash the store keeps.
pub fn new_session_token() -> (String, [u8; 32]) {
    let token = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let hash = token_hash(&token);
    (token, hash)
}

/// SHA-256 of a bearer token (tokens have full entropy; a slow hash adds nothing).
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// argon2id PHC string of a password.
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("password hashing failed: {e}"))
}

/// Whether `password` matches the PHC string (constant-time inside argon2).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash to compare against when the account does not exist, so a login's timing does
/// not tell whether an address is registered.
pub fn dummy_password_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("no such member, but take the same time").expect("hash"))
}

/// The server's secrets, derived from one master secret.
pub struct Secrets {
    play_key: slotcast_domain::token::SigningKey,
    pass_key: [u8; 32],
    seal: ChaCha20Poly1305,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

fn derive(master: &[u8; 32], purpose: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"slotcast/");
    h.update(purpose.as_bytes());
    h.update(master);
    h.finalize().into()
}

impl Secrets {
    /// Derives every key from `master`.
    pub fn from_master(master: [u8; 32]) -> Self {
        let seal_key = derive(&master, "viewer-password-seal");
        Self {
            play_key: slotcast_domain::token::SigningKey::from_bytes(&derive(
                &master,
                "play-token-ed25519",
            )),
            pass_key: derive(&master, "play-token"),
            seal: ChaCha20Poly1305::new(&seal_key.into()),
        }
    }

    /// Loads `<dir>/secret.key` (64 hex digits), creating it (mode 0600) on first start.
    pub fn load_or_create(dir: &Path) -> Result<Self, String> {
        let path = dir.join("secret.key");
        let hex = match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let hex: String = random_bytes::<32>()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                write_private(&path, &hex)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                tracing::info!(path = %path.display(), "created the server secret");
                hex
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>();
        let master: [u8; 32] = bytes
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("{} must hold 64 hex digits", path.display()))?;
        Ok(Self::from_master(master))
    }

    /// The private key play tokens are signed with (never leaves the center).
    pub fn play_key(&self) -> &slotcast_domain::token::SigningKey {
        &self.play_key
    }

    /// The public key stream nodes check play tokens with.
    pub fn play_public_key(&self) -> slotcast_domain::token::VerifyingKey {
        self.play_key.verifying_key()
    }

    /// The secret viewer passes are signed with (the center alone checks them).
    pub fn pass_key(&self) -> &[u8; 32] {
        &self.pass_key
    }

    /// Seals a viewer password for storage.
    pub fn seal(&self, plaintext: &str) -> String {
        let nonce = random_bytes::<12>();
        let ct = self
            .seal
            .encrypt(&Nonce::from(nonce), plaintext.as_bytes())
            .expect("encryption cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("v1:{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a sealed viewer password.
    pub fn unseal(&self, sealed: &str) -> Result<String, String> {
        let raw = sealed
            .strip_prefix("v1:")
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .filter(|r| r.len() > 12)
            .ok_or("sealed value is malformed")?;
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().expect("12 bytes");
        let pt = self
            .seal
            .decrypt(&Nonce::from(nonce), ct)
            .map_err(|_| "sealed value does not open with this server's secret")?;
        String::from_utf8(pt).map_err(|_| "sealed value is not text".to_owned())
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horsE"));
        assert!(!verify_password("garbage", "x"));
    }

    #[test]
    fn sealing_round_trips_and_needs_the_same_secret() {
        let s = Secrets::from_master([1; 32]);
        let sealed = s.seal("s3cret!");
        assert!(sealed.starts_with("v1:") && !sealed.contains("s3cret"));
        assert_ne!(sealed, s.seal("s3cret!"), "fresh nonce each time");
        assert_eq!(s.unseal(&sealed).unwrap(), "s3cret!");
        assert!(Secrets::from_master([2; 32]).unseal(&sealed).is_err());
        assert!(s.unseal("v1:AAAA").is_err());
        assert!(s.unseal("plain").is_err());
    }

    #[test]
    fn the_secret_file_is_created_once_and_private() {
        let d = slotcast_testkit::TempDir::new("secret");
        let a = Secrets::load_or_create(d.path()).unwrap();
        let b = Secrets::load_or_create(d.path()).unwrap();
        assert_eq!(a.play_public_key(), b.play_public_key());
        assert_eq!(a.pass_key(), b.pass_key());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(d.path().join("secret.key"), "short").unwrap();
        assert!(
            Secrets::load_or_create(d.path())
                .unwrap_err()
                .contains("64 hex digits")
        );
    }

    #[test]
    fn slugs_and_ids() {
        let a = new_slug();
        assert_eq!(a.len(), 26);
        assert_ne!(a, new_slug());
        for _ in 0..1000 {
            assert!((1..=MAX_ID).contains(&random_id()));
        }
        let (t, h) = new_session_token();
        assert_eq!(token_hash(&t), h);
    }
}
