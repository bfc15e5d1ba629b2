//! Signed tokens in plus-addresses: `consultas+TOKEN@domain` on a notice's Reply-To
//! (and in the answer page's link), `consultas+b.TOKEN@domain` as its envelope sender.
//! Each token says what it is for, signed with HMAC-SHA256 so that it cannot be
//! forged, altered, or moved to another focal point, country, stage or purpose.
//!
//! # Version 2 (minted since issue 11; stable)
//!
//! Before base32, every token is a payload followed by the first 10 bytes of
//! HMAC-SHA256 over the payload. A version-2 payload starts with the version (2)
//! and the purpose, then the purpose's fields (integers big endian):
//!
//! | purpose            | byte | fields                                                        | payload | token |
//! |--------------------|------|---------------------------------------------------------------|---------|-------|
//! | Troika review      | 1    | year − 2000 (1), sequence (2), review (1), focal point (4), country (2) | 12 | 36 chars |
//! | round              | 2    | year − 2000 (1), sequence (2), round (1), focal point (4), country (2)  | 12 | 36 chars |
//! | confirmation       | 3    | held inbound message id (6), focal point (4), country (2)     | 14      | 39 chars |
//! | bounce (envelope)  | 4    | outbox notice id (6)                                          | 8       | 29 chars |
//!
//! The purpose is inside the signature: a token minted for the Troika review is never
//! read as a round's, nor a bounce address as an answer. Lower-case base32 (RFC 4648
//! alphabet, no padding) survives mail systems that change the case of addresses, and
//! `consultas+` plus the longest token is 49 characters, within the 64 that RFC 5321
//! allows a local part ([`local_part_fits`] checks a configured address).
//!
//! # Version 1 (verified, never minted)
//!
//! Notices sent before version 2 carry: version (1), year − 2000 (1), sequence (2),
//! round (1), focal point (4), country (2), then the MAC: 21 bytes, 34 characters.
//! Round 0 was the Troika request, so it reads as [`StageRef::Troika`] with no review
//! number; round N reads as round N.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::{ConsultationRef, CountryCode};

const V1: u8 = 1;
const V2: u8 = 2;
const V1_PAYLOAD_LEN: usize = 11;
const MAC_LEN: usize = 10;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

const PURPOSE_TROIKA: u8 = 1;
const PURPOSE_ROUND: u8 = 2;
const PURPOSE_CONFIRMATION: u8 = 3;
const PURPOSE_BOUNCE: u8 = 4;

/// Marks a bounce token in an address: `consultas+b.TOKEN@domain`. A reply token
/// never starts with it (base32 has no `.`), so an MTA can route on it.
pub const BOUNCE_PREFIX: &str = "b.";

/// The longest local part a token address can have: `+`, the bounce prefix and the
/// longest token (a confirmation's) after the configured local part.
pub const MAX_TOKEN_SUFFIX: usize = 1 + BOUNCE_PREFIX.len() + 39;

/// What a token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A notice that asks a focal point to answer for one stage of a consultation
    /// (the Troika request, a round's invitation, reminder, ...). The answer page
    /// is authenticated by this token alone.
    Answer(AnswerToken),
    /// A confirmation request about a message held as "awaiting confirmation".
    Confirmation(ConfirmationToken),
    /// The envelope sender of one notice: a bounce comes back to it.
    Bounce(BounceToken),
}

pub use crate::domain::stage_ref::StageRef;

/// A notice to one focal point asking for an answer for one stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerToken {
    pub reference: ConsultationRef,
    pub stage: StageRef,
    /// The focal point the notice went to.
    pub focal_point_id: i64,
    pub country: CountryCode,
}

/// A confirmation request about one held inbound message, sent to one focal point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmationToken {
    /// The `inbound_messages` row held as awaiting confirmation.
    pub inbound_id: i64,
    /// The focal point asked (at the directory's address for it).
    pub focal_point_id: i64,
    pub country: CountryCode,
}

/// One notice's envelope sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BounceToken {
    /// The `outbox` row of the notice.
    pub notice_id: i64,
}

