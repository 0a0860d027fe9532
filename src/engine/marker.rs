//! The ownership marker: a short token Vault keeps in a target's own
//! description (a PolarDB account's `AccountDescription`, a DCS instance's
//! `description`), `vault-cloudrotate:<owner>:<generation>`. `owner` is the
//! mount's id, `generation` the id of the rotation or adoption that set the
//! target's current password. Reading it back tells whether the password
//! Vault holds is still the target's (drift) and whether another mount owns
//! the target (claim), without spending a DCS password attempt.
//!
//! The operator's own description text is kept: an existing marker token is
//! replaced in place, otherwise the token is appended after a space.

use std::fmt;

const PREFIX: &str = "vault-cloudrotate:";
/// Written where a marker had to go but the description may not be left
/// empty (PolarDB wants 2-256 characters): a token that claims nothing.
const RELEASED: &str = "vault-cloudrotate:released";
const ID_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub owner: String,
    pub generation: String,
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}:{}", self.owner, self.generation)
    }
}

/// What a provider accepts as a description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptionRule {
    pub name: &'static str,
    pub min_chars: usize,
    pub max_chars: usize,
    pub forbidden_prefixes: &'static [&'static str],
}

/// ModifyAccountDescription: 2-256 characters, not starting with `http://`
/// or `https://` (SDK `alibabacloud_polardb20170801`
/// `_modify_account_description_request.py`).
pub const POLARDB_DESCRIPTION: DescriptionRule = DescriptionRule {
    name: "PolarDB account descriptions",
    min_chars: 2,
    max_chars: 256,
    forbidden_prefixes: &["http://", "https://"],
};

/// UpdateInstance `description`: at most 1024 characters (SDK
/// `huaweicloudsdkdcs` v2 `modify_instance_body.py`).
pub const DCS_DESCRIPTION: DescriptionRule = DescriptionRule {
    name: "DCS instance descriptions",
    min_chars: 0,
    max_chars: crate::providers::huaweicloud::dcs::MAX_DESCRIPTION_CHARS,
    forbidden_prefixes: &[],
};

impl DescriptionRule {
    /// Why `description` cannot be written, if it cannot.
    pub fn check(&self, description: &str) -> Result<(), String> {
        let chars = description.chars().count();
        if chars < self.min_chars || chars > self.max_chars {
            return Err(format!(
                "{} must be {}-{} characters; with the marker this one would be {chars}",
                self.name, self.min_chars, self.max_chars
            ));
        }
        if let Some(prefix) = self
            .forbidden_prefixes
            .iter()
            .find(|p| description.starts_with(**p))
        {
            return Err(format!("{} must not start with {prefix}", self.name));
        }
        Ok(())
    }
}

