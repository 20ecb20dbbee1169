//! Browser sessions: HS256 JWTs that name a server-side session row. The token proves who signed
//! it; the session row lets logout and password changes end a login at once.

use super::{Authenticator, Principal, UserPrincipal};
use crate::error::{AppError, AppResult};
use crate::store::users;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Session id.
    pub sid: String,
    pub username: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Expiry, unix seconds.
    pub exp: i64,
}

pub fn sign(secret: &[u8], claims: &Claims) -> String {
    crate::crypto::jwt_provider::install();
    let key = EncodingKey::from_secret(secret).expect("the JWT secret is 32 bytes");
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key)
        .expect("HS256 signing of a small JSON object cannot fail")
}

/// Checks the signature and decodes the claims. Expiry is checked by the caller against the
/// appliance clock.
pub fn decode(secret: &[u8], token: &str) -> Option<Claims> {
    crate::crypto::jwt_provider::install();
    let mut v = Validation::new(Algorithm::HS256);
    v.validate_exp = false;
    v.required_spec_claims.clear();
    let key = DecodingKey::from_secret(secret).ok()?;
    jsonwebtoken::decode::<Claims>(token, &key, &v)
        .ok()
        .map(|d| d.claims)
}

pub(super) async fn verify_session(a: &Authenticator, token: &str) -> AppResult<Principal> {
    let claims = decode(a.keys.jwt_secret(), token)
        .ok_or_else(|| AppError::unauthenticated("Invalid token"))?;
    let now = a.clock.now_ms();
    if claims.exp * 1000 <= now {
        return Err(AppError::unauthenticated("Token has expired"));
    }
    let sid = claims.sid.clone();
    let (session, user) = a
        .store
        .read(move |c| {
            let s = users::get_session(c, &sid)?;
            let u = match &s {
                Some(s) => Some(users::get(c, &s.user_id)?),
                None => None,
            };
            Ok((s, u))
        })
        .await?;
    let (Some(session), Some(user)) = (session, user) else {
        return Err(AppError::unauthenticated("Session has ended"));
    };
    if session.revoked_at.is_some() || session.expires_at <= now || session.user_id != claims.sub {
        return Err(AppError::unauthenticated("Session has ended"));
    }
    if !user.is_active {
        return Err(AppError::unauthenticated("Account disabled"));
    }
    Ok(Principal::User(UserPrincipal {
        user_id: user.id,
        username: user.username,
        role: user.role,
        session_id: session.id,
        must_change_password: user.must_change_password,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_decode_and_tamper() {
        let c = Claims {
            sub: "u".into(),
            sid: "s".into(),
            username: "admin".into(),
            iat: 1,
            exp: 2,
        };
        let t = sign(b"0123456789abcdef0123456789abcdef", &c);
        let d = decode(b"0123456789abcdef0123456789abcdef", &t).unwrap();
        assert_eq!(d.sid, "s");
        assert!(decode(b"another secret, 32 bytes long!!!", &t).is_none());
        let mut bad = t.clone();
        bad.push('x');
        assert!(decode(b"0123456789abcdef0123456789abcdef", &bad).is_none());
    }
}
