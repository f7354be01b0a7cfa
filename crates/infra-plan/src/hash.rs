//! Hashes of content, and keyed fingerprints of anything that could reveal a secret.
//!
//! A plain SHA-256 of a file that holds an 8-character password lets anyone with the plan
//! file guess the password offline. So every value derived from a secret that a plan shows or
//! stores (a sensitive file's hash, a password's fingerprint, the fingerprints of the desired
//! state and of each host's facts) is an HMAC under a key stretched from all of the topology's
//! secrets with PBKDF2: checking one guess costs as much as deriving the key, and needs every
//! secret at once. Two runs with the same secrets (two CI runners) get the same fingerprints,
//! which is what the stale-plan check compares.

use std::fmt;

use hmac::Mac as _;
use sha2::Digest as _;

/// A SHA-256 digest as 64 lowercase hex digits.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256(String);

impl Sha256 {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256 {
        Sha256(hex(&sha2::Sha256::digest(bytes)))
    }

    /// A digest given as text (from a host), if it is 64 hex digits.
    pub fn parse(text: &str) -> Option<Sha256> {
        (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Sha256(text.to_ascii_lowercase()))
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for reading.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Sha256 {
    type Error = String;
    fn try_from(text: String) -> Result<Sha256, String> {
        Sha256::parse(&text).ok_or_else(|| "not a SHA-256 digest".to_owned())
    }
}

impl From<Sha256> for String {
    fn from(sha: Sha256) -> String {
        sha.0
    }
}

/// A keyed fingerprint (hex), safe to show and to store in a plan file.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&Sha256> for Fingerprint {
    /// A plain SHA-256 is its own fingerprint (for content that holds no secret).
    fn from(sha: &Sha256) -> Fingerprint {
        Fingerprint(sha.0.clone())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many PBKDF2 rounds stretch the secrets into the fingerprint key.
const ROUNDS: u32 = 60_000;
/// Shown fingerprints of sensitive content are this many hex digits: enough to see a change,
/// too few to confirm a guess of the content even with the key.
const SHOWN_DIGITS: usize = 16;

/// Makes keyed fingerprints for one topology and one set of secret values.
#[derive(Clone)]
pub struct Fingerprinter {
    key: [u8; 32],
}

impl fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fingerprinter(key: (sensitive value))")
    }
}

impl Fingerprinter {
    /// The fingerprinter of topology `name` whose secrets are `secrets` (values, any order).
    pub fn new(name: &str, secrets: &[&str]) -> Fingerprinter {
        let mut sorted: Vec<&str> = secrets.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut password = Vec::new();
        for secret in sorted {
            password.extend_from_slice(&u64::try_from(secret.len()).unwrap_or(0).to_be_bytes());
            password.extend_from_slice(secret.as_bytes());
        }
        let salt = format!("infra fingerprint key v1: {name}");
        let mut key = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(&password, salt.as_bytes(), ROUNDS, &mut key);
        Fingerprinter { key }
    }

    /// The full keyed fingerprint of `bytes` (for comparing: plans, facts).
    pub fn full(&self, bytes: &[u8]) -> Fingerprint {
        Fingerprint(hex(&self.mac(bytes)))
    }

    /// The shown fingerprint of sensitive content: keyed and shortened.
    pub fn shown(&self, bytes: &[u8]) -> Fingerprint {
        let mut text = hex(&self.mac(bytes));
        text.truncate(SHOWN_DIGITS);
        Fingerprint(text)
    }

    /// The fingerprint of a value's JSON form.
    pub fn of_json<T: serde::Serialize>(&self, value: &T) -> Fingerprint {
        self.full(&serde_json::to_vec(value).unwrap_or_default())
    }

    fn mac(&self, bytes: &[u8]) -> Vec<u8> {
        let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            // HMAC takes keys of any length; this arm cannot be reached with a 32-byte key.
            Err(_) => return sha2::Sha256::digest(bytes).to_vec(),
        };
        mac.update(bytes);
        mac.finalize().into_bytes().to_vec()
    }
}

/// `N` random bytes: the kernel's randomness, or (if `/dev/urandom` cannot be read) a digest
/// of the clock, the process ID and a counter, so two IDs never come out the same either way.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use std::io::Read as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; N];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut r| r.read_exact(&mut bytes));
    if read.is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut seed = sha2::Sha256::new();
        seed.update(now.to_le_bytes());
        seed.update(std::process::id().to_le_bytes());
        seed.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let digest = seed.finalize();
        for (byte, value) in bytes.iter_mut().zip(digest.iter().cycle()) {
            *byte = *value;
        }
    }
    bytes
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_depend_on_every_secret_and_hide_the_plain_hash() {
        let a = Fingerprinter::new("t", &["password1", "other-secret"]);
        let b = Fingerprinter::new("t", &["other-secret", "password1"]);
        let c = Fingerprinter::new("t", &["password2", "other-secret"]);
        let content = b"user admin insecure-password password1";
        assert_eq!(a.full(content), b.full(content), "order does not matter");
        assert_ne!(a.full(content), c.full(content));
        assert_ne!(a.full(content).as_str(), Sha256::of(content).as_str());
        assert_eq!(a.shown(content).as_str().len(), SHOWN_DIGITS);
        assert!(!format!("{a:?}").contains(&hex(&a.key)));
    }

    #[test]
    fn digests_parse_only_from_hex() {
        let sha = Sha256::of(b"x");
        assert_eq!(Sha256::parse(sha.as_str()), Some(sha));
        assert_eq!(Sha256::parse("zz"), None);
    }
}
