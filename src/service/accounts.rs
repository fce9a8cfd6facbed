//! Staff accounts: users, passwords (Argon2id), sessions and shop-floor display links.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::{Service, ServiceError};
use crate::crypto::{random_token, token_hash};
use crate::domain::access::{self, Ended, Role, SessionPolicy, SessionTimes};
use crate::store::{self, accounts};

/// Argon2id at OWASP's recommended minimum: 19 MiB, two passes, one lane.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (slow on purpose: run it off the async threads).
pub fn hash_password(password: &str) -> Result<String, ServiceError> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt[..]);
    let salt = SaltString::encode_b64(&salt).map_err(|e| ServiceError::broken(format!("password salt: {e}")))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::broken(format!("cannot hash a password: {e}")))
}

/// Whether `password` matches a stored PHC string (the parameters are read from it).
fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash of nothing anyone knows, verified when the email is unknown so that the answer takes
/// as long as for a known one (no account enumeration by timing).
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random_token(24)).unwrap_or_default())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ServiceError::internal("password hashing task failed", e))
}

/// A signed-in staff member, as every dashboard request sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    /// User id.
    pub user_id: i64,
    /// Session id.
    pub session_id: i64,
    /// Sign-in email: the actor recorded for what they do.
    pub email: String,
    /// Display name.
    pub name: String,
    /// What they may do.
    pub role: Role,
}

/// A new user's account, as the CLI or the settings page hand it over.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Sign-in email.
    pub email: &'a str,
    /// Display name; defaults to the email's local part.
    pub name: Option<&'a str>,
    /// Role.
    pub role: Role,
    /// Password, checked against the password rules.
    pub password: &'a str,
}

/// Why a sign-in failed (deliberately vague towards the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// Unknown email, wrong password or disabled account: the same answer for each.
    Rejected,
}

impl Service {
    fn session_policy(&self) -> SessionPolicy {
        let c = &self.config().staff;
        SessionPolicy { idle: c.session_idle, absolute: c.session_absolute }
    }

