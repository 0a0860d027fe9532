//! The one percent-encoder every signature scheme here uses: RFC 3986,
//! unreserved characters kept, every other UTF-8 byte as `%XX` upper-case.
//! Form encoders are wrong for signing (they write space as `+` and keep `*`).
//! Also the canonical request, laid out the same by ACS3 and Huawei's APIG.

pub fn percent_encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len() * 3 / 2);
    for &byte in input.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[(byte >> 4) as usize] as char);
            out.push(HEX[(byte & 0x0f) as usize] as char);
        }
    }
    out
}

/// Decodes `%XX` escapes (and nothing else: `+` stays `+`). Invalid escapes
/// are kept verbatim; bytes that are not UTF-8 are replaced.
pub fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(value) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(value);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sorts parameters by name, then value, comparing raw bytes, as every SDK
/// here does before encoding.
pub fn sorted_params(params: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort();
    sorted
}

/// `enc(k1)=enc(v1)&enc(k2)=enc(v2)...` over the sorted parameters.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut out = String::new();
    for (name, value) in sorted_params(params) {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&percent_encode(name));
        out.push('=');
        out.push_str(&percent_encode(value));
    }
    out
}

/// `a;b;c` from the (sorted) signed headers.
pub fn signed_header_names(signed_headers: &[(String, String)]) -> String {
    signed_headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";")
}

/// The canonical request both ACS3 and SDK-HMAC-SHA256 sign: method,
/// canonical URI, canonical query, one `name:value` line per signed header
/// (already normalised and sorted), a blank line, the signed header names
/// and the payload hash.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    query: &[(String, String)],
    signed_headers: &[(String, String)],
    payload_sha256: &str,
) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(method);
    out.push('\n');
    out.push_str(canonical_uri);
    out.push('\n');
    out.push_str(&canonical_query(query));
    out.push('\n');
    for (name, value) in signed_headers {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_header_names(signed_headers));
    out.push('\n');
    out.push_str(payload_sha256);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_rfc3986() {
        assert_eq!(
            percent_encode("N3w P@ss*~/+=&!"),
            "N3w%20P%40ss%2A~%2F%2B%3D%26%21"
        );
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode("AZaz09-_.~"), "AZaz09-_.~");
    }

    #[test]
    fn decode_reverses_encode_and_keeps_bad_escapes() {
        let raw = "a b/%zz+é";
        assert_eq!(percent_decode(&percent_encode(raw)), raw);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("a+b"), "a+b");
    }

    #[test]
    fn canonical_query_sorts_by_name_then_value() {
        let params = vec![
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "z".to_owned()),
            ("a".to_owned(), "y y".to_owned()),
            ("c".to_owned(), String::new()),
        ];
        assert_eq!(canonical_query(&params), "a=y%20y&a=z&b=2&c=");
    }
}
