//! Password policies of the emulated services.

/// A password policy: length bounds, the special characters allowed, and
/// how many of the four classes (lower, upper, digit, special) it needs.
pub struct PasswordPolicy {
    pub min_len: usize,
    pub max_len: usize,
    pub specials: &'static str,
    pub min_classes: usize,
}

/// PolarDB `NewAccountPassword`: 8-32, 3 of 4, specials `!@#$%^&*()_+-=`.
pub const POLARDB: PasswordPolicy = PasswordPolicy {
    min_len: 8,
    max_len: 32,
    specials: "!@#$%^&*()_+-=",
    min_classes: 3,
};

/// DCS (the intersection the contract fixes): 8-32, 3 of 4, specials
/// ``~!@#$^&*()-_=+|{},<.>/?`` (no `%`, no `:`).
pub const DCS: PasswordPolicy = PasswordPolicy {
    min_len: 8,
    max_len: 32,
    specials: "~!@#$^&*()-_=+|{},<.>/?",
    min_classes: 3,
};

impl PasswordPolicy {
    /// `Err(reason)` when the password breaks the policy.
    pub fn check(&self, password: &str) -> Result<(), String> {
        let len = password.chars().count();
        if len < self.min_len || len > self.max_len {
            return Err(format!(
                "the password must be {} to {} characters long",
                self.min_len, self.max_len
            ));
        }
        let (mut lower, mut upper, mut digit, mut special) = (false, false, false, false);
        for c in password.chars() {
            if c.is_ascii_lowercase() {
                lower = true;
            } else if c.is_ascii_uppercase() {
                upper = true;
            } else if c.is_ascii_digit() {
                digit = true;
            } else if self.specials.contains(c) {
                special = true;
            } else {
                return Err(format!("the character {c:?} is not allowed"));
            }
        }
        let classes = [lower, upper, digit, special]
            .iter()
            .filter(|&&present| present)
            .count();
        if classes < self.min_classes {
            return Err(format!(
                "the password must contain at least {} of: lower-case letters, upper-case letters, digits, special characters",
                self.min_classes
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polardb_policy() {
        assert!(POLARDB.check("Pw!@#$%^&*()_+-=1a").is_ok());
        assert!(POLARDB.check("Passw0rd").is_ok());
        assert!(POLARDB.check("abcdef12").is_err(), "two classes");
        assert!(POLARDB.check("Ab1!").is_err(), "too short");
        assert!(POLARDB.check(&"Ab1!".repeat(9)).is_err(), "too long");
        assert!(
            POLARDB.check("Passw0rd~").is_err(),
            "~ is not a PolarDB special"
        );
        assert!(POLARDB.check("Pass w0rd").is_err(), "space");
        assert!(POLARDB.check("Pässw0rd!").is_err(), "non-ASCII");
    }

    #[test]
    fn dcs_policy() {
        assert!(DCS.check("New-P@ss2").is_ok());
        assert!(DCS.check("abc{}DEF<>").is_ok());
        assert!(DCS.check("Passw0rd%").is_err(), "% is not a DCS special");
        assert!(DCS.check("Passw0rd:").is_err(), ": is not allowed");
        assert!(DCS.check("password").is_err());
    }
}
