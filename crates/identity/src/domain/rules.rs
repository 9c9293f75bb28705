//! Identity's rules as pure functions: what an email, a password, a phone number, a consent
//! choice and a role set must look like; when sign-in attempts are throttled; what a presented
//! refresh token means.

use std::collections::{BTreeMap, BTreeSet};

use marquee_platform::validation::Violations;
use serde::{Deserialize, Serialize};

use super::model::{Consent, ConsentChannel, ConsentChoice, Role};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted (hashing cost grows with length).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// A syntactically valid email address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    /// As given, trimmed.
    pub address: String,
    /// Lower-cased: what uniqueness and sign-in compare.
    pub key: String,
}

impl Email {
    /// Parses an address; the violation names `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Email, Violations> {
        let address = raw.trim();
        if address.is_empty() {
            return Err(Violations::one(field, "required"));
        }
        let bad = || Violations::one(field, "must be an email address such as name@example.com");
        if address.len() > 254 || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = address.split_once('@').ok_or_else(bad)?;
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return Err(bad());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(bad());
        }
        Ok(Email {
            address: address.to_owned(),
            key: address.to_lowercase(),
        })
    }
}

/// The lower-cased, trimmed form sign-in compares (no validation: sign-in never says whether an
/// address is well formed either).
pub fn email_key(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// Checks a new password: at least [`MIN_PASSWORD_CHARS`] characters, characters of at least two
/// classes (lower case, upper case, digits, others), and not the email address.
pub fn check_password(v: &mut Violations, field: &str, password: &str, email: &str) {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        v.add(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        );
        return;
    }
    if chars > MAX_PASSWORD_CHARS {
        v.add(
            field,
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        );
        return;
    }
    let mut classes = [false; 4];
    for c in password.chars() {
        let i = if c.is_lowercase() {
            0
        } else if c.is_uppercase() {
            1
        } else if c.is_numeric() {
            2
        } else {
            3
        };
        classes[i] = true;
    }
    if classes.iter().filter(|c| **c).count() < 2 {
        v.add(
            field,
            "must mix at least two of: lower case, upper case, digits, other characters",
        );
        return;
    }
    if !email.trim().is_empty() && password.trim().to_lowercase() == email_key(email) {
        v.add(field, "must not be the email address");
    }
}

/// Checks an optional phone number: empty, or E.164 (`+` and 8 to 15 digits).
pub fn check_phone(v: &mut Violations, field: &str, phone: &str) {
    if phone.is_empty() {
        return;
    }
    let ok = phone
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()));
    v.check(
        ok,
        field,
        "must be in E.164 form, for example +919876543210",
    );
}

/// Checks consent choices: at most one per channel, a policy version of 1 to 64 printable
/// characters.
pub fn check_consents(v: &mut Violations, field: &str, choices: &[ConsentChoice]) {
    let mut seen = BTreeSet::new();
    for (i, c) in choices.iter().enumerate() {
        if !seen.insert(c.channel) {
            v.add(format!("{field}[{i}].channel"), "is given twice");
        }
        let pv = &c.policy_version;
        if pv.is_empty() {
            v.add(format!("{field}[{i}].policy_version"), "required");
        } else if pv.len() > 64 || !pv.bytes().all(|b| b.is_ascii_graphic()) {
            v.add(
                format!("{field}[{i}].policy_version"),
                "must be 1 to 64 printable ASCII characters",
            );
        }
    }
}

/// The choices recorded at sign-up: the ones given, and "not granted" for channels not
/// mentioned (under the policy version of the first choice given, or `unspecified`).
pub fn sign_up_consents(choices: &[ConsentChoice]) -> Vec<ConsentChoice> {
    let version = choices
        .first()
        .map(|c| c.policy_version.clone())
        .unwrap_or_else(|| "unspecified".to_owned());
    let mut out = choices.to_vec();
    for channel in ConsentChannel::ALL {
        if !choices.iter().any(|c| c.channel == channel) {
            out.push(ConsentChoice {
                channel,
                granted: false,
                policy_version: version.clone(),
            });
        }
    }
    out.sort_by_key(|c| c.channel);
    out
}

/// The newest choice per channel of a history ordered oldest first.
pub fn current_consents(history: &[Consent]) -> Vec<Consent> {
    let mut newest: BTreeMap<ConsentChannel, &Consent> = BTreeMap::new();
    for c in history {
        newest.insert(c.channel, c);
    }
    newest.into_values().cloned().collect()
}

