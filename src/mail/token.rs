//! Reply tokens: `consultas+TOKEN@domain` names the consultation, round, focal point
//! and country a notice went to, signed with HMAC-SHA256 so that it cannot be forged,
//! altered, or moved to another focal point or country.
//!
//! Layout (before base32): version (1 byte), year − 2000 (1), sequence (2, big endian),
//! round (1), focal point id (4), country (2 ASCII letters), then the first 10 bytes of
//! HMAC-SHA256 over those 11 bytes: 21 bytes, 34 lower-case base32 characters, which
//! keeps the local part `consultas+TOKEN` well under the 64-character limit and survives
//! mail systems that change the case of addresses.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::{ConsultationRef, CountryCode};

const VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 11;
const MAC_LEN: usize = 10;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyToken {
    pub reference: ConsultationRef,
    /// The round number, or 0 for a notice outside rounds (e.g. a Troika request).
    pub round: u32,
    pub focal_point_id: i64,
    pub country: CountryCode,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not valid base32 or has the wrong length")]
    Malformed,
    #[error("the token's version is not understood")]
    UnknownVersion,
    #[error("the token's signature does not match: forged or altered")]
    BadSignature,
    #[error("the token names values out of range")]
    OutOfRange,
}

/// The HMAC key, from `PUEBLA_TOKEN_SECRET`, and the keys it replaced
/// (`PUEBLA_TOKEN_SECRET_PREVIOUS`), which still verify the tokens of notices sent
/// before a rotation but never sign a new one.
#[derive(Clone)]
pub struct TokenKey {
    current: Vec<u8>,
    previous: Vec<Vec<u8>>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            current: secret.to_vec(),
            previous: Vec::new(),
        }
    }

    /// Also accepts tokens signed with `secret` (a secret rotated out).
    pub fn with_previous(mut self, secret: &[u8]) -> Self {
        if secret != self.current.as_slice() {
            self.previous.push(secret.to_vec());
        }
        self
    }

    fn mac(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.current).expect("HMAC takes keys of any length");
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// Signs a token. Fails only when a value does not fit the layout.
    pub fn mint(&self, t: &ReplyToken) -> Result<String, TokenError> {
        let year = u8::try_from(t.reference.year() - 2000).map_err(|_| TokenError::OutOfRange)?;
        let seq = u16::try_from(t.reference.seq()).map_err(|_| TokenError::OutOfRange)?;
        let round = u8::try_from(t.round).map_err(|_| TokenError::OutOfRange)?;
        let fp = u32::try_from(t.focal_point_id).map_err(|_| TokenError::OutOfRange)?;
        let mut bytes = Vec::with_capacity(PAYLOAD_LEN + MAC_LEN);
        bytes.push(VERSION);
        bytes.push(year);
        bytes.extend_from_slice(&seq.to_be_bytes());
        bytes.push(round);
        bytes.extend_from_slice(&fp.to_be_bytes());
        bytes.extend_from_slice(t.country.as_str().as_bytes());
        let mac = self.mac(&bytes);
        bytes.extend_from_slice(&mac);
        Ok(base32_encode(&bytes))
    }

    /// Checks the signature (in constant time) and reads the token back.
    pub fn verify(&self, body_code: &str, token: &str) -> Result<ReplyToken, TokenError> {
        let bytes =
            base32_decode(&token.trim().to_ascii_lowercase()).ok_or(TokenError::Malformed)?;
        if bytes.len() != PAYLOAD_LEN + MAC_LEN {
            return Err(TokenError::Malformed);
        }
        let (payload, mac) = bytes.split_at(PAYLOAD_LEN);
        // Every key is tried, so the time taken does not tell which one matched.
        let mut signed = false;
        for key in std::iter::once(&self.current).chain(&self.previous) {
            let mut check =
                Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
            check.update(payload);
            signed |= check.verify_truncated_left(mac).is_ok();
        }
        if !signed {
            return Err(TokenError::BadSignature);
        }
        if payload[0] != VERSION {
            return Err(TokenError::UnknownVersion);
        }
        let year = 2000 + i32::from(payload[1]);
        let seq = u32::from(u16::from_be_bytes([payload[2], payload[3]]));
        let round = u32::from(payload[4]);
        let fp = u32::from_be_bytes([payload[5], payload[6], payload[7], payload[8]]);
        let country = std::str::from_utf8(&payload[9..11])
            .ok()
            .and_then(|s| CountryCode::parse(s).ok())
            .ok_or(TokenError::OutOfRange)?;
        let reference =
            ConsultationRef::new(body_code, year, seq).map_err(|_| TokenError::OutOfRange)?;
        Ok(ReplyToken {
            reference,
            round,
            focal_point_id: i64::from(fp),
            country,
        })
    }
}

