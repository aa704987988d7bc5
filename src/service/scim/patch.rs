//! SCIM PATCH (RFC 7644 §3.5.2) applied to a resource in its JSON form: `add`, `replace` and
//! `remove`, with or without `path`, value filters in paths, and what real IdPs send beside
//! the RFC (a capitalised `op`, `"active": "False"`, `replace` without a path carrying an object
//! whose keys are paths, `remove` of `members` carrying the members to remove, `add`/`replace`
//! on `emails[type eq "work"].value` when no such e-mail exists yet).
//!
//! The result is cleaned and checked like a PUT body by the caller; this module only moves
//! values. Pure code.
use serde_json::{Map, Value};

use super::ScimError;
use super::filter::{self, Filter, Op, Path};
use super::schema::{self, Kind, Mutability, ResourceSchema};

/// One operation of a PatchOp request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    Add,
    Replace,
    Remove,
}

/// One operation: what, where (`None`: the value names the attributes) and with what.
pub type Operation = (Verb, Option<Path>, Option<Value>);

/// Reads the `Operations` of a PatchOp body.
pub fn operations(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let schemas_ok = filter::get_ci(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|v| {
                v.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(schema::PATCH_OP))
            })
        });
    if !schemas_ok {
        return Err(ScimError::invalid_syntax(format!(
            "a PATCH body names the schema {}",
            schema::PATCH_OP
        )));
    }
    let Some(ops) = filter::get_ci(body, "Operations").and_then(Value::as_array) else {
        return Err(ScimError::invalid_syntax(
            "a PATCH body has a list of Operations",
        ));
    };
    if ops.is_empty() {
        return Err(ScimError::invalid_syntax(
            "a PATCH body has at least one operation",
        ));
    }
    if ops.len() > 1000 {
        return Err(ScimError::too_many("at most 1000 operations in one PATCH"));
    }
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let verb = match filter::get_ci(op, "op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("add") => Verb::Add,
            Some("replace") => Verb::Replace,
            Some("remove") => Verb::Remove,
            _ => {
                return Err(ScimError::invalid_syntax(
                    "each operation's op is add, replace or remove",
                ));
            }
        };
        let path = match filter::get_ci(op, "path") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if p.trim().is_empty() => None,
            Some(Value::String(p)) => Some(
                filter::parse_path(p.trim())
                    .map_err(|e| ScimError::invalid_path(format!("path `{p}`: {e}")))?,
            ),
            Some(_) => return Err(ScimError::invalid_path("path must be a string")),
        };
        let value = filter::get_ci(op, "value").cloned();
        if verb != Verb::Remove && value.is_none() {
            return Err(ScimError::invalid_value("add and replace carry a value"));
        }
        if verb == Verb::Remove && path.is_none() {
            return Err(ScimError::no_target("remove needs a path"));
        }
        out.push((verb, path, value));
    }
    Ok(out)
}

/// Applies one operation to `resource` (a JSON object in canonical spelling).
pub fn apply(
    schema: &ResourceSchema,
    resource: &mut Map<String, Value>,
    verb: &Verb,
    path: Option<&Path>,
    value: Option<Value>,
) -> Result<(), ScimError> {
    match path {
        Some(path) => apply_path(schema, resource, verb, path, value),
        None => {
            // No path: the value is an object of attributes (or of paths, as Entra ID sends
            // `{"name.givenName": ...}`), each added or replaced.
            let Some(Value::Object(attrs)) = value else {
                return Err(ScimError::invalid_value(
                    "an operation without a path carries an object",
                ));
            };
            for (key, v) in attrs {
                if let Some(ext) = schema.extension(&key) {
                    let Value::Object(inner) = v else {
                        return Err(ScimError::invalid_value(format!("{ext} must be an object")));
                    };
                    for (k, iv) in inner {
                        let p = filter::parse_path(&k)
                            .map_err(|e| ScimError::invalid_path(format!("`{k}`: {e}")))?;
                        let p = Path {
                            urn: Some(ext.to_owned()),
                            ..p
                        };
                        apply_path(schema, resource, verb, &p, Some(iv))?;
                    }
                    continue;
                }
                if key.eq_ignore_ascii_case("schemas") {
                    continue;
                }
                let p = filter::parse_path(&key)
                    .map_err(|e| ScimError::invalid_path(format!("`{key}`: {e}")))?;
                apply_path(schema, resource, verb, &p, Some(v))?;
            }
            Ok(())
        }
    }
}

