//! SASL for the Kafka probe: `PLAIN` (RFC 4616) and `SCRAM-SHA-256` /
//! `SCRAM-SHA-512` (RFC 5802, RFC 7677), the mechanisms of managed Kafka
//! (Confluent Cloud, Amazon MSK, Aiven, Redpanda Cloud).
//!
//! The hashing is aws-lc-rs, the crate's one crypto provider (rustls runs
//! on it too). PBKDF2 runs once per salt and iteration count, off the async
//! threads; the keys it yields are kept for the next checks, since a broker
//! keeps a user's salt until the password changes.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use aws_lc_rs::{digest, hmac, pbkdf2, rand::SecureRandom as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use subtle::ConstantTimeEq as _;

/// Above any broker's setting (Kafka allows 4096 to 16384): a higher count
/// from a server would only make every check burn CPU.
const MAX_ITERATIONS: u32 = 100_000;

/// The SASL mechanism [`KafkaProbe::sasl`](super::KafkaProbe::sasl) logs in
/// with, as named in Kafka's `sasl.mechanism`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN`: the password itself, so only over TLS (Confluent Cloud,
    /// MSK with IAM off, most hosted Kafka).
    Plain,
    /// `SCRAM-SHA-256`: a salted challenge, the password never sent.
    ScramSha256,
    /// `SCRAM-SHA-512` (Amazon MSK's SCRAM).
    ScramSha512,
}

impl SaslMechanism {
    /// The name as Kafka spells it: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism named `name` (as in `sasl.mechanism`, any case).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Plain, Self::ScramSha256, Self::ScramSha512]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mechanism with its user name and password; the password never shows
/// in `Debug`.
#[derive(Clone)]
pub(super) struct SaslLogin {
    pub(super) mechanism: SaslMechanism,
    username: String,
    password: String,
    /// SCRAM keys of the last salt seen, shared by clones of the probe.
    keys: Arc<Mutex<Option<ScramKeys>>>,
}

impl fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism)
            // A Confluent Cloud user name is an API key: shown no more
            // than the password.
            .field("username", &"***")
            .field("password", &"***")
            .finish_non_exhaustive()
    }
}

impl SaslLogin {
    pub(super) fn new(mechanism: SaslMechanism, username: String, password: String) -> Self {
        Self {
            mechanism,
            username,
            password,
            keys: Arc::default(),
        }
    }

    /// A conversation for one connection.
    pub(super) fn start(&self) -> Result<Conversation, String> {
        match self.mechanism {
            SaslMechanism::Plain => Ok(Conversation::Plain(plain_token(&self.username, &self.password))),
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let mut bytes = [0u8; 24];
                aws_lc_rs::rand::SystemRandom::new()
                    .fill(&mut bytes)
                    .map_err(|_| "no randomness for the SCRAM nonce".to_owned())?;
                Ok(Conversation::Scram(ScramClient::new(
                    Hash::of(self.mechanism),
                    &self.username,
                    BASE64.encode(bytes),
                )))
            }
        }
    }

    /// The SCRAM keys for `salt` and `iterations`: from the last check when
    /// the server still uses them, else derived anew (off the async threads).
    pub(super) async fn scram_keys(&self, hash: Hash, salt: &[u8], iterations: u32) -> Result<ScramKeys, String> {
        if let Ok(keys) = self.keys.lock()
            && let Some(keys) = keys.as_ref().filter(|k| k.matches(hash, salt, iterations))
        {
            return Ok(keys.clone());
        }
        let (password, salt) = (self.password.clone(), salt.to_vec());
        let keys = tokio::task::spawn_blocking(move || ScramKeys::derive(hash, &password, &salt, iterations))
            .await
            .map_err(|_| "deriving the SCRAM keys failed".to_owned())??;
        if let Ok(mut slot) = self.keys.lock() {
            *slot = Some(keys.clone());
        }
        Ok(keys)
    }
}

/// `\0user\0password`: no authorisation identity, as Kafka's clients send.
fn plain_token(username: &str, password: &str) -> Vec<u8> {
    let mut token = Vec::with_capacity(username.len() + password.len() + 2);
    token.push(0);
    token.extend_from_slice(username.as_bytes());
    token.push(0);
    token.extend_from_slice(password.as_bytes());
    token
}

/// One connection's exchange.
pub(super) enum Conversation {
    Plain(Vec<u8>),
    Scram(ScramClient),
}

/// The hash of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    fn of(mechanism: SaslMechanism) -> Self {
        if mechanism == SaslMechanism::ScramSha512 {
            Self::Sha512
        } else {
            Self::Sha256
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Self::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Self::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha512 => &digest::SHA512,
        }
    }
}

