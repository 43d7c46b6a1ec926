//! Bearer tokens: `wormd_` and 43 base64url characters (256 random bits).
//! The config keeps only each token's SHA-256 (a slow hash buys nothing
//! against a 256-bit secret); a request's token is hashed and compared
//! with every configured hash in constant time.

use crate::config::{Scope, TokenConfig};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use sha2::{Digest, Sha256};

/// A new token, from the OS's random source.
pub fn generate() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(format!("wormd_{}", B64URL.encode(bytes)))
}

/// The hash the config keeps for `token`: 64 lowercase hex digits.
pub fn hash(token: &str) -> String {
    wormlog::format::hex(Sha256::digest(token.as_bytes()))
}

/// Who a request's token belongs to, and what it may do.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's principal (access records name it).
    pub name: String,
    logs: Vec<String>,
    scopes: Vec<Scope>,
}

impl Principal {
    /// Whether it may do `scope` on log `log` (`admin` includes `read`).
    pub fn may(&self, scope: Scope, log: &str) -> bool {
        let on_log = self.logs.iter().any(|l| l == "*" || l == log);
        let has = self.scopes.contains(&scope)
            || (scope == Scope::Read && self.scopes.contains(&Scope::Admin));
        on_log && has
    }

    /// Whether it administers every log (`"*"` and `admin`).
    pub fn admin_of_every_log(&self) -> bool {
        self.is_admin() && self.logs.iter().any(|l| l == "*")
    }

    /// Whether it holds `admin` on any log (for `/metrics`).
    pub fn is_admin(&self) -> bool {
        self.scopes.contains(&Scope::Admin)
    }
}

/// Why a request gets no principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token no `[[token]]` has.
    Unknown,
}

/// The configured tokens.
#[derive(Debug, Clone)]
pub struct Tokens {
    tokens: Vec<TokenConfig>,
}

impl Tokens {
    /// The tokens of a checked config.
    pub fn new(tokens: Vec<TokenConfig>) -> Tokens {
        Tokens { tokens }
    }

    /// The principal of `header` (an `Authorization` header's value).
    pub fn check(&self, header: Option<&str>) -> Result<Principal, Denied> {
        // The scheme's name is case-insensitive (RFC 9110 §11.1).
        let token = header
            .and_then(|h| h.trim_start().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or(Denied::Missing)?;
        let got = hash(token);
        // Every hash is compared, each in constant time: no early exit
        // tells which configured hash a guess came near.
        let mut found = None;
        for t in &self.tokens {
            if same(got.as_bytes(), t.sha256.as_bytes()) {
                found = Some(t);
            }
        }
        let t = found.ok_or(Denied::Unknown)?;
        Ok(Principal {
            name: t.principal.clone(),
            logs: t.logs.clone(),
            scopes: t.scopes.clone(),
        })
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(scopes: Vec<Scope>, logs: &[&str]) -> (Tokens, String) {
        let token = generate().unwrap();
        let t = TokenConfig {
            principal: "ops".into(),
            sha256: hash(&token),
            logs: logs.iter().map(|s| s.to_string()).collect(),
            scopes,
        };
        (Tokens::new(vec![t]), token)
    }

    #[test]
    fn only_the_configured_token_is_accepted() {
        let (t, token) = tokens(vec![Scope::Append], &["audit"]);
        let p = t.check(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(p.name, "ops");
        assert_eq!(t.check(None).unwrap_err(), Denied::Missing);
        assert_eq!(
            t.check(Some(&format!("bearer {token}"))).unwrap().name,
            "ops"
        );
        assert_eq!(
            t.check(Some(&format!("Basic {token}"))).unwrap_err(),
            Denied::Missing
        );
        assert_eq!(t.check(Some(&token)).unwrap_err(), Denied::Missing);
        let wrong = generate().unwrap();
        assert_eq!(
            t.check(Some(&format!("Bearer {wrong}"))).unwrap_err(),
            Denied::Unknown
        );
    }

    #[test]
    fn a_token_may_only_its_scopes_on_its_logs() {
        let (t, token) = tokens(vec![Scope::Append], &["audit"]);
        let p = t.check(Some(&format!("Bearer {token}"))).unwrap();
        assert!(p.may(Scope::Append, "audit"));
        assert!(!p.may(Scope::Read, "audit"));
        assert!(!p.may(Scope::Append, "other"));
        let (t, token) = tokens(vec![Scope::Admin], &["*"]);
        let p = t.check(Some(&format!("Bearer {token}"))).unwrap();
        assert!(p.may(Scope::Read, "any") && !p.may(Scope::Append, "any"));
    }
}
