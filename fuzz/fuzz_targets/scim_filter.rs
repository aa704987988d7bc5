//! The SCIM filter and path parser on arbitrary input: it must never panic, and a filter it
//! accepts must evaluate (to true, false or a filter error) without panicking on a resource
//! that has every kind of value.
#![no_main]
use authctl::service::scim::{Rules, filter, schema};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = filter::parse_path(text);
    if let Ok(parsed) = filter::parse(text) {
        let resource = serde_json::json!({
            "id": "a", "userName": "Bjensen", "active": true, "x": 1.5, "nothing": null,
            "name": {"givenName": "B"},
            "emails": [{"value": "b@example.com", "type": "work", "primary": true}, "plain"],
            "meta": {"created": "2026-01-01T00:00:00Z"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "d"}
        });
        let _ = filter::matches(&parsed, &resource, &Rules(&schema::USER_SCHEMA));
    }
});