/// `ClientKey` and `ServerKey` of RFC 5802 for one salt and count.
#[derive(Clone)]
pub(super) struct ScramKeys {
    hash: Hash,
    salt: Vec<u8>,
    iterations: u32,
    client_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl ScramKeys {
    fn matches(&self, hash: Hash, salt: &[u8], iterations: u32) -> bool {
        self.hash == hash && self.salt == salt && self.iterations == iterations
    }

    fn derive(hash: Hash, password: &str, salt: &[u8], iterations: u32) -> Result<Self, String> {
        let rounds = NonZeroU32::new(iterations).ok_or("the server asked for 0 SCRAM iterations")?;
        let mut salted = vec![0u8; hash.digest().output_len()];
        pbkdf2::derive(hash.pbkdf2(), rounds, salt, password.as_bytes(), &mut salted);
        let key = hmac::Key::new(hash.hmac(), &salted);
        Ok(Self {
            hash,
            salt: salt.to_vec(),
            iterations,
            client_key: hmac::sign(&key, b"Client Key").as_ref().to_vec(),
            server_key: hmac::sign(&key, b"Server Key").as_ref().to_vec(),
        })
    }
}

/// What the server's first message asks for.
#[derive(Debug, PartialEq)]
pub(super) struct ServerFirst {
    nonce: String,
    pub(super) salt: Vec<u8>,
    pub(super) iterations: u32,
}

/// The client side of one SCRAM exchange (no channel binding, as Kafka).
pub(super) struct ScramClient {
    pub(super) hash: Hash,
    nonce: String,
    first_bare: String,
    /// The signature the server must show, once the proof is sent.
    expected: Option<Vec<u8>>,
}

impl ScramClient {
    fn new(hash: Hash, username: &str, nonce: String) -> Self {
        let name = username.replace('=', "=3D").replace(',', "=2C");
        Self {
            hash,
            first_bare: format!("n={name},r={nonce}"),
            nonce,
            expected: None,
        }
    }