    /// Adds a user; the actor is who did it (a user's email, or `cli`).
    pub async fn add_user(&self, new: NewUser<'_>, actor: &str) -> Result<accounts::UserRow, ServiceError> {
        let email = access::normalize_email(new.email).map_err(|m| ServiceError::invalid("email", m))?;
        access::check_password(new.password, &email).map_err(|m| ServiceError::invalid("password", m))?;
        let name = match new.name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) if n.chars().count() > 100 || n.chars().any(char::is_control) => {
                return Err(ServiceError::invalid("name", "a name needs 1-100 characters and no control characters"));
            }
            Some(n) => n.to_owned(),
            None => email.split('@').next().unwrap_or(&email).to_owned(),
        };
        let password = new.password.to_owned();
        let hash = blocking(move || hash_password(&password)).await??;
        let now = store::now_ms();
        let id = accounts::insert_user(self.db(), &email, &name, new.role.as_str(), &hash, now)
            .await?
            .ok_or_else(|| ServiceError::invalid("email", format!("a user with the email {email} already exists")))?;
        accounts::audit(self.db(), actor, "user.added", &email, new.role.as_str(), now).await?;
        accounts::user_by_id(self.db(), id).await?.ok_or_else(|| ServiceError::broken("a user vanished after insert"))
    }

    /// Every user, by email.
    pub async fn users(&self) -> Result<Vec<accounts::UserRow>, ServiceError> {
        Ok(accounts::users(self.db()).await?)
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<accounts::UserRow>, ServiceError> {
        Ok(accounts::user_by_id(self.db(), id).await?)
    }

    /// The user with this email.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<accounts::UserRow>, ServiceError> {
        let Ok(email) = access::normalize_email(email) else { return Ok(None) };
        Ok(accounts::user_by_email(self.db(), &email).await?)
    }

    /// Disables or re-enables a user; disabling ends all their sessions at once. The last
    /// enabled owner cannot be disabled (nobody could manage the shop any more).
    pub async fn set_user_disabled(&self, user_id: i64, disabled: bool, actor: &str) -> Result<(), ServiceError> {
        self.edit_user(user_id, actor, |user, owners| {
            if disabled && user.role == "owner" && user.disabled_at.is_none() && owners <= 1 {
                return Err(ServiceError::invalid("user", "the last owner cannot be disabled"));
            }
            Ok(UserEdit::Disabled(disabled))
        })
        .await
    }

    /// Changes a user's role; the last enabled owner keeps theirs.
    pub async fn set_user_role(&self, user_id: i64, role: Role, actor: &str) -> Result<(), ServiceError> {
        self.edit_user(user_id, actor, |user, owners| {
            if role != Role::Owner && user.role == "owner" && user.disabled_at.is_none() && owners <= 1 {
                return Err(ServiceError::invalid("role", "the last owner must stay an owner"));
            }
            Ok(UserEdit::Role(role))
        })
        .await
    }

    /// Sets a new password and ends the user's sessions (a reset means "someone else may
    /// know"); returns the user's email.
    pub async fn reset_password(&self, user_id: i64, password: &str, actor: &str) -> Result<String, ServiceError> {
        let user = accounts::user_by_id(self.db(), user_id).await?.ok_or_else(no_user)?;
        access::check_password(password, &user.email).map_err(|m| ServiceError::invalid("password", m))?;
        let password = password.to_owned();
        let hash = blocking(move || hash_password(&password)).await??;
        self.edit_user(user_id, actor, move |_, _| Ok(UserEdit::Password(hash))).await?;
        Ok(user.email)
    }

    async fn edit_user(
        &self,
        user_id: i64,
        actor: &str,
        decide: impl FnOnce(&accounts::UserRow, i64) -> Result<UserEdit, ServiceError>,
    ) -> Result<(), ServiceError> {
        let now = store::now_ms();
        let mut tx = self.db().begin().await?;
        let user = accounts::user_for_update(&mut tx, user_id).await?.ok_or_else(no_user)?;
        let owners = accounts::active_owners(&mut tx).await?;
        let (action, detail) = match decide(&user, owners)? {
            UserEdit::Disabled(true) => {
                accounts::set_disabled(&mut tx, user_id, Some(now), now).await?;
                accounts::revoke_user_sessions(&mut tx, user_id, now).await?;
                ("user.disabled", String::new())
            }
            UserEdit::Disabled(false) => {
                accounts::set_disabled(&mut tx, user_id, None, now).await?;
                ("user.enabled", String::new())
            }
            UserEdit::Role(role) => {
                accounts::set_role(&mut tx, user_id, role.as_str(), now).await?;
                ("user.role", format!("{} -> {role}", user.role))
            }
            UserEdit::Password(hash) => {
                accounts::set_password(&mut tx, user_id, &hash, now).await?;
                accounts::revoke_user_sessions(&mut tx, user_id, now).await?;
                ("user.password_reset", String::new())
            }
        };
        accounts::audit_in(&mut tx, actor, action, &user.email, &detail, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks a password and starts a session; returns the session token (shown once, to be
    /// put in the cookie) and who signed in.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        address: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<Result<(String, Staff), LoginFailure>, ServiceError> {
        let user = match access::normalize_email(email) {
            Ok(email) => accounts::user_by_email(self.db(), &email).await?,
            Err(_) => None,
        };
        let stored = user.as_ref().map_or_else(|| decoy_hash().to_owned(), |u| u.password_hash.clone());
        let password = password.chars().take(access::MAX_PASSWORD + 1).collect::<String>();
        let matches = blocking(move || verify_password(&password, &stored)).await?;
        let now = store::now_ms();
        let Some(user) = user.filter(|u| matches && u.disabled_at.is_none()) else {
            let who = access::normalize_email(email).unwrap_or_else(|_| "(not an email)".to_owned());
            accounts::audit(self.db(), &who, "login.failed", &who, address.unwrap_or(""), now).await?;
            return Ok(Err(LoginFailure::Rejected));
        };
        let role = Role::parse(&user.role).map_err(|e| ServiceError::broken(format!("stored role: {e}")))?;
        // A fresh, random id at every sign-in: a session id planted before login is useless.
        let token = random_token(32);
        let expires = now.saturating_add(i64::try_from(self.session_policy().absolute.as_millis()).unwrap_or(i64::MAX));
        let agent = user_agent.map(|a| a.chars().take(200).collect::<String>());
        let session_id =
            accounts::insert_session(self.db(), &token_hash(&token), user.id, now, expires, address, agent.as_deref())
                .await?;
        accounts::audit(self.db(), &user.email, "login", &user.email, address.unwrap_or(""), now).await?;
        Ok(Ok((token, Staff { user_id: user.id, session_id, email: user.email, name: user.name, role })))
    }

    /// The staff member a session token belongs to, while the session is valid; each use
    /// pushes the idle timeout back.
    pub async fn staff_session(&self, token: &str) -> Result<Option<Staff>, ServiceError> {
        let Some(row) = accounts::session_by_hash(self.db(), &token_hash(token)).await? else {
            return Ok(None);
        };
        let now = store::now_ms();
        let policy = self.session_policy();
        let times = SessionTimes {
            last_seen: row.last_seen_at,
            expires: row.expires_at,
            revoked: row.revoked_at,
            disabled: row.disabled_at,
        };
        match policy.ended(&times, now) {
            None => {}
            Some(Ended::Revoked) => return Ok(None),
            Some(_) => {
                accounts::revoke_session(self.db(), row.id, now).await?;
                return Ok(None);
            }
        }
        if policy.should_touch(row.last_seen_at, now) {
            accounts::touch_session(self.db(), row.id, now).await?;
        }
        let role = Role::parse(&row.role).map_err(|e| ServiceError::broken(format!("stored role: {e}")))?;
        Ok(Some(Staff { user_id: row.user_id, session_id: row.id, email: row.email, name: row.name, role }))
    }

    /// Ends one session.
    pub async fn logout(&self, staff: &Staff) -> Result<(), ServiceError> {
        let now = store::now_ms();
        accounts::revoke_session(self.db(), staff.session_id, now).await?;
        accounts::audit(self.db(), &staff.email, "logout", &staff.email, "", now).await?;
        Ok(())
    }

    /// Ends every session of this user, on every device.
    pub async fn logout_everywhere(&self, staff: &Staff) -> Result<u64, ServiceError> {
        let now = store::now_ms();
        let mut tx = self.db().begin().await?;
        let n = accounts::revoke_user_sessions(&mut tx, staff.user_id, now).await?;
        accounts::audit_in(&mut tx, &staff.email, "logout.everywhere", &staff.email, &n.to_string(), now).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Records an administrative action that is not about one order.
    pub async fn audit_staff(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), ServiceError> {
        Ok(accounts::audit(self.db(), actor, action, subject, detail, store::now_ms()).await?)
    }

    /// The newest staff audit entries.
    pub async fn staff_audit(&self, limit: i64) -> Result<Vec<accounts::AuditRow>, ServiceError> {
        Ok(accounts::audit_log(self.db(), limit).await?)
    }

    /// Creates a shop-floor display link; returns its URL.
    pub async fn create_display(
        &self,
        name: &str,
        workflow: Option<&str>,
        actor: &str,
    ) -> Result<String, ServiceError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(ServiceError::invalid("name", "a display needs a name of 1-100 characters"));
        }
        if let Some(wf) = workflow
            && self.workflows().get(wf).is_none()
        {
            return Err(ServiceError::invalid("workflow", format!("no workflow is called `{wf}`")));
        }
        let token = random_token(24);
        let sealed = self
            .inner
            .sealer
            .seal("display", &token)
            .map_err(|_| ServiceError::broken("cannot seal a display token"))?;
        let now = store::now_ms();
        accounts::insert_display(self.db(), name, workflow, &token_hash(&token), &sealed, actor, now).await?;
        accounts::audit(self.db(), actor, "display.created", name, workflow.unwrap_or(""), now).await?;
        Ok(self.display_url(&token))
    }

    /// The public URL of a display token.
    pub fn display_url(&self, token: &str) -> String {
        let mut url = self.config().base_url.clone();
        url.set_path(&format!("/floor/{token}"));
        url.to_string()
    }

    /// Every display link with its URL (`None` once revoked).
    pub async fn displays(&self) -> Result<Vec<(accounts::DisplayRow, Option<String>)>, ServiceError> {
        let rows = accounts::displays(self.db()).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let url = row
                    .revoked_at
                    .is_none()
                    .then(|| self.inner.sealer.open("display", &row.token_enc).ok())
                    .flatten()
                    .map(|t| self.display_url(&t));
                (row, url)
            })
            .collect())
    }

    /// The display a token opens, while it is not revoked.
    pub async fn display_by_token(&self, token: &str) -> Result<Option<accounts::DisplayRow>, ServiceError> {
        Ok(accounts::display_by_hash(self.db(), &token_hash(token)).await?)
    }

    /// Revokes a display link.
    pub async fn revoke_display(&self, id: i64, actor: &str) -> Result<bool, ServiceError> {
        let now = store::now_ms();
        let done = accounts::revoke_display(self.db(), id, now).await?;
        if done {
            accounts::audit(self.db(), actor, "display.revoked", &id.to_string(), "", now).await?;
        }
        Ok(done)
    }
}

enum UserEdit {
    Disabled(bool),
    Role(Role),
    Password(String),
}

fn no_user() -> ServiceError {
    ServiceError::invalid("user", "no such user")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_argon2id_phc_strings_at_owasp_cost() {
        let hash = hash_password("correct horse battery").expect("hashes");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("x", "not a phc string"));
        assert_ne!(hash, hash_password("correct horse battery").expect("hashes"), "salted");
    }
}
