//! SIP digest authentication, the client side (RFC 3261 §22, RFC 8760 for SHA-256, qop as in
//! RFC 7616): read a 401/407 challenge, answer it with an Authorization or Proxy-Authorization
//! value. Sans-IO: the client nonce comes from the caller.
use std::fmt::Write as _;

use md5::Digest as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn hash(self, data: &str) -> String {
        let bytes: Vec<u8> = match self {
            Algorithm::Md5 => md5::Md5::digest(data.as_bytes()).to_vec(),
            Algorithm::Sha256 => sha2::Sha256::digest(data.as_bytes()).to_vec(),
        };
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            // Writing to a String cannot fail.
            let _ = write!(out, "{b:02x}");
        }
        out
    }
}

/// A `WWW-Authenticate` or `Proxy-Authenticate` challenge we can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The server offered `qop=auth` (we never use `auth-int`).
    pub qop_auth: bool,
    /// `stale=true`: the nonce expired, the credentials were right; answer again at once.
    pub stale: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("not a Digest challenge")]
    NotDigest,
    #[error("challenge without {0}")]
    Missing(&'static str),
    #[error("unsupported algorithm {0:?} (MD5 and SHA-256 are)")]
    Algorithm(String),
    #[error("unsupported qop {0:?} (auth is)")]
    Qop(String),
}

impl Challenge {
    /// Parses a header value: `Digest realm="…", nonce="…", qop="auth,auth-int", …`.
    pub fn parse(value: &str) -> Result<Challenge, ChallengeError> {
        let value = value.trim_start();
        let scheme_end = value.find(char::is_whitespace).unwrap_or(value.len());
        if !value[..scheme_end].eq_ignore_ascii_case("digest") {
            return Err(ChallengeError::NotDigest);
        }
        let mut realm = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut algorithm = Algorithm::Md5;
        let mut qop = None;
        let mut stale = false;
        for (name, v) in params(&value[scheme_end..]) {
            match name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(v),
                "nonce" => nonce = Some(v),
                "opaque" => opaque = Some(v),
                "stale" => stale = v.eq_ignore_ascii_case("true"),
                "qop" => qop = Some(v),
                "algorithm" => {
                    algorithm = match v.to_ascii_uppercase().as_str() {
                        "MD5" => Algorithm::Md5,
                        "SHA-256" => Algorithm::Sha256,
                        _ => return Err(ChallengeError::Algorithm(v)),
                    }
                }
                _ => {}
            }
        }
        let qop_auth = match qop {
            None => false,
            Some(list) => {
                if list
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
                {
                    true
                } else {
                    return Err(ChallengeError::Qop(list));
                }
            }
        };
        Ok(Challenge {
            realm: realm.ok_or(ChallengeError::Missing("realm"))?,
            nonce: nonce.ok_or(ChallengeError::Missing("nonce"))?,
            opaque,
            algorithm,
            qop_auth,
            stale,
        })
    }

    /// The credentials for one request: `method` and request `uri` as sent, `nc` counting the
    /// requests answered with this nonce (from 1), `cnonce` fresh randomness.
    #[allow(clippy::too_many_arguments)]
    pub fn answer(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let a = self.algorithm;
        let ha1 = a.hash(&format!("{username}:{}:{password}", self.realm));
        let ha2 = a.hash(&format!("{method}:{uri}"));
        let nc = format!("{nc:08x}");
        let response = if self.qop_auth {
            a.hash(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce))
        } else {
            a.hash(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            quote(username),
            quote(&self.realm),
            quote(&self.nonce),
            a.name()
        );
        if self.qop_auth {
            let _ = write!(out, ", qop=auth, nc={nc}, cnonce=\"{}\"", quote(cnonce));
        }
        if let Some(opaque) = &self.opaque {
            let _ = write!(out, ", opaque=\"{}\"", quote(opaque));
        }
        out
    }
}

/// Escapes a quoted-string's content (RFC 3261 §25.1).
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `name=value` or `name="quoted, value"` pairs separated by commas.
fn params(mut rest: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let Some(eq) = rest.find('=') else {
            return out;
        };
        let name = rest[..eq].trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            v.push(next);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1: the same credentials answered with SHA-256 and with MD5.
    #[test]
    fn the_rfc_7616_examples_give_their_responses() {
        let challenge = |algorithm: &str| {
            Challenge::parse(&format!(
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
                 algorithm={algorithm}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                 opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            ))
            .unwrap()
        };
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        for (algorithm, response) in [
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ] {
            let answer = challenge(algorithm).answer(
                "Mufasa",
                "Circle of Life",
                "GET",
                "/dir/index.html",
                1,
                cnonce,
            );
            assert!(
                answer.contains(&format!("response=\"{response}\"")),
                "{algorithm}: {answer}"
            );
            assert!(answer.contains("qop=auth, nc=00000001"), "{answer}");
        }
    }

    #[test]
    fn a_challenge_without_qop_is_answered_the_rfc_2069_way() {
        let challenge =
            Challenge::parse("Digest realm=\"carrier.example\", nonce=\"abc\"").unwrap();
        assert!(!challenge.qop_auth);
        assert_eq!(challenge.algorithm, Algorithm::Md5);
        let answer = challenge.answer(
            "branch",
            "secret",
            "REGISTER",
            "sip:carrier.example",
            1,
            "x",
        );
        let ha1 = Algorithm::Md5.hash("branch:carrier.example:secret");
        let ha2 = Algorithm::Md5.hash("REGISTER:sip:carrier.example");
        let expected = Algorithm::Md5.hash(&format!("{ha1}:abc:{ha2}"));
        assert!(
            answer.contains(&format!("response=\"{expected}\"")),
            "{answer}"
        );
        assert!(!answer.contains("qop"), "{answer}");
    }

    #[test]
    fn challenges_we_cannot_answer_say_why() {
        assert_eq!(
            Challenge::parse("Basic realm=\"x\""),
            Err(ChallengeError::NotDigest)
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"x\", nonce=\"n\", algorithm=SHA-512-256"),
            Err(ChallengeError::Algorithm("SHA-512-256".into()))
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"x\", nonce=\"n\", qop=\"auth-int\""),
            Err(ChallengeError::Qop("auth-int".into()))
        );
        assert_eq!(
            Challenge::parse("Digest nonce=\"n\""),
            Err(ChallengeError::Missing("realm"))
        );
        assert!(
            Challenge::parse("Digest realm=\"x\", nonce=\"n\", stale=TRUE")
                .unwrap()
                .stale
        );
    }

    #[test]
    fn quoted_values_keep_commas_and_escapes() {
        let challenge =
            Challenge::parse(r#"Digest realm="a, \"b\"", nonce="n,1", opaque="""#).unwrap();
        assert_eq!(challenge.realm, r#"a, "b""#);
        assert_eq!(challenge.nonce, "n,1");
        assert_eq!(challenge.opaque.as_deref(), Some(""));
    }
}
