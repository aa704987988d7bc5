//! Encryption at rest for the few secrets the server must read back (TOTP seeds): AES-256-GCM
//! with a random nonce, under the server key from `secret_key` or `secret_key_file`.
use std::io::Write as _;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use crate::config::Config;
use crate::error::{Error, Result};

/// The server key, loaded (or, from a file, created) on first use.
#[derive(Clone, Default)]
pub struct ServerKey(Arc<OnceCell<Aes256Gcm>>);

fn decode_key(b64: &str, from: &str) -> Result<Aes256Gcm> {
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|_| Error::Internal(anyhow::anyhow!("{from} is not base64")))?;
    if bytes.len() != 32 {
        return Err(Error::Internal(anyhow::anyhow!(
            "{from} must hold 32 bytes (base64), not {}",
            bytes.len()
        )));
    }
    Ok(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)))
}

fn load(config: &Config) -> Result<Aes256Gcm> {
    if let Some(key) = &config.secret_key {
        return decode_key(key.expose_secret(), "secret_key");
    }
    let path = &config.secret_key_file;
    match std::fs::read_to_string(path) {
        Ok(text) => decode_key(&text, &format!("the key file {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !config.create_state => {
            Err(Error::Internal(anyhow::anyhow!(
                "the server key file {} does not exist, and only `authctl serve` or `authctl migrate up` create it: run this where the service runs (its configuration and state_dir), or set secret_key",
                std::path::absolute(path)
                    .unwrap_or_else(|_| path.clone())
                    .display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Aes256Gcm::generate_key(OsRng);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let written = options
                .open(path)
                .and_then(|mut f| f.write_all(STANDARD.encode(key).as_bytes()));
            match written {
                Ok(()) => {
                    tracing::warn!(path = %path.display(), "created a new server key file; back it up, and give every replica the same key");
                    Ok(Aes256Gcm::new(&key))
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load(config),
                Err(e) => Err(Error::Internal(anyhow::anyhow!(
                    "cannot create the key file {}: {e}",
                    path.display()
                ))),
            }
        }
        Err(e) => Err(Error::Internal(anyhow::anyhow!(
            "cannot read the key file {}: {e}",
            path.display()
        ))),
    }
}

/// Reads the server key, creating the key file when it is missing and `create_state` allows
/// (`authctl migrate up` prepares the state before `serve` or the CLI needs it).
pub fn ensure_key(config: &Config) -> Result<()> {
    load(config).map(|_| ())
}

impl ServerKey {
    async fn cipher(&self, config: &Config) -> Result<&Aes256Gcm> {
        self.0.get_or_try_init(|| async { load(config) }).await
    }

    /// Encrypts `plain`; the result is base64(nonce ‖ ciphertext).
    pub async fn seal(&self, config: &Config, plain: &[u8]) -> Result<String> {
        let cipher = self.cipher(config).await?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        out.extend(
            cipher
                .encrypt(&nonce, plain)
                .map_err(|_| Error::Internal(anyhow::anyhow!("encryption failed")))?,
        );
        Ok(STANDARD.encode(out))
    }

    /// Decrypts what `seal` produced.
    pub async fn open(&self, config: &Config, sealed: &str) -> Result<Vec<u8>> {
        let cipher = self.cipher(config).await?;
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| Error::Internal(anyhow::anyhow!("a sealed value is not base64")))?;
        if bytes.len() < 12 {
            return Err(Error::Internal(anyhow::anyhow!(
                "a sealed value is too short"
            )));
        }
        let (nonce, data) = bytes.split_at(12);
        cipher.decrypt(Nonce::from_slice(nonce), data).map_err(|_| {
            Error::Internal(anyhow::anyhow!(
                "a sealed value does not open with this server key (was secret_key changed?)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sealed_values_open_with_the_same_key_only() {
        let dir = tempfile::tempdir().expect("dir");
        let config = Config {
            secret_key_file: dir.path().join("k"),
            ..Config::default()
        };
        let key = ServerKey::default();
        let sealed = key.seal(&config, b"JBSWY3DPEHPK3PXP").await.expect("seal");
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(
            key.open(&config, &sealed).await.expect("open"),
            b"JBSWY3DPEHPK3PXP"
        );
        // The file was created and a second process reads the same key.
        assert_eq!(
            ServerKey::default()
                .open(&config, &sealed)
                .await
                .expect("open"),
            b"JBSWY3DPEHPK3PXP"
        );
        let other = Config {
            secret_key: Some(STANDARD.encode([7u8; 32]).into()),
            ..Config::default()
        };
        assert!(ServerKey::default().open(&other, &sealed).await.is_err());
    }
}