fn is_id(text: &str) -> bool {
    text.len() == ID_LEN && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A fresh 16-hex-character id (a mount's owner id, a generation).
pub fn new_id() -> String {
    hex::encode(rand::random::<[u8; ID_LEN / 2]>())
}

/// The byte ranges of the whitespace-separated words of `text`.
fn words(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (at, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(at),
            (true, Some(from)) => {
                out.push((from, at));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        out.push((from, text.len()));
    }
    out
}

/// The first well-formed marker in a description.
pub fn find(description: &str) -> Option<Marker> {
    words(description).into_iter().find_map(|(from, to)| {
        let rest = description[from..to].strip_prefix(PREFIX)?;
        let (owner, generation) = rest.split_once(':')?;
        (is_id(owner) && is_id(generation)).then(|| Marker {
            owner: owner.to_owned(),
            generation: generation.to_owned(),
        })
    })
}

/// `description` with every marker-like word for which `replace` holds
/// swapped for `token` (the first) or dropped (the rest, and all of them
/// when `token` is empty, with the space before them). `None` when no word qualified.
fn replace_tokens(
    description: &str,
    token: &str,
    replace: impl Fn(&str) -> bool,
) -> Option<String> {
    let targets: Vec<(usize, usize)> = words(description)
        .into_iter()
        .filter(|(from, to)| {
            let word = &description[*from..*to];
            word.starts_with(PREFIX) && replace(word)
        })
        .collect();
    let (first, _) = *targets.first()?;
    let mut out = String::with_capacity(description.len());
    let mut at = 0;
    for (from, to) in targets {
        if from == first && !token.is_empty() {
            out.push_str(&description[at..from]);
            out.push_str(token);
        } else {
            out.push_str(description[at..from].trim_end());
        }
        at = to;
    }
    out.push_str(&description[at..]);
    Some(out)
}

/// The description carrying `marker`: any marker (ours, another owner's,
/// a released one) is replaced in place, otherwise the token is appended.
/// Refused when the provider would not take the result.
pub fn merge(description: &str, marker: &Marker, rule: &DescriptionRule) -> Result<String, String> {
    let token = marker.to_string();
    let merged = replace_tokens(description, &token, |_| true).unwrap_or_else(|| {
        if description.trim().is_empty() {
            token.clone()
        } else {
            format!("{} {token}", description.trim_end())
        }
    });
    rule.check(&merged)?;
    Ok(merged)
}

/// The description without `owner`'s marker, for a role being deleted;
/// `None` when it carries none. Where the rule forbids what is left (a
/// PolarDB description emptied), a token that claims nothing stays.
pub fn release(description: &str, owner: &str, rule: &DescriptionRule) -> Option<String> {
    let ours = |word: &str| find(word).is_some_and(|m| m.owner == owner);
    let cleared = replace_tokens(description, "", ours)?;
    let cleared = cleared.trim().to_owned();
    Some(if rule.check(&cleared).is_ok() {
        cleared
    } else {
        replace_tokens(description, RELEASED, ours).unwrap_or_else(|| RELEASED.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "0123456789abcdef";
    const OTHER: &str = "fedcba9876543210";

    fn marker(owner: &str, generation: &str) -> Marker {
        Marker {
            owner: owner.into(),
            generation: generation.into(),
        }
    }

    #[test]
    fn finds_only_well_formed_markers() {
        let m = marker(OWNER, "00000000000000aa");
        assert_eq!(find(&format!("orders cache {m} (team a)")), Some(m.clone()));
        assert_eq!(find(&m.to_string()), Some(m));
        for text in [
            "",
            "plain text",
            "vault-cloudrotate:released",
            "vault-cloudrotate:0123:00000000000000aa",
            "vault-cloudrotate:0123456789abcdeZ:00000000000000aa",
            "xvault-cloudrotate:0123456789abcdef:00000000000000aa",
        ] {
            assert_eq!(find(text), None, "{text:?}");
        }
    }

    #[test]
    fn merging_keeps_the_operators_text() {
        let first = marker(OWNER, "1111111111111111");
        let second = marker(OWNER, "2222222222222222");
        let appended = merge("orders cache, team a", &first, &DCS_DESCRIPTION).unwrap();
        assert_eq!(appended, format!("orders cache, team a {first}"));
        let replaced = merge(&appended, &second, &DCS_DESCRIPTION).unwrap();
        assert_eq!(replaced, format!("orders cache, team a {second}"));
        // In place, wherever the operator moved it; duplicates collapse.
        let moved = format!("a {first} b {first}");
        assert_eq!(
            merge(&moved, &second, &DCS_DESCRIPTION).unwrap(),
            format!("a {second} b")
        );
        assert_eq!(
            merge("", &first, &POLARDB_DESCRIPTION).unwrap(),
            first.to_string()
        );
        // Taking over replaces another owner's marker.
        let theirs = format!("shared {}", marker(OTHER, "3333333333333333"));
        assert_eq!(
            merge(&theirs, &first, &DCS_DESCRIPTION).unwrap(),
            format!("shared {first}")
        );
    }

    #[test]
    fn merging_respects_the_providers_limits() {
        let m = marker(OWNER, "1111111111111111");
        let long = "x".repeat(240);
        let err = merge(&long, &m, &POLARDB_DESCRIPTION).unwrap_err();
        assert!(err.contains("2-256") && err.contains("292"), "{err}");
        assert!(merge(&"x".repeat(1000), &m, &DCS_DESCRIPTION).is_err());
        assert!(merge(&"x".repeat(970), &m, &DCS_DESCRIPTION).is_ok());
        let err = merge("https://wiki/db", &m, &POLARDB_DESCRIPTION).unwrap_err();
        assert!(err.contains("https://"), "{err}");
    }

    #[test]
    fn releasing_removes_only_our_marker() {
        let ours = marker(OWNER, "1111111111111111");
        let theirs = marker(OTHER, "2222222222222222");
        assert_eq!(
            release(&format!("orders {ours} cache"), OWNER, &DCS_DESCRIPTION),
            Some("orders cache".into())
        );
        assert_eq!(
            release(&format!("orders {theirs}"), OWNER, &DCS_DESCRIPTION),
            None
        );
        assert_eq!(
            release(&ours.to_string(), OWNER, &DCS_DESCRIPTION),
            Some(String::new())
        );
        // PolarDB cannot hold an empty description: a token claiming nothing.
        let kept = release(&ours.to_string(), OWNER, &POLARDB_DESCRIPTION).unwrap();
        assert_eq!(kept, RELEASED);
        assert_eq!(find(&kept), None);
        assert_eq!(
            merge(&kept, &theirs, &POLARDB_DESCRIPTION).unwrap(),
            theirs.to_string()
        );
    }
}