fn check_theatres(v: &mut Violations, field: &str, theatres: &[String]) {
    let mut seen = BTreeSet::new();
    for (i, t) in theatres.iter().enumerate() {
        if t.is_empty() || t.len() > 64 || !t.bytes().all(|b| b.is_ascii_graphic()) {
            v.add(format!("{field}[{i}]"), "must be a theatre id");
        } else if !seen.insert(t) {
            v.add(format!("{field}[{i}]"), "is given twice");
        }
    }
}

/// Checks the roles and theatres of an account an admin creates: at least one role, never
/// `service` (services are clients), theatres required for staff and partners and refused
/// otherwise.
pub fn check_user_roles(v: &mut Violations, roles: &[Role], theatres: &[String]) {
    if roles.is_empty() {
        v.add("roles", "required");
        return;
    }
    if roles.contains(&Role::Service) {
        v.add(
            "roles",
            "service is a client role; register a client instead",
        );
    }
    let scoped = roles.contains(&Role::Staff) || roles.contains(&Role::Partner);
    if scoped && theatres.is_empty() {
        v.add("theatre_ids", "required for staff and partners");
    }
    if !scoped && !theatres.is_empty() {
        v.add(
            "theatre_ids",
            "only staff and partners are scoped to theatres",
        );
    }
    check_theatres(v, "theatre_ids", theatres);
}

/// Checks a client an admin registers: a display name, role `service` or `partner`, theatres
/// for (and only for) partners.
pub fn check_client(v: &mut Violations, display_name: &str, role: Role, theatres: &[String]) {
    let name = display_name.trim();
    if name.is_empty() {
        v.add("display_name", "required");
    } else if name.chars().count() > 100 {
        v.add("display_name", "must be at most 100 characters");
    }
    match role {
        Role::Service => v.check(
            theatres.is_empty(),
            "theatre_ids",
            "services are not scoped to theatres",
        ),
        Role::Partner => v.check(!theatres.is_empty(), "theatre_ids", "required for partners"),
        _ => v.add("role", "must be ROLE_SERVICE or ROLE_PARTNER"),
    }
    check_theatres(v, "theatre_ids", theatres);
}

/// How many failed sign-ins are tolerated within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit {
    /// Failures allowed within the window; the next attempt is refused.
    pub max_failures: u64,
    /// The window, in seconds.
    pub window_secs: i64,
}

impl FailureLimit {
    /// Seconds until attempts are allowed again, given the failures recorded since
    /// `now - window_secs` and the oldest of them; `None` while attempts are allowed.
    pub fn retry_after(&self, failures: u64, oldest: Option<i64>, now: i64) -> Option<i64> {
        if failures < self.max_failures.max(1) {
            return None;
        }
        let oldest = oldest.unwrap_or(now);
        Some((oldest + self.window_secs - now).max(1))
    }
}

/// What a presented refresh token means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshVerdict {
    /// Unused, unexpired, family alive: rotate it.
    Rotate,
    /// Used before: someone replays it. Revoke the whole family.
    RevokeFamily,
    /// Expired, or its family is revoked: refuse.
    Refuse,
}

