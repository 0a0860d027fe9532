//! Target-aware password rules: every generated password, and every
//! password a policy produces, is checked against what the target accepts,
//! so a provider never rejects a password Vault chose.

use rand::Rng;
use rand::seq::SliceRandom;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub name: &'static str,
    pub min_len: usize,
    pub max_len: usize,
    /// The special characters allowed; no other non-alphanumeric character is.
    pub specials: &'static str,
    /// How many of {lower, upper, digit, special} must appear.
    pub min_classes: usize,
}

/// PolarDB: 8-32 characters, 3 of 4 classes, specials `!@#$%^&*()_+-=`.
pub const POLARDB: Rules = Rules {
    name: "PolarDB",
    min_len: 8,
    max_len: 32,
    specials: "!@#$%^&*()_+-=",
    min_classes: 3,
};

/// DCS: the safe intersection of the documented rules: 8-32 characters, 3
/// of 4 classes, specials without `%`, `:` and `\`.
pub const DCS: Rules = Rules {
    name: "DCS",
    min_len: 8,
    max_len: 32,
    specials: "~!@#$^&*()-_=+|{},<.>/?",
    min_classes: 3,
};

/// This plugin's own baseline for a password an operator gives (an external
/// target's, or one adopted): 8-128 printable ASCII characters without
/// whitespace. DTS and DRS jobs copy a database password, and document no
/// rule of their own beyond that; a character a job or a shell would mangle
/// is refused before anything is pushed.
pub const EXTERNAL: Rules = Rules {
    name: "Given",
    min_len: 8,
    max_len: 128,
    specials: "",
    min_classes: 0,
};

/// A character of a password, named without quoting the password.
fn shown(c: char) -> String {
    if c.is_ascii_graphic() {
        format!("'{c}'")
    } else if c == ' ' {
        "a space".to_owned()
    } else {
        format!("U+{:04X}", c as u32)
    }
}

const GENERATED_LEN: usize = 24;
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";

impl Rules {
    /// Why `password` breaks these rules, without ever quoting it.
    pub fn check(&self, password: &str) -> Result<(), String> {
        let len = password.chars().count();
        if len < self.min_len || len > self.max_len {
            return Err(format!(
                "{} passwords must be {}-{} characters long, this one has {len}",
                self.name, self.min_len, self.max_len
            ));
        }
        if self.min_classes == 0 {
            return match password.chars().find(|c| !c.is_ascii_graphic()) {
                Some(bad) => Err(format!(
                    "{} passwords must be printable ASCII without whitespace; found {}",
                    self.name,
                    shown(bad)
                )),
                None => Ok(()),
            };
        }
        if let Some(bad) = password
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && !self.specials.contains(*c))
        {
            return Err(format!(
                "{} passwords may only use letters, digits and {}; found {}",
                self.name,
                self.specials,
                shown(bad)
            ));
        }
        let classes = [
            password.chars().any(|c| c.is_ascii_lowercase()),
            password.chars().any(|c| c.is_ascii_uppercase()),
            password.chars().any(|c| c.is_ascii_digit()),
            password.chars().any(|c| self.specials.contains(c)),
        ];
        let present = classes.iter().filter(|present| **present).count();
        if present < self.min_classes {
            return Err(format!(
                "{} passwords need at least {} of: lower-case, upper-case, digit, special ({}); this one has {present}",
                self.name, self.min_classes, self.specials
            ));
        }
        Ok(())
    }

    /// A random password with every class present, from a CSPRNG.
    pub fn generate(&self) -> String {
        let mut rng = rand::rng();
        let pools: Vec<&str> = [LOWER, UPPER, DIGITS, self.specials]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        let all: Vec<char> = pools.iter().flat_map(|pool| pool.chars()).collect();
        let len = GENERATED_LEN.clamp(self.min_len, self.max_len);
        let mut chars: Vec<char> = pools
            .iter()
            .map(|pool| {
                let pool: Vec<char> = pool.chars().collect();
                pool[rng.random_range(0..pool.len())]
            })
            .collect();
        while chars.len() < len {
            chars.push(all[rng.random_range(0..all.len())]);
        }
        chars.shuffle(&mut rng);
        chars.into_iter().collect()
    }
}

/// A DCS ACL account's password must not contain the account's name,
/// forwards or backwards, in any case (SDK
/// `create_acl_account_request_body.py`: "cannot contain the username or
/// the username spelled backwards"). The password is never quoted.
pub fn check_account_name(name: &str, password: &str) -> Result<(), String> {
    let lower = password.to_ascii_lowercase();
    let forwards = name.to_ascii_lowercase();
    let backwards: String = forwards.chars().rev().collect();
    if !forwards.is_empty() && (lower.contains(&forwards) || lower.contains(&backwards)) {
        return Err(format!(
            "DCS ACL passwords must not contain the account name {name:?} forwards or backwards"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acl_password_must_not_contain_its_account_name() {
        let cases = [
            ("app_a", "Xx-APP_A-99", false),
            ("app_a", "Xx-a_ppa-99", false),
            ("app_a", "Xx-app_b-99", true),
            ("", "Anything-1", true),
        ];
        for (name, password, ok) in cases {
            assert_eq!(
                check_account_name(name, password).is_ok(),
                ok,
                "{name} {password}"
            );
        }
        assert_eq!(cases.len(), 4);
        let why = check_account_name("app_a", "Xx-APP_A-99").unwrap_err();
        assert!(!why.contains("Xx-"), "{why}");
    }

    #[test]
    fn generated_passwords_satisfy_their_rules() {
        for rules in [POLARDB, DCS] {
            for _ in 0..500 {
                let password = rules.generate();
                assert_eq!(rules.check(&password), Ok(()), "{}", rules.name);
                assert_eq!(password.len(), 24);
            }
        }
        assert_ne!(POLARDB.generate(), POLARDB.generate());
    }

    #[test]
    fn rule_violations_are_explained_without_the_password() {
        let secret = "abcdefgh:XYZ";
        let err = DCS.check(secret).unwrap_err();
        assert!(err.contains("':'") && !err.contains(secret), "{err}");
        assert!(POLARDB.check("Short1!").unwrap_err().contains("8-32"));
        assert!(
            POLARDB
                .check("alllowercase")
                .unwrap_err()
                .contains("at least 3")
        );
        assert!(POLARDB.check("Pass~word1").unwrap_err().contains("'~'"));
        assert!(POLARDB.check("Pw!@#$%^&*()_+-=1a").is_ok());
        assert!(DCS.check("Pw%word12").is_err());
        assert!(EXTERNAL.check("Any-thing-1").is_ok());
        assert!(EXTERNAL.check("short").unwrap_err().contains("8-128"));
        let spaces = EXTERNAL.check("Bad pw with spaces and é").unwrap_err();
        assert!(
            spaces.contains("a space") && !spaces.contains("Bad pw"),
            "{spaces}"
        );
        assert!(
            EXTERNAL
                .check("Non-ascii-é-1")
                .unwrap_err()
                .contains("U+00E9")
        );
        assert!(EXTERNAL.check("bad\u{7}-password").is_err());
    }
}
