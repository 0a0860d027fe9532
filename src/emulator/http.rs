//! Transport-free request and reply types: the server turns hyper requests
//! into [`Request`] and [`Action`] back into bytes on the wire, so every rule
//! can be unit-tested without a socket.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::providers::encoding::percent_decode;

#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Upper-case HTTP method.
    pub method: String,
    /// The path exactly as sent (still percent-encoded).
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Header names lower-cased, values as sent, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in arrival order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn query_params(&self) -> Vec<(String, String)> {
        parse_urlencoded(&self.query)
    }
}

/// Splits `a=1&b=x%20y` into decoded pairs. `+` means space here, as in any
/// form-encoded string; a literal plus arrives as `%2B`.
pub fn parse_urlencoded(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            (
                percent_decode(&name.replace('+', " ")),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

/// The first value of a parameter.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            headers: vec![(
                "content-type".to_owned(),
                "application/json;charset=utf-8".to_owned(),
            )],
            body: serde_json::to_vec(value).expect("JSON values always serialise"),
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What the server does with a request once the rules have run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Reply(Reply),
    /// Abort the connection with a TCP reset, sending nothing.
    Reset,
    /// Close the connection without an answer after holding it this long
    /// (the change has already been applied).
    Drop {
        hold: Duration,
    },
}

/// A handled request: how long to wait first, then what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    pub delay: Duration,
    pub action: Action,
}

impl Handled {
    pub fn reply(reply: Reply) -> Self {
        Self {
            delay: Duration::ZERO,
            action: Action::Reply(reply),
        }
    }

    /// The reply, for tests that expect one.
    pub fn into_reply(self) -> Option<Reply> {
        match self.action {
            Action::Reply(reply) => Some(reply),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_pairs_decode_plus_and_escapes() {
        let pairs = parse_urlencoded("a=x+y&b=%2B%21&c&&d=");
        assert_eq!(
            pairs,
            vec![
                ("a".to_owned(), "x y".to_owned()),
                ("b".to_owned(), "+!".to_owned()),
                ("c".to_owned(), String::new()),
                ("d".to_owned(), String::new()),
            ]
        );
        assert_eq!(param(&pairs, "b"), Some("+!"));
        assert_eq!(param(&pairs, "z"), None);
    }
}