/// A version-1 token, as notices sent before version 2 carry (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTokenV1 {
    pub reference: ConsultationRef,
    /// The round number, or 0 for a notice outside rounds (the Troika request).
    pub round: u32,
    pub focal_point_id: i64,
    pub country: CountryCode,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not valid base32 or has the wrong length")]
    Malformed,
    #[error("the token's version or purpose is not understood")]
    UnknownVersion,
    #[error("the token's signature does not match: forged or altered")]
    BadSignature,
    #[error("the token names values out of range")]
    OutOfRange,
    #[error("no PUEBLA_TOKEN_SECRET is configured: tokens can be neither signed nor checked")]
    NoKey,
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

    fn sign(&self, mut payload: Vec<u8>) -> String {
        let mac = self.mac(&payload);
        payload.extend_from_slice(&mac);
        base32_encode(&payload)
    }

    /// Signs a version-2 token. Fails only when a value does not fit the layout.
    pub fn mint(&self, token: &Token) -> Result<String, TokenError> {
        let mut p = vec![V2];
        match token {
            Token::Answer(t) => {
                let (purpose, number) = match t.stage {
                    StageRef::Troika { review } => {
                        // A version-2 Troika token always names its review.
                        (PURPOSE_TROIKA, review.ok_or(TokenError::OutOfRange)?)
                    }
                    StageRef::Round { round } => (PURPOSE_ROUND, round),
                };
                p.push(purpose);
                push_reference(&mut p, &t.reference)?;
                p.push(u8::try_from(number).map_err(|_| TokenError::OutOfRange)?);
                push_u32(&mut p, t.focal_point_id)?;
                p.extend_from_slice(t.country.as_str().as_bytes());
            }
            Token::Confirmation(t) => {
                p.push(PURPOSE_CONFIRMATION);
                push_u48(&mut p, t.inbound_id)?;
                push_u32(&mut p, t.focal_point_id)?;
                p.extend_from_slice(t.country.as_str().as_bytes());
            }
            Token::Bounce(t) => {
                p.push(PURPOSE_BOUNCE);
                push_u48(&mut p, t.notice_id)?;
            }
        }
        Ok(self.sign(p))
    }

    /// Signs a version-1 token, as notices sent before version 2 carry. Nothing in
    /// puebla mints these any more; tests use it to prove old notices still work.
    pub fn mint_v1(&self, t: &ReplyTokenV1) -> Result<String, TokenError> {
        let mut p = vec![V1];
        push_reference(&mut p, &t.reference)?;
        p.push(u8::try_from(t.round).map_err(|_| TokenError::OutOfRange)?);
        push_u32(&mut p, t.focal_point_id)?;
        p.extend_from_slice(t.country.as_str().as_bytes());
        Ok(self.sign(p))
    }

    /// Checks the signature (in constant time) and reads the token back. Accepts
    /// version 1 and 2, upper or lower case, with or without the bounce prefix.
    pub fn verify(&self, body_code: &str, token: &str) -> Result<Token, TokenError> {
        let token = token.trim().to_ascii_lowercase();
        let token = token.strip_prefix(BOUNCE_PREFIX).unwrap_or(&token);
        let bytes = base32_decode(token).ok_or(TokenError::Malformed)?;
        if bytes.len() <= MAC_LEN + 1 || bytes.len() > MAC_LEN + 16 {
            return Err(TokenError::Malformed);
        }
        let (payload, mac) = bytes.split_at(bytes.len() - MAC_LEN);
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
        match payload[0] {
            V1 => read_v1(body_code, payload),
            V2 => read_v2(body_code, payload),
            _ => Err(TokenError::UnknownVersion),
        }
    }
}

fn push_reference(p: &mut Vec<u8>, r: &ConsultationRef) -> Result<(), TokenError> {
    let year = u8::try_from(r.year() - 2000).map_err(|_| TokenError::OutOfRange)?;
    let seq = u16::try_from(r.seq()).map_err(|_| TokenError::OutOfRange)?;
    p.push(year);
    p.extend_from_slice(&seq.to_be_bytes());
    Ok(())
}