/// `consultas@domain` + token → `consultas+token@domain`.
pub fn reply_address(mail_from_address: &str, token: &str) -> String {
    match mail_from_address.rsplit_once('@') {
        Some((local, domain)) => {
            let local = local.split('+').next().unwrap_or(local);
            format!("{local}+{token}@{domain}")
        }
        None => format!("{mail_from_address}+{token}"),
    }
}

/// The token in a plus-address, if it has one.
pub fn token_in_address(address: &str) -> Option<&str> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, _) = address.rsplit_once('@')?;
    let (_, token) = local.split_once('+')?;
    (!token.is_empty()).then_some(token)
}

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    // Leftover bits must be padding zeros.
    (buffer & ((1 << bits) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ReplyToken {
        ReplyToken {
            reference: ConsultationRef::parse("RCM-2026-007").unwrap(),
            round: 2,
            focal_point_id: 41,
            country: CountryCode::parse("HN").unwrap(),
        }
    }

    #[test]
    fn a_valid_token_verifies_and_is_short() {
        let key = TokenKey::new(b"test secret of reasonable length");
        let token = key.mint(&sample()).unwrap();
        assert_eq!(token.len(), 34);
        assert_eq!(key.verify("RCM", &token).unwrap(), sample());
        assert_eq!(
            key.verify("RCM", &token.to_ascii_uppercase()).unwrap(),
            sample()
        );
        let addr = reply_address("consultas@rcm-ts.example", &token);
        assert!(addr.split('@').next().unwrap().len() <= 64);
        assert_eq!(token_in_address(&format!("<{addr}>")), Some(token.as_str()));
    }

    #[test]
    fn any_changed_character_breaks_the_token() {
        let key = TokenKey::new(b"test secret of reasonable length");
        let token = key.mint(&sample()).unwrap();
        for i in 0..token.len() {
            for replacement in ['a', 'q', '7'] {
                let mut t: Vec<char> = token.chars().collect();
                if t[i] == replacement {
                    continue;
                }
                t[i] = replacement;
                let altered: String = t.into_iter().collect();
                assert!(
                    key.verify("RCM", &altered).is_err(),
                    "position {i} → {replacement}"
                );
            }
        }
    }

    #[test]
    fn a_token_cannot_be_moved_to_another_focal_point_or_country_or_key() {
        let key = TokenKey::new(b"test secret of reasonable length");
        let token = key.mint(&sample()).unwrap();
        let other = key
            .mint(&ReplyToken {
                focal_point_id: 42,
                ..sample()
            })
            .unwrap();
        assert_ne!(token, other);
        // Splice the other token's payload onto this token's signature.
        let spliced = format!("{}{}", &other[..18], &token[18..]);
        assert_eq!(key.verify("RCM", &spliced), Err(TokenError::BadSignature));
        let moved = key
            .mint(&ReplyToken {
                country: CountryCode::parse("MX").unwrap(),
                ..sample()
            })
            .unwrap();
        assert_ne!(key.verify("RCM", &moved).unwrap().country, sample().country);
        let other_key = TokenKey::new(b"another secret entirely");
        assert_eq!(
            other_key.verify("RCM", &token),
            Err(TokenError::BadSignature)
        );
        assert_eq!(key.verify("RCM", "short"), Err(TokenError::Malformed));
        assert_eq!(key.verify("RCM", "not base32!"), Err(TokenError::Malformed));
    }

    #[test]
    fn a_rotated_key_still_verifies_old_tokens_but_signs_with_the_new_one() {
        let old = TokenKey::new(b"the secret before the rotation");
        let old_token = old.mint(&sample()).unwrap();
        let rotated = TokenKey::new(b"the secret after the rotation")
            .with_previous(b"the secret before the rotation");
        assert_eq!(rotated.verify("RCM", &old_token).unwrap(), sample());
        let new_token = rotated.mint(&sample()).unwrap();
        assert_ne!(new_token, old_token);
        assert_eq!(
            TokenKey::new(b"the secret after the rotation")
                .verify("RCM", &new_token)
                .unwrap(),
            sample()
        );
        // Without the previous key, the old token is refused.
        assert_eq!(
            TokenKey::new(b"the secret after the rotation").verify("RCM", &old_token),
            Err(TokenError::BadSignature)
        );
    }
}
