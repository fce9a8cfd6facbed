//! API tokens: created once, shown once, stored hashed.

use crate::crypto::{random_token, token_hash};
use crate::domain::order::string_enum;
use crate::store::{self, tokens};

use super::{Service, ServiceError};

string_enum! {
    /// What a token may do; `write` includes `read`.
    Scope { Read = "read", Write = "write" }
}

/// An authenticated API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Token id.
    pub id: i64,
    /// Its name, recorded as the actor of changes it makes.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
}

impl TokenInfo {
    /// Whether the token may do what `needed` requires.
    pub fn allows(&self, needed: Scope) -> bool {
        self.scope == Scope::Write || needed == Scope::Read
    }
}

/// Prefix of every API token, so that leaked tokens are easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "kiln_";

impl Service {
    /// Creates a token and returns it in full; only its hash is kept.
    pub async fn create_token(&self, name: &str, scope: Scope) -> Result<(String, TokenInfo), ServiceError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(ServiceError::invalid("name", "a token name needs 1-100 characters"));
        }
        let token = format!("{TOKEN_PREFIX}{}", random_token(32));
        let prefix: String = token.chars().take(TOKEN_PREFIX.len() + 6).collect();
        let mut tx = self.db().begin().await?;
        let id = tokens::insert(&mut tx, name, scope.as_str(), &prefix, &token_hash(&token), store::now_ms()).await?;
        tx.commit().await?;
        Ok((token, TokenInfo { id, name: name.to_owned(), scope }))
    }

    /// The active token matching a presented bearer token.
    pub async fn authenticate(&self, token: &str) -> Result<Option<TokenInfo>, ServiceError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        // The lookup is by hash, so response time does not depend on how much of a
        // guessed token matches a real one.
        let hash = token_hash(token);
        if let Some(info) = self.inner.caches.tokens.get(&hash) {
            return Ok(Some(info));
        }
        let generation = self.inner.caches.tokens.generation();
        let Some(row) = tokens::active_by_hash(self.db(), &hash).await? else {
            return Ok(None);
        };
        let scope = Scope::parse(&row.scope).map_err(|e| ServiceError::broken(format!("stored token scope: {e}")))?;
        let info = TokenInfo { id: row.id, name: row.name, scope };
        self.inner.caches.tokens.insert(generation, hash, info.clone());
        Ok(Some(info))
    }

    /// Every token, newest first.
    pub async fn list_tokens(&self) -> Result<Vec<tokens::TokenRow>, ServiceError> {
        Ok(tokens::list(self.db()).await?)
    }

    /// Revokes a token by id; `false` if there was no such active token.
    pub async fn revoke_token(&self, id: i64) -> Result<bool, ServiceError> {
        let mut tx = self.db().begin().await?;
        let done = tokens::revoke(&mut tx, id, store::now_ms()).await?;
        tx.commit().await?;
        self.on_signal(super::Signal::Tokens);
        Ok(done)
    }
}
