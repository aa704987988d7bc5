//! Password hashing with argon2id: explicit parameters, off the async runtime, a bounded number at once.
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OnceCell, Semaphore};

use crate::config::PasswordConfig;
use crate::error::{Error, Result};

/// Hashes and verifies passwords. Cloning is cheap; clones share the concurrency bound.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified when the account does not exist so that an unknown
    /// address costs as much as a wrong password.
    dummy: Arc<OnceCell<String>>,
}

/// The outcome of verifying a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but the hash was made with other parameters: store a new one.
    YesRehash,
}

impl Hasher {
    pub fn new(config: &PasswordConfig) -> anyhow::Result<Self> {
        let params = Params::new(
            config.hash_memory_kib,
            config.hash_iterations,
            config.hash_parallelism,
            None,
        )
        .map_err(|e| {
            anyhow::anyhow!("invalid argon2 parameters in the password.hash_* settings: {e}")
        })?;
        let concurrency = match config.hash_concurrency {
            // A core stays free for everything that does not hash (the session check above all).
            0 => std::thread::available_parallelism()
                .map(|n| n.get().saturating_sub(1).max(1))
                .unwrap_or(1),
            n => n,
        };
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency)),
            dummy: Arc::new(OnceCell::new()),
        })
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// Runs `f` on the blocking pool once a hashing permit is free.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| Error::Internal(e.into()))?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(f))
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("password hashing task failed: {e}")))
    }

    /// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) for `password`.
    pub async fn hash(&self, password: &SecretString) -> Result<String> {
        self.hash_with(password, self.params.clone()).await
    }

    /// A cheap argon2id hash for high-entropy secrets such as 80-bit recovery codes, which a
    /// salted hash protects without the cost a human password needs.
    pub async fn hash_light(&self, secret: &SecretString) -> Result<String> {
        self.hash_with(secret, Self::light()).await
    }

    /// Verifies a `hash_light` hash.
    pub async fn verify_light(&self, stored: &str, secret: &SecretString) -> Result<Verified> {
        self.verify(Some(stored), secret)
            .await
            .map(|v| if v == Verified::No { v } else { Verified::Yes })
    }

    fn light() -> Params {
        Params::new(4096, 1, 1, None).unwrap_or_default()
    }

    async fn hash_with(&self, password: &SecretString, params: Params) -> Result<String> {
        let password = password.clone();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Self::argon2(params)
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::Internal(anyhow::anyhow!("hashing failed: {e}")))
        })
        .await?
    }

    /// Verifies `password` against `stored`, or against the dummy hash when `stored` is `None`
    /// (the answer is then always `No`, after the same amount of work).
    pub async fn verify(&self, stored: Option<&str>, password: &SecretString) -> Result<Verified> {
        let (stored, real) = match stored {
            Some(s) => (s.to_owned(), true),
            None => (self.dummy_hash().await?, false),
        };
        let password = password.clone();
        let params = self.params.clone();
        let ok = self
            .run(move || {
                let Ok(parsed) = PasswordHash::new(&stored) else {
                    tracing::error!("a stored password hash is not a valid PHC string");
                    return Verified::No;
                };
                // The parameters come from the PHC string itself, so old hashes keep verifying.
                if Argon2::default()
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .is_err()
                {
                    return Verified::No;
                }
                if Self::is_current(&parsed, &params) {
                    Verified::Yes
                } else {
                    Verified::YesRehash
                }
            })
            .await?;
        Ok(if real { ok } else { Verified::No })
    }

    fn is_current(hash: &PasswordHash<'_>, params: &Params) -> bool {
        hash.algorithm == Algorithm::Argon2id.ident()
            && hash.version == Some(Version::V0x13.into())
            && Params::try_from(hash).is_ok_and(|p| {
                p.m_cost() == params.m_cost()
                    && p.t_cost() == params.t_cost()
                    && p.p_cost() == params.p_cost()
            })
    }

    async fn dummy_hash(&self) -> Result<String> {
        self.dummy
            .get_or_try_init(|| async {
                self.hash(&SecretString::from(crate::tokens::generate()))
                    .await
            })
            .await
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(m: u32) -> PasswordConfig {
        PasswordConfig {
            hash_memory_kib: m,
            hash_iterations: 1,
            ..PasswordConfig::default()
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_old_parameters_ask_for_a_rehash() {
        let old = Hasher::new(&cheap(1024)).expect("params");
        let new = Hasher::new(&cheap(2048)).expect("params");
        let pw = SecretString::from("correct horse");
        let hash = old.hash(&pw).await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert_eq!(
            old.verify(Some(&hash), &pw).await.expect("verify"),
            Verified::Yes
        );
        assert_eq!(
            new.verify(Some(&hash), &pw).await.expect("verify"),
            Verified::YesRehash
        );
        assert_eq!(
            old.verify(Some(&hash), &"wrong".into())
                .await
                .expect("verify"),
            Verified::No
        );
        assert_eq!(old.verify(None, &pw).await.expect("verify"), Verified::No);
    }
}