fn apply_path(
    schema: &ResourceSchema,
    resource: &mut Map<String, Value>,
    verb: &Verb,
    path: &Path,
    value: Option<Value>,
) -> Result<(), ScimError> {
    if ["id", "meta", "schemas"]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(&path.attr))
        && path.urn.is_none()
    {
        return Err(ScimError::mutability(format!(
            "{} cannot be changed",
            path.attr
        )));
    }
    if path.attr.eq_ignore_ascii_case("externalId") && path.urn.is_none() {
        match (verb, value) {
            (Verb::Remove, _) => {
                resource.remove("externalId");
            }
            (_, Some(Value::String(id))) => {
                resource.insert("externalId".into(), Value::String(id));
            }
            (_, Some(Value::Null)) => {
                resource.remove("externalId");
            }
            _ => return Err(ScimError::invalid_value("externalId must be a string")),
        }
        return Ok(());
    }
    if let Some(ext) = path
        .urn
        .as_deref()
        .and_then(|u| schema.extension(&format!("{u}:{}", path.attr)))
        .filter(|_| path.sub.is_none() && path.filter.is_none())
    {
        // The path is an extension's URN: the operation is on all its attributes.
        return whole_extension(schema, resource, ext, verb, value);
    }
    let Some((ext, attr)) = schema.resolve(path.urn.as_deref(), &path.attr) else {
        if path
            .urn
            .as_deref()
            .is_some_and(|u| schema.extension(u).is_none() && !u.eq_ignore_ascii_case(schema.core))
        {
            // An extension we do not serve: ignored, as its attributes are on create.
            return Ok(());
        }
        // An attribute we do not keep: ignored, as unknown attributes are on create.
        return Ok(());
    };
    if attr.mutability == Mutability::ReadOnly {
        return Err(ScimError::mutability(format!("{} is read-only", attr.name)));
    }
    let container: &mut Map<String, Value> = match ext {
        None => resource,
        Some(ext) => {
            let slot = resource
                .entry(ext.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            slot.as_object_mut().expect("an object")
        }
    };
    let key = attr.name;
    let sub =
        match &path.sub {
            Some(sub) => Some(schema::find(attr.subs, sub).ok_or_else(|| {
                ScimError::invalid_path(format!("{key} has no sub-attribute {sub}"))
            })?),
            None => None,
        };
    if let Some(sub) = sub
        && sub.mutability == Mutability::ReadOnly
    {
        return Err(ScimError::mutability(format!(
            "{key}.{} is read-only",
            sub.name
        )));
    }
    let rules = super::Rules(schema);
    match (&path.filter, sub) {
        (None, None) => whole(attr, container, key, verb, value),
        (None, Some(sub)) if !attr.multi => {
            let slot = container
                .entry(key.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let object = slot.as_object_mut().expect("an object");
            match verb {
                Verb::Remove => {
                    object.remove(sub.name);
                }
                _ => {
                    object.insert(sub.name.to_owned(), value.unwrap_or(Value::Null));
                }
            }
            if object.is_empty() {
                container.remove(key);
            }
            Ok(())
        }
        (None, Some(sub)) => {
            // `emails.value` without a filter: every element's sub-attribute.
            if let Some(Value::Array(items)) = container.get_mut(key) {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    match verb {
                        Verb::Remove => {
                            item.remove(sub.name);
                        }
                        _ => {
                            item.insert(sub.name.to_owned(), value.clone().unwrap_or(Value::Null));
                        }
                    }
                }
                Ok(())
            } else if *verb == Verb::Remove {
                Ok(())
            } else {
                let mut item = Map::new();
                item.insert(sub.name.to_owned(), value.unwrap_or(Value::Null));
                container.insert(key.to_owned(), Value::Array(vec![Value::Object(item)]));
                Ok(())
            }
        }
        (Some(f), sub) => {
            if !attr.multi {
                return Err(ScimError::invalid_path(format!(
                    "{key} has a single value; a value filter belongs to a multi-valued attribute"
                )));
            }
            let mut items = match container.remove(key) {
                Some(Value::Array(items)) => items,
                Some(other) => vec![other],
                None => Vec::new(),
            };
            let mut hit = false;
            let mut kept = Vec::with_capacity(items.len());
            for item in items.drain(..) {
                let matched = filter::sub_matches(f, &item, &rules, key)
                    .map_err(|e| ScimError::invalid_filter(e.to_string()))?;
                if !matched {
                    kept.push(item);
                    continue;
                }
                hit = true;
                match (verb, sub) {
                    (Verb::Remove, None) => {}
                    (Verb::Remove, Some(sub)) => {
                        let mut item = item;
                        if let Some(o) = item.as_object_mut() {
                            o.remove(sub.name);
                        }
                        kept.push(item);
                    }
                    (_, Some(sub)) => {
                        let mut item = item;
                        if let Some(o) = item.as_object_mut() {
                            o.insert(sub.name.to_owned(), value.clone().unwrap_or(Value::Null));
                        }
                        kept.push(item);
                    }
                    (Verb::Replace, None) => kept.push(value.clone().unwrap_or(Value::Null)),
                    (Verb::Add, None) => {
                        let mut item = item;
                        merge(&mut item, value.clone().unwrap_or(Value::Null));
                        kept.push(item);
                    }
                }
            }
            if !hit && *verb != Verb::Remove {
                // Nothing matched: an `attr eq "x"` filter names the element to create, as
                // Entra ID expects of `emails[type eq "work"].value`.
                let Filter::Compare(p, Op::Eq, Value::String(want)) = f.as_ref() else {
                    return Err(ScimError::no_target(format!(
                        "no value of {key} matches the filter"
                    )));
                };
                if p.filter.is_some() || p.sub.is_some() || p.urn.is_some() {
                    return Err(ScimError::no_target(format!(
                        "no value of {key} matches the filter"
                    )));
                }
                let mut item = Map::new();
                item.insert(p.attr.clone(), Value::String(want.clone()));
                let mut item = Value::Object(item);
                match sub {
                    Some(sub) => {
                        item[sub.name] = value.unwrap_or(Value::Null);
                    }
                    None => merge(&mut item, value.unwrap_or(Value::Null)),
                }
                kept.push(item);
            }
            if !kept.is_empty() {
                container.insert(key.to_owned(), Value::Array(kept));
            }
            Ok(())
        }
    }
}