    /// `client-first-message`: `n,,n=user,r=nonce`.
    pub(super) fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    /// Reads `r=…,s=…,i=…`, checking that the nonce extends ours.
    pub(super) fn read_server_first(&self, message: &[u8]) -> Result<ServerFirst, String> {
        let text = std::str::from_utf8(message).map_err(|_| "the server's SCRAM challenge is not UTF-8")?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attribute in text.split(',') {
            match attribute.split_at_checked(2) {
                Some(("m=", _)) => return Err("the server requires a SCRAM extension the probe lacks".to_owned()),
                Some(("r=", v)) => nonce = Some(v),
                Some(("s=", v)) => salt = Some(v),
                Some(("i=", v)) => iterations = Some(v),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err("the server's SCRAM challenge lacks its nonce, salt or iteration count".to_owned());
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's SCRAM nonce does not extend the client's".to_owned());
        }
        let salt = BASE64
            .decode(salt)
            .map_err(|_| "the server's SCRAM salt is not base64")?;
        let iterations = iterations
            .parse::<u32>()
            .ok()
            .filter(|i| (1..=MAX_ITERATIONS).contains(i))
            .ok_or_else(|| {
                format!("the server's SCRAM iteration count {iterations:?} is not within 1..={MAX_ITERATIONS}")
            })?;
        Ok(ServerFirst {
            nonce: nonce.to_owned(),
            salt,
            iterations,
        })
    }

    /// `client-final-message` with the proof, remembering the signature the
    /// server must answer with.
    pub(super) fn client_final(&mut self, server_first: &[u8], first: &ServerFirst, keys: &ScramKeys) -> Vec<u8> {
        let without_proof = format!("c=biws,r={}", first.nonce);
        let auth_message = format!(
            "{},{},{without_proof}",
            self.first_bare,
            String::from_utf8_lossy(server_first)
        );
        let stored_key = digest::digest(self.hash.digest(), &keys.client_key);
        let signature = hmac::sign(
            &hmac::Key::new(self.hash.hmac(), stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = keys
            .client_key
            .iter()
            .zip(signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        let server_signature = hmac::sign(
            &hmac::Key::new(self.hash.hmac(), &keys.server_key),
            auth_message.as_bytes(),
        );
        self.expected = Some(server_signature.as_ref().to_vec());
        format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes()
    }

    /// Checks `v=…`: the server knows the password too. `e=…` is its refusal.
    pub(super) fn verify_server_final(&self, message: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(message);
        if let Some(error) = text.strip_prefix("e=") {
            return Err(format!("authentication failed: the server refused the proof ({error})"));
        }
        let signature = text
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .and_then(|v| BASE64.decode(v).ok())
            .ok_or("the server's last SCRAM message has no signature")?;
        let expected = self.expected.as_deref().unwrap_or_default();
        if expected.is_empty() || !bool::from(signature.ct_eq(expected)) {
            return Err("the server's SCRAM signature is wrong: it does not know the password".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Hash, SaslLogin, SaslMechanism, ScramClient, ScramKeys, plain_token};

    /// RFC 7677, section 3: user `user`, password `pencil`.
    const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    #[test]
    fn scram_sha_256_matches_the_rfc_7677_exchange() {
        let mut client = ScramClient::new(Hash::Sha256, "user", CLIENT_NONCE.to_owned());
        assert_eq!(client.first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let first = client.read_server_first(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(first.iterations, 4096);
        let keys = ScramKeys::derive(Hash::Sha256, "pencil", &first.salt, first.iterations).unwrap();
        let last = client.client_final(SERVER_FIRST.as_bytes(), &first, &keys);
        assert_eq!(String::from_utf8(last).unwrap(), CLIENT_FINAL);
        client.verify_server_final(SERVER_FINAL.as_bytes()).unwrap();
    }

    #[test]
    fn a_server_that_does_not_know_the_password_is_refused() {
        let mut client = ScramClient::new(Hash::Sha256, "user", CLIENT_NONCE.to_owned());
        let first = client.read_server_first(SERVER_FIRST.as_bytes()).unwrap();
        let wrong = ScramKeys::derive(Hash::Sha256, "pencil2", &first.salt, first.iterations).unwrap();
        let last = client.client_final(SERVER_FIRST.as_bytes(), &first, &wrong);
        assert_ne!(String::from_utf8(last).unwrap(), CLIENT_FINAL);
        assert_eq!(
            client.verify_server_final(SERVER_FINAL.as_bytes()).unwrap_err(),
            "the server's SCRAM signature is wrong: it does not know the password"
        );
        assert_eq!(
            client.verify_server_final(b"e=invalid-proof").unwrap_err(),
            "authentication failed: the server refused the proof (invalid-proof)"
        );
        // Before any proof was sent there is nothing to accept.
        let fresh = ScramClient::new(Hash::Sha256, "user", CLIENT_NONCE.to_owned());
        assert!(fresh.verify_server_final(SERVER_FINAL.as_bytes()).is_err());
    }

    #[test]
    fn server_first_messages_are_checked() {
        let client = ScramClient::new(Hash::Sha512, "user", "abc".to_owned());
        let cases = [
            (
                "r=xyz1,s=AAAA,i=4096",
                "the server's SCRAM nonce does not extend the client's",
            ),
            (
                "r=abc,s=AAAA,i=4096",
                "the server's SCRAM nonce does not extend the client's",
            ),
            (
                "r=abc1,s=AAAA",
                "the server's SCRAM challenge lacks its nonce, salt or iteration count",
            ),
            (
                "m=ext,r=abc1,s=AAAA,i=1",
                "the server requires a SCRAM extension the probe lacks",
            ),
            ("r=abc1,s=!!,i=4096", "the server's SCRAM salt is not base64"),
            (
                "r=abc1,s=AAAA,i=0",
                "the server's SCRAM iteration count \"0\" is not within 1..=100000",
            ),
            (
                "r=abc1,s=AAAA,i=1000000000",
                "the server's SCRAM iteration count \"1000000000\" is not within 1..=100000",
            ),
        ];
        for (message, error) in cases {
            assert_eq!(
                client.read_server_first(message.as_bytes()).unwrap_err(),
                error,
                "{message}"
            );
        }
        let ok = client.read_server_first(b"r=abc123,s=AAAA,i=8192").unwrap();
        assert_eq!((ok.salt, ok.iterations), (vec![0, 0, 0], 8192));
    }

    #[test]
    fn user_names_are_escaped_and_plain_tokens_built() {
        let client = ScramClient::new(Hash::Sha256, "a=b,c", "n".to_owned());
        assert_eq!(client.first(), b"n,,n=a=3Db=2Cc,r=n");
        assert_eq!(plain_token("alice", "s3cret"), b"\0alice\0s3cret");
    }

    #[tokio::test]
    async fn keys_are_derived_once_per_salt() {
        let login = SaslLogin::new(SaslMechanism::ScramSha512, "u".into(), "p".into());
        assert_eq!(login.mechanism, SaslMechanism::ScramSha512);
        let a = login.scram_keys(Hash::Sha512, b"salt", 4096).await.unwrap();
        assert_eq!(a.client_key.len(), 64);
        let cached = login.scram_keys(Hash::Sha512, b"salt", 4096).await.unwrap();
        assert_eq!(a.client_key, cached.client_key);
        let other = login.scram_keys(Hash::Sha512, b"pepper", 4096).await.unwrap();
        assert_ne!(a.client_key, other.client_key);
        let debug = format!("{login:?}");
        assert!(!debug.contains("\"p\"") && !debug.contains("\"u\""), "{debug}");
    }

    #[test]
    fn mechanism_names() {
        assert_eq!(
            SaslMechanism::from_name("scram-sha-512"),
            Some(SaslMechanism::ScramSha512)
        );
        assert_eq!(SaslMechanism::from_name(" PLAIN "), Some(SaslMechanism::Plain));
        assert_eq!(SaslMechanism::from_name("GSSAPI"), None);
        assert_eq!(SaslMechanism::ScramSha256.to_string(), "SCRAM-SHA-256");
    }
}