fn push_u32(p: &mut Vec<u8>, v: i64) -> Result<(), TokenError> {
    let v = u32::try_from(v).map_err(|_| TokenError::OutOfRange)?;
    p.extend_from_slice(&v.to_be_bytes());
    Ok(())
}

fn push_u48(p: &mut Vec<u8>, v: i64) -> Result<(), TokenError> {
    let v = u64::try_from(v).map_err(|_| TokenError::OutOfRange)?;
    if v >= 1 << 48 {
        return Err(TokenError::OutOfRange);
    }
    p.extend_from_slice(&v.to_be_bytes()[2..]);
    Ok(())
}

fn read_reference(body_code: &str, b: &[u8]) -> Result<ConsultationRef, TokenError> {
    let year = 2000 + i32::from(b[0]);
    let seq = u32::from(u16::from_be_bytes([b[1], b[2]]));
    ConsultationRef::new(body_code, year, seq).map_err(|_| TokenError::OutOfRange)
}

fn read_u32(b: &[u8]) -> i64 {
    i64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u48(b: &[u8]) -> i64 {
    let mut full = [0u8; 8];
    full[2..].copy_from_slice(&b[..6]);
    i64::try_from(u64::from_be_bytes(full)).expect("48 bits fit an i64")
}

fn read_country(b: &[u8]) -> Result<CountryCode, TokenError> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| CountryCode::parse(s).ok())
        .ok_or(TokenError::OutOfRange)
}

fn read_v1(body_code: &str, p: &[u8]) -> Result<Token, TokenError> {
    if p.len() != V1_PAYLOAD_LEN {
        return Err(TokenError::Malformed);
    }
    let reference = read_reference(body_code, &p[1..4])?;
    let round = u32::from(p[4]);
    let stage = if round == 0 {
        StageRef::Troika { review: None }
    } else {
        StageRef::Round { round }
    };
    Ok(Token::Answer(AnswerToken {
        reference,
        stage,
        focal_point_id: read_u32(&p[5..9]),
        country: read_country(&p[9..11])?,
    }))
}

fn read_v2(body_code: &str, p: &[u8]) -> Result<Token, TokenError> {
    let purpose = *p.get(1).ok_or(TokenError::Malformed)?;
    let fields = &p[2..];
    match purpose {
        PURPOSE_TROIKA | PURPOSE_ROUND => {
            if fields.len() != 10 {
                return Err(TokenError::Malformed);
            }
            let reference = read_reference(body_code, &fields[0..3])?;
            let number = u32::from(fields[3]);
            if number == 0 {
                return Err(TokenError::OutOfRange);
            }
            let stage = if purpose == PURPOSE_TROIKA {
                StageRef::Troika {
                    review: Some(number),
                }
            } else {
                StageRef::Round { round: number }
            };
            Ok(Token::Answer(AnswerToken {
                reference,
                stage,
                focal_point_id: read_u32(&fields[4..8]),
                country: read_country(&fields[8..10])?,
            }))
        }
        PURPOSE_CONFIRMATION => {
            if fields.len() != 12 {
                return Err(TokenError::Malformed);
            }
            Ok(Token::Confirmation(ConfirmationToken {
                inbound_id: read_u48(&fields[0..6]),
                focal_point_id: read_u32(&fields[6..10]),
                country: read_country(&fields[10..12])?,
            }))
        }
        PURPOSE_BOUNCE => {
            if fields.len() != 6 {
                return Err(TokenError::Malformed);
            }
            Ok(Token::Bounce(BounceToken {
                notice_id: read_u48(fields),
            }))
        }
        _ => Err(TokenError::UnknownVersion),
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

/// `consultas@domain` + a bounce token → `consultas+b.token@domain`: a notice's
/// envelope sender (MAIL FROM, the Return-Path its recipient's server records).
pub fn bounce_address(mail_from_address: &str, token: &str) -> String {
    reply_address(mail_from_address, &format!("{BOUNCE_PREFIX}{token}"))
}

/// The token in a plus-address, if it has one (with its bounce prefix, if any).
pub fn token_in_address(address: &str) -> Option<&str> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, _) = address.rsplit_once('@')?;
    let (_, token) = local.split_once('+')?;
    (!token.is_empty()).then_some(token)
}

