//! The digests both signature schemes (ACS3-HMAC-SHA256 and Huawei's
//! SDK-HMAC-SHA256) are made of, in the lower-hex form both put on the wire.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// SHA-256 of an empty body: the payload hash of every Alibaba RPC call
/// and of Huawei calls without a body.
pub const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Lower-hex HMAC-SHA256 keyed with the raw secret (neither scheme derives
/// a signing key).
pub fn hmac_sha256_hex(secret: &str, data: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_digests() {
        assert_eq!(sha256_hex(b""), EMPTY_PAYLOAD_SHA256);
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
