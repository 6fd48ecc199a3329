//! Request paths with caller-supplied ids. Every id becomes exactly one percent-encoded
//! path segment, so `../x`, `a/b` or `%2e%2e` can never reach another endpoint.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::error::{ErrorKind, LarkError};

/// Everything but RFC 3986 unreserved characters is encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

const MAX_SEGMENT_BYTES: usize = 512;

/// Fills each `{}` in `template` with the next id, encoded as one segment.
pub fn api_path(template: &str, ids: &[&str]) -> Result<String, LarkError> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut parts = template.split("{}");
    out.push_str(parts.next().unwrap_or(""));
    let mut ids = ids.iter();
    for rest in parts {
        let id = ids.next().ok_or_else(|| {
            LarkError::new(
                ErrorKind::InvalidArgument,
                "build request",
                "missing path id",
            )
        })?;
        // URL parsers resolve "." and ".." segments (also when written %2e), so they are refused.
        // Lark's ids are short; a huge one would make a URL no server accepts.
        if id.is_empty() || *id == "." || *id == ".." || id.len() > MAX_SEGMENT_BYTES {
            return Err(LarkError::new(
                ErrorKind::InvalidArgument,
                "build request",
                if id.len() > MAX_SEGMENT_BYTES {
                    format!("an id of {} bytes is not a valid id", id.len())
                } else {
                    format!("`{id}` is not a valid id")
                },
            ));
        }
        out.extend(utf8_percent_encode(id, SEGMENT));
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_stay_inside_their_segment() {
        let p = |id: &str| api_path("/open-apis/contact/v3/users/{}", &[id]);
        assert_eq!(p("ou_1").unwrap(), "/open-apis/contact/v3/users/ou_1");
        assert_eq!(p("../x").unwrap(), "/open-apis/contact/v3/users/..%2Fx");
        assert_eq!(p("a/b").unwrap(), "/open-apis/contact/v3/users/a%2Fb");
        assert_eq!(
            p("%2e%2e").unwrap(),
            "/open-apis/contact/v3/users/%252e%252e"
        );
        assert_eq!(p("a?b#c").unwrap(), "/open-apis/contact/v3/users/a%3Fb%23c");
        assert_eq!(
            p("张伟").unwrap(),
            "/open-apis/contact/v3/users/%E5%BC%A0%E4%BC%9F"
        );
        assert!(p("..").is_err());
        assert!(p(".").is_err());
        assert!(p("").is_err());
        assert!(p(&"x".repeat(65_536)).is_err());
    }
}
