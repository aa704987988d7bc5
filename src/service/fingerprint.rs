//! Browser fingerprints: the `X-Client-Fingerprint` header is a small JSON object of
//! attributes (`{"screen":"1920x1080","timezone":"Europe/Berlin","language":"de-DE"}`); a session
//! keeps only a hash of its canonical form.
/// The largest header accepted; anything bigger is ignored.
const MAX_LEN: usize = 2048;

/// The hash of a fingerprint header, or `None` when it is absent, too big or not a JSON object.
/// Keys are sorted, so attribute order does not matter.
pub fn hash(raw: &str) -> Option<String> {
    if raw.len() > MAX_LEN {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(raw).ok()?;
    let object = value.as_object().filter(|o| !o.is_empty())?;
    // serde_json's map is ordered by key, so this is canonical.
    let canonical = serde_json::to_string(object).ok()?;
    Some(crate::tokens::hash(&canonical))
}

#[cfg(test)]
mod tests {
    use super::hash;

    #[test]
    fn attribute_order_does_not_matter_but_values_do() {
        let a = hash(r#"{"screen":"1920x1080","timezone":"Europe/Berlin"}"#);
        let b = hash(r#"{"timezone":"Europe/Berlin","screen":"1920x1080"}"#);
        let c = hash(r#"{"timezone":"America/New_York","screen":"1920x1080"}"#);
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(hash("not json"), None);
        assert_eq!(hash("[1,2]"), None);
        assert_eq!(hash("{}"), None);
    }
}