/// Whether every token address made from `mail_from_address` keeps its local part
/// within the 64 characters RFC 5321 allows (`puebla check` says so when not).
pub fn local_part_fits(mail_from_address: &str) -> bool {
    let local = mail_from_address
        .rsplit_once('@')
        .map_or(mail_from_address, |(l, _)| l);
    let local = local.split('+').next().unwrap_or(local);
    local.len() + MAX_TOKEN_SUFFIX <= 64
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
    // Only a whole number of bytes, and leftover bits must be padding zeros: each
    // byte string has exactly one spelling, so no two tokens decode alike.
    (bits < 5 && buffer & ((1 << bits) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test secret of reasonable length";

    fn reference() -> ConsultationRef {
        ConsultationRef::parse("RCM-2026-007").unwrap()
    }

    fn hn() -> CountryCode {
        CountryCode::parse("HN").unwrap()
    }

    fn round(n: u32) -> Token {
        Token::Answer(AnswerToken {
            reference: reference(),
            stage: StageRef::Round { round: n },
            focal_point_id: 41,
            country: hn(),
        })
    }

    fn troika(review: u32) -> Token {
        Token::Answer(AnswerToken {
            reference: reference(),
            stage: StageRef::Troika {
                review: Some(review),
            },
            focal_point_id: 41,
            country: hn(),
        })
    }

    fn every_purpose() -> Vec<Token> {
        vec![
            troika(1),
            round(2),
            Token::Confirmation(ConfirmationToken {
                inbound_id: (1 << 48) - 1,
                focal_point_id: 41,
                country: hn(),
            }),
            Token::Bounce(BounceToken { notice_id: 123_456 }),
        ]
    }

    #[test]
    fn every_purpose_verifies_as_itself_and_fits_a_local_part() {
        let key = TokenKey::new(SECRET);
        for t in every_purpose() {
            let token = key.mint(&t).unwrap();
            assert_eq!(key.verify("RCM", &token).unwrap(), t, "{token}");
            assert_eq!(
                key.verify("RCM", &token.to_ascii_uppercase()).unwrap(),
                t,
                "case does not matter"
            );
            assert!(token.bytes().all(|b| ALPHABET.contains(&b)), "{token}");
            for addr in [
                reply_address("consultas@rcm-ts.example", &token),
                bounce_address("consultas@rcm-ts.example", &token),
            ] {
                assert!(addr.split('@').next().unwrap().len() <= 64, "{addr}");
                let bracketed = format!("<{addr}>");
                let found = token_in_address(&bracketed).unwrap();
                assert_eq!(key.verify("RCM", found).unwrap(), t, "{addr}");
            }
        }
        let lens: Vec<usize> = every_purpose()
            .iter()
            .map(|t| key.mint(t).unwrap().len())
            .collect();
        assert_eq!(lens, vec![36, 36, 39, 29]);
        assert_eq!(MAX_TOKEN_SUFFIX, 1 + 2 + 39);
        assert!(local_part_fits("RCM <consultas@rcm-ts.example>"));
        assert!(!local_part_fits(
            "consultations-of-the-regional-conference@x.example"
        ));
    }

    #[test]
    fn a_token_for_one_stage_is_not_one_for_another() {
        let key = TokenKey::new(SECRET);
        let t1 = key.mint(&troika(1)).unwrap();
        let r1 = key.mint(&round(1)).unwrap();
        assert_ne!(t1, r1, "the purpose is part of the token");
        let Token::Answer(a) = key.verify("RCM", &t1).unwrap() else {
            panic!("an answer token")
        };
        assert_eq!(a.stage, StageRef::Troika { review: Some(1) });
        // Splicing the round token's signature onto the Troika payload fails.
        let spliced = format!("{}{}", &t1[..20], &r1[20..]);
        assert_eq!(key.verify("RCM", &spliced), Err(TokenError::BadSignature));
    }

    #[test]
    fn version_1_tokens_still_verify_round_0_as_the_troika() {
        let key = TokenKey::new(SECRET);
        let v1 = |round| {
            key.mint_v1(&ReplyTokenV1 {
                reference: reference(),
                round,
                focal_point_id: 41,
                country: hn(),
            })
            .unwrap()
        };
        let troika = v1(0);
        assert_eq!(troika.len(), 34);
        assert_eq!(
            key.verify("RCM", &troika).unwrap(),
            Token::Answer(AnswerToken {
                reference: reference(),
                stage: StageRef::Troika { review: None },
                focal_point_id: 41,
                country: hn(),
            })
        );
        assert_eq!(key.verify("RCM", &v1(2)).unwrap(), round(2));
        // The Troika token of a notice sent before version 2, computed independently
        // (Python's hmac and base64) from the version-1 layout.
        assert_eq!(troika, "aenaabyaaaaaakkij2t4lbn2tgri5n5h5a");
    }

    #[test]
    fn any_changed_character_breaks_the_token() {
        let key = TokenKey::new(SECRET);
        for t in every_purpose() {
            let token = key.mint(&t).unwrap();
            for i in 0..token.len() {
                for replacement in ['a', 'q', '7'] {
                    let mut c: Vec<char> = token.chars().collect();
                    if c[i] == replacement {
                        continue;
                    }
                    c[i] = replacement;
                    let altered: String = c.into_iter().collect();
                    assert!(
                        key.verify("RCM", &altered).is_err(),
                        "{t:?}: position {i} → {replacement}"
                    );
                }
            }
            // A character more or less is not the same token either.
            assert!(key.verify("RCM", &token[1..]).is_err());
            assert!(key.verify("RCM", &format!("{token}a")).is_err());
        }
    }

    #[test]
    fn a_token_cannot_be_moved_to_another_focal_point_or_country_or_key() {
        let key = TokenKey::new(SECRET);
        let token = key.mint(&round(2)).unwrap();
        let other = key
            .mint(&Token::Answer(AnswerToken {
                reference: reference(),
                stage: StageRef::Round { round: 2 },
                focal_point_id: 42,
                country: hn(),
            }))
            .unwrap();
        assert_ne!(token, other);
        let spliced = format!("{}{}", &other[..20], &token[20..]);
        assert_eq!(key.verify("RCM", &spliced), Err(TokenError::BadSignature));
        let other_key = TokenKey::new(b"another secret entirely");
        assert_eq!(
            other_key.verify("RCM", &token),
            Err(TokenError::BadSignature)
        );
        assert_eq!(key.verify("RCM", "short"), Err(TokenError::Malformed));
        assert_eq!(key.verify("RCM", "not base32!"), Err(TokenError::Malformed));
        assert_eq!(key.verify("RCM", ""), Err(TokenError::Malformed));
    }

    #[test]
    fn values_out_of_range_are_refused_not_wrapped() {
        let key = TokenKey::new(SECRET);
        let big = Token::Bounce(BounceToken { notice_id: 1 << 48 });
        assert_eq!(key.mint(&big), Err(TokenError::OutOfRange));
        let negative = Token::Bounce(BounceToken { notice_id: -1 });
        assert_eq!(key.mint(&negative), Err(TokenError::OutOfRange));
        let no_review = Token::Answer(AnswerToken {
            reference: reference(),
            stage: StageRef::Troika { review: None },
            focal_point_id: 1,
            country: hn(),
        });
        assert_eq!(key.mint(&no_review), Err(TokenError::OutOfRange));
        assert_eq!(key.mint(&round(256)), Err(TokenError::OutOfRange));
    }

    #[test]
    fn a_rotated_key_still_verifies_old_tokens_but_signs_with_the_new_one() {
        let old = TokenKey::new(b"the secret before the rotation");
        let old_token = old.mint(&round(2)).unwrap();
        let rotated = TokenKey::new(b"the secret after the rotation")
            .with_previous(b"the secret before the rotation");
        assert_eq!(rotated.verify("RCM", &old_token).unwrap(), round(2));
        let new_token = rotated.mint(&round(2)).unwrap();
        assert_ne!(new_token, old_token);
        assert_eq!(
            TokenKey::new(b"the secret after the rotation").verify("RCM", &old_token),
            Err(TokenError::BadSignature)
        );
    }
}
