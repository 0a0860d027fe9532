//! What each target accepts as an account name, the default template of
//! each (valid for every role name and display name), and the check that
//! a role's template fits its target before the role is stored.
//!
//! Sources: PolarDB CreateAccount `AccountName` (2-16 characters,
//! lower-case letters, digits and `_`, a lower-case letter first, a letter
//! or digit last, not `root` or `admin`); DCS CreateAclAccount
//! `account_name` (1-64 characters, letters, digits, `-` and `_`, a letter
//! first; `default` is Redis's own user). See /work/research-13.md §3.

use std::fmt;

use rand::RngCore;
use rand::SeedableRng;
use rand::rngs::StdRng;
use time::OffsetDateTime;
use time::macros::datetime;

use super::{Template, TemplateData, TemplateError};

/// The kind of account a template names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AccountKind {
    /// A PolarDB database account.
    Polardb,
    /// A DCS (Redis) ACL user.
    DcsAcl,
}

/// Names PolarDB names as reserved ("cannot be root, admin, or another
/// username that is reserved by the system"; it lists no others).
const POLARDB_RESERVED: &[&str] = &["root", "admin"];

/// PolarDB's default: Vault's 16-character MySQL shape, made to fit.
/// Role names hold only letters, digits, `-`, `_` and `.` (the path name
/// rule), so lowercase and two replaces leave `[a-z0-9_]`; `v` comes
/// first; 2 + 4 + 1 + 9 = 16 characters at most, and the last is one of
/// `random`'s, a letter or digit. The display name is left out: it can
/// hold any character, and no helper can filter those.
const POLARDB_DEFAULT: &str = r#"{{ printf "v_%s_%s" (.RoleName | truncate 4 | replace "-" "_" | replace "." "_") (random 9) | lowercase | truncate 16 }}"#;

/// DCS's default: Vault's PostgreSQL shape without the display name (for
/// the same reason). DCS takes mixed case and `-`, so only `.` is
/// replaced; 2 + 24 + 1 + 20 + 1 + 10 = 58 characters until the year
/// 2286, and a digit of `unix_time` last.
const DCS_DEFAULT: &str = r#"{{ printf "v-%s-%s-%s" (.RoleName | replace "." "-" | truncate 24) (random 20) (unix_time) | truncate 64 }}"#;

impl AccountKind {
    fn label(self) -> &'static str {
        match self {
            AccountKind::Polardb => "PolarDB account",
            AccountKind::DcsAcl => "DCS ACL account",
        }
    }

    /// The template of a role that sets none.
    pub(crate) fn default_template(self) -> &'static str {
        match self {
            AccountKind::Polardb => POLARDB_DEFAULT,
            AccountKind::DcsAcl => DCS_DEFAULT,
        }
    }

    /// Whether the target takes `name`, and if not which rule it breaks.
    pub(crate) fn check_name(self, name: &str) -> Result<(), NameError> {
        let broken = |rule: String| NameError {
            kind: self,
            name: name.to_owned(),
            rule,
        };
        let (min, max) = match self {
            AccountKind::Polardb => (2, 16),
            AccountKind::DcsAcl => (1, 64),
        };
        let length = name.chars().count();
        if !(min..=max).contains(&length) {
            return Err(broken(format!(
                "it must be {min} to {max} characters long, not {length}"
            )));
        }
        let (allowed, charset): (fn(char) -> bool, _) = match self {
            AccountKind::Polardb => (
                |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_',
                "lower-case letters, digits and '_'",
            ),
            AccountKind::DcsAcl => (
                |c| c.is_ascii_alphanumeric() || c == '_' || c == '-',
                "letters, digits, '-' and '_'",
            ),
        };
        if let Some((i, c)) = name.chars().enumerate().find(|&(_, c)| !allowed(c)) {
            return Err(broken(format!(
                "it may hold only {charset}, and character {} is {c:?}",
                i + 1
            )));
        }
        let first = name.chars().next().unwrap_or(' ');
        let last = name.chars().last().unwrap_or(' ');
        match self {
            AccountKind::Polardb if !first.is_ascii_lowercase() => {
                Err(broken("it must start with a lower-case letter".to_owned()))
            }
            AccountKind::Polardb if !last.is_ascii_alphanumeric() => {
                Err(broken("it must end with a letter or a digit".to_owned()))
            }
            AccountKind::Polardb if POLARDB_RESERVED.contains(&name) => {
                Err(broken("PolarDB reserves that name".to_owned()))
            }
            AccountKind::DcsAcl if !first.is_ascii_alphabetic() => {
                Err(broken("it must start with a letter".to_owned()))
            }
            AccountKind::DcsAcl if name == "default" => Err(broken(
                "that is Redis's default user, which the instance password controls".to_owned(),
            )),
            _ => Ok(()),
        }
    }
}

