//! Validated input types: parse, don't validate. No I/O here.
use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};

use crate::config::PasswordConfig;
use crate::error::{Error, Result};

/// An e-mail address, trimmed and lower-cased so that uniqueness ignores case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        let email = raw.trim().to_lowercase();
        let invalid = |why: &str| {
            Err(Error::invalid(
                "invalid_email",
                format!("`{}` is not a valid email address: {why}", raw.trim()),
            ))
        };
        if email.is_empty() {
            return Err(Error::invalid(
                "invalid_email",
                "an email address is required",
            ));
        }
        if email.len() > 254 {
            return invalid("it is longer than 254 characters");
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return invalid("it has no @");
        };
        if local.is_empty() || local.len() > 64 {
            return invalid("the part before @ must be 1 to 64 characters");
        }
        if local.contains('@')
            || local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"".contains(c))
        {
            return invalid("the part before @ contains characters that are not allowed");
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return invalid("the part before @ has a misplaced dot");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|l| {
                l.is_empty()
                    || l.len() > 63
                    || l.starts_with('-')
                    || l.ends_with('-')
                    || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
        {
            return invalid("the domain is not a valid host name");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name: trimmed, at most 100 characters, no control characters. May be empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Name(String);

impl Name {
    pub fn parse(raw: &str) -> Result<Self> {
        let name = raw.trim();
        if name.chars().count() > 100 {
            return Err(Error::invalid(
                "invalid_name",
                "the name may be at most 100 characters long",
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "invalid_name",
                "the name may not contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// The bundled list of common passwords (lower case, one per line), from the zxcvbn frequency lists.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../assets/common-passwords.txt")
        .lines()
        .collect()
});

/// A password that satisfies the policy for new passwords.
pub struct NewPassword(SecretString);

impl NewPassword {
    /// Checks a new password: length in code points, the common-password list and the e-mail address.
    /// Each refusal says why, so the user can pick a better one.
    pub fn parse(raw: &SecretString, policy: &PasswordConfig, email: &Email) -> Result<Self> {
        let pw = raw.expose_secret();
        check_length(pw, policy)?;
        let length = pw.chars().count();
        if length < policy.min_length {
            return Err(Error::invalid(
                "password_too_short",
                format!(
                    "the password must be at least {} characters long",
                    policy.min_length
                ),
            ));
        }
        let lowered = pw.to_lowercase();
        if COMMON_PASSWORDS.contains(lowered.as_str()) {
            return Err(Error::invalid(
                "password_too_common",
                "this password is on a list of commonly used passwords; choose another",
            ));
        }
        let local = email.as_str().split('@').next().unwrap_or_default();
        if lowered == email.as_str()
            || (local.len() >= 3 && lowered == local)
            || lowered.contains("authctl") && lowered.len() < 16
        {
            return Err(Error::invalid(
                "password_too_guessable",
                "the password may not be your email address, its name part or the service name",
            ));
        }
        if pw
            .chars()
            .all(|c| c == pw.chars().next().unwrap_or_default())
        {
            return Err(Error::invalid(
                "password_too_guessable",
                "the password may not repeat a single character",
            ));
        }
        Ok(Self(raw.clone()))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// Refuses a password longer than the policy allows, before any hashing is done.
pub fn check_length(pw: &str, policy: &PasswordConfig) -> Result<()> {
    // Bytes first: a cheap bound that holds even for a megabyte of input.
    if pw.len() > policy.max_length * 4 || pw.chars().count() > policy.max_length {
        return Err(Error::invalid(
            "password_too_long",
            format!(
                "the password may be at most {} characters long",
                policy.max_length
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordConfig {
        PasswordConfig::default()
    }

    fn email() -> Email {
        Email::parse("test@example.com").expect("valid")
    }

    fn code(result: Result<NewPassword>) -> &'static str {
        match result {
            Err(Error::InvalidInput { code, .. }) => code,
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => "ok",
        }
    }

    #[test]
    fn emails_are_normalised_to_lower_case() {
        assert_eq!(
            Email::parse("  Test@Example.COM ").expect("valid").as_str(),
            "test@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@exa_mple.com",
            "a..b@example.com",
            "a@-x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_seed_walkthrough_password_passes() {
        assert_eq!(
            code(NewPassword::parse(&"pass12345".into(), &policy(), &email())),
            "ok"
        );
    }

    #[test]
    fn password_policy_gives_the_reason() {
        assert_eq!(
            code(NewPassword::parse(&"short".into(), &policy(), &email())),
            "password_too_short"
        );
        assert_eq!(
            code(NewPassword::parse(
                &"password123".into(),
                &policy(),
                &email()
            )),
            "password_too_common"
        );
        assert_eq!(
            code(NewPassword::parse(
                &"Password123".into(),
                &policy(),
                &email()
            )),
            "password_too_common"
        );
        assert_eq!(
            code(NewPassword::parse(
                &"test@example.com".into(),
                &policy(),
                &email()
            )),
            "password_too_guessable"
        );
        assert_eq!(
            code(NewPassword::parse(
                &"x".repeat(257).into(),
                &policy(),
                &email()
            )),
            "password_too_long"
        );
        assert_eq!(
            code(NewPassword::parse(
                &"🔐🐱🌍".repeat(5).into(),
                &policy(),
                &email()
            )),
            "ok"
        );
    }
}