/// The verdict on a refresh token.
pub fn refresh_verdict(
    used: bool,
    family_revoked: bool,
    expires_at: i64,
    now: i64,
) -> RefreshVerdict {
    if family_revoked {
        RefreshVerdict::Refuse
    } else if used {
        RefreshVerdict::RevokeFamily
    } else if expires_at <= now {
        RefreshVerdict::Refuse
    } else {
        RefreshVerdict::Rotate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password_errors(password: &str, email: &str) -> Vec<String> {
        let mut v = Violations::new();
        check_password(&mut v, "password", password, email);
        v.iter().map(|x| x.description.clone()).collect()
    }

    #[test]
    fn emails() {
        let e = Email::parse("email", "  Asha.Rao@Example.COM ").expect("valid");
        assert_eq!(e.address, "Asha.Rao@Example.COM");
        assert_eq!(e.key, "asha.rao@example.com");
        for bad in [
            "",
            "asha",
            "asha@",
            "@example.com",
            "asha@example",
            "a b@example.com",
            "asha@@example.com",
            "asha@exa_mple.com",
            "asha@-example.com",
        ] {
            let err = Email::parse("email", bad).expect_err(bad);
            assert_eq!(err.iter().next().map(|v| v.field.as_str()), Some("email"));
        }
    }

    #[test]
    fn passwords() {
        assert!(password_errors("correct-horse-9", "a@b.co").is_empty());
        assert!(password_errors("Sh0rt!", "a@b.co")[0].contains("at least 10"));
        assert!(password_errors("alllowercaseletters", "a@b.co")[0].contains("two of"));
        assert!(password_errors("12345678901234", "a@b.co")[0].contains("two of"));
        assert!(password_errors("Asha@Example.com", "asha@example.com")[0].contains("email"));
        assert!(password_errors(&"aB".repeat(600), "a@b.co")[0].contains("at most"));
    }

    #[test]
    fn phones() {
        let check = |p: &str| {
            let mut v = Violations::new();
            check_phone(&mut v, "phone", p);
            v.is_empty()
        };
        assert!(check(""));
        assert!(check("+919876543210"));
        assert!(!check("9876543210"));
        assert!(!check("+91 98765 43210"));
        assert!(!check("+123"));
    }

    #[test]
    fn consents() {
        let choice = |channel, granted| ConsentChoice {
            channel,
            granted,
            policy_version: "2026-11".into(),
        };
        let mut v = Violations::new();
        check_consents(
            &mut v,
            "consents",
            &[
                choice(ConsentChannel::Email, true),
                choice(ConsentChannel::Email, false),
            ],
        );
        assert_eq!(
            v.iter().next().map(|x| x.field.as_str()),
            Some("consents[1].channel")
        );
        let filled = sign_up_consents(&[choice(ConsentChannel::Sms, true)]);
        assert_eq!(
            filled,
            vec![
                choice(ConsentChannel::Email, false),
                choice(ConsentChannel::Sms, true)
            ]
        );
        let rec = |channel, granted, at| Consent {
            channel,
            granted,
            policy_version: "v".into(),
            recorded_at: at,
        };
        let current = current_consents(&[
            rec(ConsentChannel::Email, false, 1),
            rec(ConsentChannel::Sms, false, 1),
            rec(ConsentChannel::Email, true, 2),
        ]);
        assert_eq!(
            current,
            vec![
                rec(ConsentChannel::Email, true, 2),
                rec(ConsentChannel::Sms, false, 1)
            ]
        );
    }

    #[test]
    fn roles() {
        let errs = |roles: &[Role], theatres: &[&str]| {
            let mut v = Violations::new();
            let t: Vec<String> = theatres.iter().map(|s| (*s).to_owned()).collect();
            check_user_roles(&mut v, roles, &t);
            v.iter().map(|x| x.field.clone()).collect::<Vec<_>>()
        };
        assert!(errs(&[Role::Admin], &[]).is_empty());
        assert!(errs(&[Role::Staff], &["t1"]).is_empty());
        assert_eq!(errs(&[Role::Staff], &[]), vec!["theatre_ids"]);
        assert_eq!(errs(&[Role::Admin], &["t1"]), vec!["theatre_ids"]);
        assert_eq!(errs(&[Role::Service], &[]), vec!["roles"]);
        assert_eq!(errs(&[], &[]), vec!["roles"]);
        let mut v = Violations::new();
        check_client(&mut v, "booking", Role::Customer, &[]);
        assert_eq!(v.iter().next().map(|x| x.field.as_str()), Some("role"));
    }

    #[test]
    fn failure_limits() {
        let limit = FailureLimit {
            max_failures: 5,
            window_secs: 900,
        };
        assert_eq!(limit.retry_after(4, Some(100), 200), None);
        assert_eq!(limit.retry_after(5, Some(100), 200), Some(800));
        assert_eq!(limit.retry_after(9, Some(100), 1_000), Some(1));
    }

    #[test]
    fn refresh_verdicts() {
        use RefreshVerdict::*;
        assert_eq!(refresh_verdict(false, false, 100, 50), Rotate);
        assert_eq!(refresh_verdict(true, false, 100, 50), RevokeFamily);
        assert_eq!(refresh_verdict(true, true, 100, 50), Refuse);
        assert_eq!(refresh_verdict(false, false, 100, 100), Refuse);
    }
}