/// A rendered name the target would refuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NameError {
    pub kind: AccountKind,
    pub name: String,
    /// The rule broken, in words.
    pub rule: String,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "renders {:?}, which is not a valid {} name: {}",
            self.name,
            self.kind.label(),
            self.rule
        )
    }
}

impl std::error::Error for NameError {}

impl Template {
    /// The account name for one request: rendered and checked against the
    /// target's rules (before anything is written or created).
    pub(crate) fn username(
        &self,
        kind: AccountKind,
        data: &TemplateData<'_>,
        now: OffsetDateTime,
        rng: &mut dyn RngCore,
    ) -> Result<String, TemplateError> {
        let name = self.render(data, now, rng)?;
        kind.check_name(&name)?;
        Ok(name)
    }
}

/// Shorthand for [`Template::parse`] then [`Template::username`].
#[cfg(test)]
pub(crate) fn render_username(
    kind: AccountKind,
    template: &str,
    data: &TemplateData<'_>,
    now: OffsetDateTime,
    rng: &mut dyn RngCore,
) -> Result<String, TemplateError> {
    Template::parse(template)?.username(kind, data, now, rng)
}

/// Role names as awkward as the path name rule lets them be.
pub(super) fn sample_role_names() -> Vec<String> {
    let long: String = "Reader-Team.EU_".repeat(9).chars().take(127).collect();
    let mut names: Vec<String> = ["a", "R", "db", "9lives", "App-Reader.EU_1", "x.y-z_w"]
        .map(str::to_owned)
        .to_vec();
    names.push(long + "9");
    names
}

/// Display names as they come: any text.
fn sample_display_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "token",
        "",
        "userpass-Alice.Smith@example.com",
        "ldap-Ünïcødé-名前",
        " spaced name ",
        "-",
        "root",
        "admin",
        "default",
    ]
    .map(str::to_owned)
    .to_vec();
    names.push("oidc-".repeat(60));
    names
}

/// The write-time check: parses `template`, then renders it for awkward
/// role and display names, at two instants and with fixed randomness (so
/// the verdict is the same every time), and reports the first name the
/// target would refuse. A template that leans on luck (`random 5` first,
/// for PolarDB) fails here almost surely; the creds path checks each name
/// again.
pub(crate) fn check_template(kind: AccountKind, template: &str) -> Result<Template, TemplateError> {
    let parsed = Template::parse(template)?;
    let mut rng = StdRng::seed_from_u64(13);
    let instants = [
        datetime!(2026-12-07 12:34:56.789 UTC),
        datetime!(2099-12-31 23:59:59.999_999_999 UTC),
    ];
    for role_name in sample_role_names() {
        for display_name in sample_display_names() {
            for now in instants {
                let data = TemplateData {
                    role_name: &role_name,
                    display_name: &display_name,
                };
                if let Err(error) = parsed.username(kind, &data, now, &mut rng) {
                    return Err(TemplateError::Sample {
                        role_name,
                        display_name,
                        error: Box::new(error),
                    });
                }
            }
        }
    }
    Ok(parsed)
}