/// An operation whose path is an extension's URN (scim2-tester sends these): `add` merges its
/// attributes, `replace` sets them to the value, `remove` drops them.
fn whole_extension(
    schema: &ResourceSchema,
    resource: &mut Map<String, Value>,
    ext: &str,
    verb: &Verb,
    value: Option<Value>,
) -> Result<(), ScimError> {
    if *verb == Verb::Remove {
        resource.remove(ext);
        return Ok(());
    }
    let Some(Value::Object(attrs)) = value else {
        return Err(ScimError::invalid_value(format!("{ext} takes an object")));
    };
    if *verb == Verb::Replace {
        resource.remove(ext);
    }
    for (k, v) in attrs {
        if k.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let p =
            filter::parse_path(&k).map_err(|e| ScimError::invalid_path(format!("`{k}`: {e}")))?;
        let p = Path {
            urn: Some(ext.to_owned()),
            ..p
        };
        apply_path(schema, resource, verb, &p, Some(v))?;
    }
    Ok(())
}

/// An operation on a whole attribute.
fn whole(
    attr: &schema::Attr,
    container: &mut Map<String, Value>,
    key: &str,
    verb: &Verb,
    value: Option<Value>,
) -> Result<(), ScimError> {
    match verb {
        Verb::Remove => {
            match (attr.multi, value) {
                // `remove` of `members` with the members to remove as its value (Entra ID).
                (true, Some(v)) if !v.is_null() => {
                    let gone: Vec<Value> = match v {
                        Value::Array(a) => a,
                        other => vec![other],
                    };
                    if let Some(Value::Array(items)) = container.get_mut(key) {
                        items.retain(|item| !gone.iter().any(|g| same_value(item, g)));
                        if items.is_empty() {
                            container.remove(key);
                        }
                    }
                }
                _ => {
                    container.remove(key);
                }
            }
            Ok(())
        }
        Verb::Replace | Verb::Add => {
            let value = value.unwrap_or(Value::Null);
            if value.is_null() {
                container.remove(key);
                return Ok(());
            }
            if attr.multi {
                let new: Vec<Value> = match value {
                    Value::Array(a) => a,
                    other => vec![other],
                };
                if *verb == Verb::Replace {
                    container.insert(key.to_owned(), Value::Array(new));
                } else {
                    let slot = container
                        .entry(key.to_owned())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if !slot.is_array() {
                        *slot = Value::Array(vec![slot.take()]);
                    }
                    let items = slot.as_array_mut().expect("an array");
                    // A new primary value takes the mark from the old ones.
                    if new.iter().any(|v| v.get("primary").is_some_and(truthy)) {
                        for item in items.iter_mut().filter_map(Value::as_object_mut) {
                            item.remove("primary");
                        }
                    }
                    for v in new {
                        if !items.iter().any(|i| same_value(i, &v) && i == &v) {
                            items.retain(|i| !same_value(i, &v));
                            items.push(v);
                        }
                    }
                }
            } else if attr.kind == Kind::Complex && value.is_object() {
                let slot = container
                    .entry(key.to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                merge(slot, value);
            } else {
                container.insert(key.to_owned(), value);
            }
            Ok(())
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Whether two values of a multi-valued attribute are the same value (by their `value`).
fn same_value(a: &Value, b: &Value) -> bool {
    let key = |v: &Value| -> Option<String> {
        match v {
            Value::Object(_) => filter::get_ci(v, "value")
                .and_then(Value::as_str)
                .map(str::to_lowercase),
            Value::String(s) => Some(s.to_lowercase()),
            _ => None,
        }
    };
    match (key(a), key(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Merges the sub-attributes of `from` into `into` (both objects).
fn merge(into: &mut Value, from: Value) {
    match (into.as_object_mut(), from) {
        (Some(target), Value::Object(src)) => {
            for (k, v) in src {
                let existing = target.keys().find(|t| t.eq_ignore_ascii_case(&k)).cloned();
                if let Some(existing) = existing {
                    target.remove(&existing);
                }
                target.insert(k, v);
            }
        }
        (_, from) => *into = from,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(resource: Value, body: Value) -> Result<Value, ScimError> {
        let mut r = resource.as_object().expect("object").clone();
        for (verb, path, value) in operations(&body)? {
            apply(&schema::USER_SCHEMA, &mut r, &verb, path.as_ref(), value)?;
        }
        Ok(Value::Object(r))
    }

    fn ops(list: Value) -> Value {
        json!({ "schemas": [schema::PATCH_OP], "Operations": list })
    }

    fn alice() -> Value {
        json!({
            "userName": "alice@corp.example",
            "name": {"givenName": "Alice", "familyName": "Liddell"},
            "active": true,
            "emails": [{"value": "alice@corp.example", "type": "work", "primary": true}],
        })
    }

    #[test]
    fn okta_deactivates_with_a_pathless_replace() {
        let out = run(
            alice(),
            ops(json!([{"op": "replace", "value": {"active": false}}])),
        )
        .expect("patch");
        assert_eq!(out["active"], json!(false));
        assert_eq!(out["userName"], json!("alice@corp.example"));
    }

    #[test]
    fn entra_sends_capitalised_ops_and_string_booleans() {
        let out = run(
            alice(),
            ops(json!([{"op": "Replace", "path": "active", "value": "False"}])),
        )
        .expect("patch");
        // The string stays a string here; cleaning reads it as the boolean false.
        let cleaned = schema::USER_SCHEMA.clean(&out).expect("clean");
        assert_eq!(cleaned["active"], json!(false));
    }

    #[test]
    fn entra_adds_a_work_email_through_a_filtered_path() {
        let out = run(
            json!({"userName": "bob"}),
            ops(json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "bob@corp.example"}])),
        )
        .expect("patch");
        assert_eq!(
            out["emails"],
            json!([{"type": "work", "value": "bob@corp.example"}])
        );
        let out = run(out, ops(json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "robert@corp.example"}]))).expect("patch");
        assert_eq!(
            out["emails"],
            json!([{"type": "work", "value": "robert@corp.example"}])
        );
    }

    #[test]
    fn pathless_keys_may_be_paths_and_extension_urns() {
        let out = run(
            alice(),
            ops(json!([{"op": "replace", "value": {
                "name.givenName": "Alicia",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Research",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "42"}
            }}])),
        )
        .expect("patch");
        assert_eq!(
            out["name"],
            json!({"givenName": "Alicia", "familyName": "Liddell"})
        );
        assert_eq!(
            out[schema::ENTERPRISE],
            json!({"department": "Research", "employeeNumber": "42"})
        );
    }

    #[test]
    fn replace_of_a_complex_attribute_keeps_the_sub_attributes_it_does_not_name() {
        let out = run(
            alice(),
            ops(json!([{"op": "replace", "path": "name", "value": {"givenName": "Al"}}])),
        )
        .expect("patch");
        assert_eq!(
            out["name"],
            json!({"givenName": "Al", "familyName": "Liddell"})
        );
    }

    #[test]
    fn members_are_added_and_removed_by_filter_or_by_value() {
        let group = json!({"displayName": "eng", "members": [{"value": "a"}, {"value": "b"}, {"value": "c"}]});
        let mut r = group.as_object().expect("object").clone();
        let body = json!({"schemas": [schema::PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": "d"}, {"value": "a"}]},
            {"op": "remove", "path": "members[value eq \"b\"]"},
            {"op": "Remove", "path": "members", "value": [{"value": "c"}]}
        ]});
        for (verb, path, value) in operations(&body).expect("ops") {
            apply(&schema::GROUP_SCHEMA, &mut r, &verb, path.as_ref(), value).expect("apply");
        }
        assert_eq!(
            Value::Object(r.clone()),
            json!({"displayName": "eng", "members": [{"value": "a"}, {"value": "d"}]})
        );
        let body = json!({"schemas": [schema::PATCH_OP], "Operations": [
            {"op": "replace", "path": "members", "value": [{"value": "z"}]}
        ]});
        for (verb, path, value) in operations(&body).expect("ops") {
            apply(&schema::GROUP_SCHEMA, &mut r, &verb, path.as_ref(), value).expect("apply");
        }
        assert_eq!(r["members"], json!([{"value": "z"}]));
    }

    #[test]
    fn refusals_name_the_scim_type() {
        let cases = [
            (json!([{"op": "remove"}]), "noTarget"),
            (json!([{"op": "jump", "path": "active"}]), "invalidSyntax"),
            (
                json!([{"op": "replace", "path": "id", "value": "x"}]),
                "mutability",
            ),
            (
                json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
                "mutability",
            ),
            (
                json!([{"op": "add", "path": "emails[", "value": "x"}]),
                "invalidPath",
            ),
            (
                json!([{"op": "replace", "path": "emails[type eq \"home\" or type eq \"other\"].value", "value": "x"}]),
                "noTarget",
            ),
            (
                json!([{"op": "replace", "path": "name[givenName eq \"x\"]", "value": "x"}]),
                "invalidPath",
            ),
        ];
        for (list, want) in cases {
            let err = run(alice(), ops(list.clone())).expect_err("refused");
            assert_eq!(err.scim_type(), Some(want), "{list}");
        }
        let err = run(alice(), json!({"Operations": []})).expect_err("refused");
        assert_eq!(err.scim_type(), Some("invalidSyntax"));
    }
}
