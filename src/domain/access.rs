//! Who may do what on the shop's side, and when a sign-in stops being valid.

use std::time::Duration;

use super::order::string_enum;

string_enum! {
    /// A staff member's role; each includes everything the ones after it may do.
    Role { Owner = "owner", Operator = "operator", Viewer = "viewer" }
}

/// What a request needs its user to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// See orders, boards, timelines and messages.
    Read,
    /// Move orders, attach photos and notes, retry messages, edit priority and due dates.
    Operate,
    /// Manage users, API tokens, display links and the shop's settings.
    Administer,
}

impl Role {
    /// Whether this role grants `needed`.
    pub fn allows(self, needed: Permission) -> bool {
        match needed {
            Permission::Read => true,
            Permission::Operate => matches!(self, Role::Owner | Role::Operator),
            Permission::Administer => self == Role::Owner,
        }
    }
}

/// How long a sign-in lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Signed out after this long without a request.
    pub idle: Duration,
    /// Signed out this long after signing in, however active.
    pub absolute: Duration,
}

/// Why a stored session no longer signs anybody in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Signed out (here, everywhere, or by an owner).
    Revoked,
    /// The user was disabled.
    Disabled,
    /// No request for longer than the idle timeout.
    Idle,
    /// Older than the absolute timeout.
    Expired,
}

/// A stored session's times, as far as validity is concerned (epoch ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimes {
    /// Last request.
    pub last_seen: i64,
    /// Absolute end.
    pub expires: i64,
    /// When it was revoked.
    pub revoked: Option<i64>,
    /// When its user was disabled.
    pub disabled: Option<i64>,
}

impl SessionPolicy {
    /// Why the session has ended at `now`, or `None` while it is valid.
    pub fn ended(&self, s: &SessionTimes, now: i64) -> Option<Ended> {
        if s.revoked.is_some() {
            Some(Ended::Revoked)
        } else if s.disabled.is_some() {
            Some(Ended::Disabled)
        } else if now >= s.expires {
            Some(Ended::Expired)
        } else if now.saturating_sub(s.last_seen) >= millis(self.idle) {
            Some(Ended::Idle)
        } else {
            None
        }
    }

    /// Whether `last_seen` is old enough to be worth writing again: often enough that the idle
    /// timeout is exact to a tenth of itself, rarely enough that reading pages writes little.
    pub fn should_touch(&self, last_seen: i64, now: i64) -> bool {
        now.saturating_sub(last_seen) >= (millis(self.idle) / 10).min(60_000)
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Shortest password accepted (NIST SP 800-63B asks for at least 8; we ask a little more).
pub const MIN_PASSWORD: usize = 10;
/// Longest password accepted: Argon2 takes any length, but a megabyte "password" is an attack.
pub const MAX_PASSWORD: usize = 256;

/// Checks a new password, in characters; composition rules are deliberately absent (NIST).
pub fn check_password(password: &str, email: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        return Err(format!("a password needs at least {MIN_PASSWORD} characters"));
    }
    if n > MAX_PASSWORD {
        return Err(format!("a password may have at most {MAX_PASSWORD} characters"));
    }
    if password.eq_ignore_ascii_case(email) {
        return Err("the password must not be the email address".to_owned());
    }
    Ok(())
}

/// Normalises and checks an email address used to sign in.
pub fn normalize_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_control() || c.is_whitespace())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        });
    if valid { Ok(email) } else { Err(format!("`{}` is not an email address", raw.trim())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: SessionPolicy = SessionPolicy { idle: Duration::from_secs(600), absolute: Duration::from_secs(3600) };

    fn times(last_seen: i64, expires: i64) -> SessionTimes {
        SessionTimes { last_seen, expires, revoked: None, disabled: None }
    }

    #[test]
    fn roles_include_the_ones_below() {
        assert!(Role::Owner.allows(Permission::Administer));
        assert!(Role::Owner.allows(Permission::Operate));
        assert!(!Role::Operator.allows(Permission::Administer));
        assert!(Role::Operator.allows(Permission::Operate));
        assert!(!Role::Viewer.allows(Permission::Operate));
        assert!(Role::Viewer.allows(Permission::Read));
    }

    #[test]
    fn a_session_ends_when_idle_expired_revoked_or_disabled() {
        assert_eq!(POLICY.ended(&times(0, 3_600_000), 599_999), None);
        assert_eq!(POLICY.ended(&times(0, 3_600_000), 600_000), Some(Ended::Idle));
        assert_eq!(POLICY.ended(&times(3_599_000, 3_600_000), 3_600_000), Some(Ended::Expired));
        let revoked = SessionTimes { revoked: Some(1), ..times(0, 3_600_000) };
        assert_eq!(POLICY.ended(&revoked, 1), Some(Ended::Revoked));
        let disabled = SessionTimes { disabled: Some(1), ..times(0, 3_600_000) };
        assert_eq!(POLICY.ended(&disabled, 1), Some(Ended::Disabled));
    }

    #[test]
    fn last_seen_is_written_at_most_every_tenth_of_the_idle_time() {
        assert!(!POLICY.should_touch(0, 59_999));
        assert!(POLICY.should_touch(0, 60_000));
        let short = SessionPolicy { idle: Duration::from_secs(2), ..POLICY };
        assert!(short.should_touch(0, 200));
        assert!(!short.should_touch(0, 199));
    }

    #[test]
    fn passwords_and_emails_are_checked() {
        assert!(check_password("short", "a@b.co").is_err());
        assert!(check_password("correct horse battery", "a@b.co").is_ok());
        assert!(check_password("A@B.CO.UK.XX", "a@b.co.uk.xx").is_err());
        assert_eq!(normalize_email(" Ann@Shop.Example ").as_deref(), Ok("ann@shop.example"));
        assert!(normalize_email("ann@shop").is_err());
        assert!(normalize_email("ann shop@x.io").is_err());
        assert!(normalize_email("@x.io").is_err());
    }
}
