//! The SCIM schemas authctl serves (RFC 7643 §4, §8.7): one table of attributes from which
//! `/Schemas` is written, incoming resources are cleaned (unknown attributes dropped, read-only
//! ones ignored, types checked, the booleans IdPs send as strings read) and filters learn
//! which values compare case-exactly. Only attributes authctl keeps and gives back are listed.
use serde_json::{Map, Value, json};

use super::ScimError;

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SPC: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Boolean,
    Complex,
    Reference,
    Binary,
    DateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadWrite,
    ReadOnly,
    Immutable,
}

/// One attribute of a schema.
#[derive(Debug)]
pub struct Attr {
    pub name: &'static str,
    pub kind: Kind,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub unique: bool,
    pub canonical: &'static [&'static str],
    pub references: &'static [&'static str],
    pub subs: &'static [Attr],
    pub description: &'static str,
}

const fn s(name: &'static str, description: &'static str) -> Attr {
    Attr {
        name,
        kind: Kind::String,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        unique: false,
        canonical: &[],
        references: &[],
        subs: &[],
        description,
    }
}

const fn typed(mut a: Attr, kind: Kind) -> Attr {
    a.kind = kind;
    a
}

const fn complex(
    name: &'static str,
    multi: bool,
    subs: &'static [Attr],
    description: &'static str,
) -> Attr {
    let mut a = s(name, description);
    a.kind = Kind::Complex;
    a.multi = multi;
    a.subs = subs;
    a
}

const fn canonical(mut a: Attr, values: &'static [&'static str]) -> Attr {
    a.canonical = values;
    a
}

const fn reference(mut a: Attr, to: &'static [&'static str]) -> Attr {
    a.kind = Kind::Reference;
    a.references = to;
    a
}

const fn read_only(mut a: Attr) -> Attr {
    a.mutability = Mutability::ReadOnly;
    a
}

const fn immutable(mut a: Attr) -> Attr {
    a.mutability = Mutability::Immutable;
    a
}

const fn exact(mut a: Attr) -> Attr {
    a.case_exact = true;
    a
}

const PRIMARY: Attr = typed(
    s(
        "primary",
        "Whether this is the primary value (at most one is).",
    ),
    Kind::Boolean,
);
const DISPLAY: Attr = s("display", "A human-readable name of the value.");

const EMAIL_SUBS: &[Attr] = &[
    s("value", "The e-mail address."),
    DISPLAY,
    canonical(
        s("type", "work, home or other."),
        &["work", "home", "other"],
    ),
    PRIMARY,
];
const PHONE_SUBS: &[Attr] = &[
    s("value", "The phone number."),
    DISPLAY,
    canonical(
        s("type", "work, home, mobile, fax, pager or other."),
        &["work", "home", "mobile", "fax", "pager", "other"],
    ),
    PRIMARY,
];
const IM_SUBS: &[Attr] = &[
    s("value", "The instant messaging address."),
    DISPLAY,
    s("type", "The kind of service."),
    PRIMARY,
];
const PHOTO_SUBS: &[Attr] = &[
    reference(s("value", "The URL of the photo."), &["external"]),
    DISPLAY,
    canonical(s("type", "photo or thumbnail."), &["photo", "thumbnail"]),
    PRIMARY,
];
const ADDRESS_SUBS: &[Attr] = &[
    s("formatted", "The full mailing address."),
    s("streetAddress", "The street."),
    s("locality", "The city."),
    s("region", "The state or region."),
    s("postalCode", "The postal code."),
    s("country", "The country (ISO 3166-1 alpha-2)."),
    canonical(
        s("type", "work, home or other."),
        &["work", "home", "other"],
    ),
    PRIMARY,
];
const NAME_SUBS: &[Attr] = &[
    s("formatted", "The full name."),
    s("familyName", "The family name."),
    s("givenName", "The given name."),
    s("middleName", "The middle name."),
    s("honorificPrefix", "A title before the name."),
    s("honorificSuffix", "A suffix after the name."),
];
const GROUP_REF_SUBS: &[Attr] = &[
    read_only(s("value", "The id of the group.")),
    read_only(reference(s("$ref", "The URI of the group."), &["Group"])),
    read_only(s("display", "The name of the group.")),
    read_only(canonical(
        s("type", "direct or indirect."),
        &["direct", "indirect"],
    )),
];

const USER_NAME: Attr = {
    let mut a = s(
        "userName",
        "The name the IdP knows the user by; matched against the SAML NameID. Unique per provider, case-insensitive.",
    );
    a.required = true;
    a.unique = true;
    a
};

pub const USER_ATTRS: &[Attr] = &[
    USER_NAME,
    complex(
        "name",
        false,
        NAME_SUBS,
        "The components of the user's name.",
    ),
    s("displayName", "The name shown for the user."),
    s("nickName", "A casual name."),
    reference(
        s("profileUrl", "A URL of the user's profile."),
        &["external"],
    ),
    s("title", "The user's title."),
    s("userType", "The user's relation to the organisation."),
    s(
        "preferredLanguage",
        "The preferred written or spoken language.",
    ),
    s("locale", "The user's locale."),
    s("timezone", "The user's time zone (IANA name)."),
    typed(
        s(
            "active",
            "Whether the account may sign in; false disables it and ends its sessions and keys.",
        ),
        Kind::Boolean,
    ),
    complex(
        "emails",
        true,
        EMAIL_SUBS,
        "E-mail addresses; the primary one (or the first in the provider's domains) is the account's address.",
    ),
    complex("phoneNumbers", true, PHONE_SUBS, "Phone numbers."),
    complex("ims", true, IM_SUBS, "Instant messaging addresses."),
    complex("photos", true, PHOTO_SUBS, "URLs of photos."),
    complex("addresses", true, ADDRESS_SUBS, "Physical addresses."),
    read_only(complex(
        "groups",
        true,
        GROUP_REF_SUBS,
        "The groups the user is in (read-only; change a group's members instead).",
    )),
];

const MANAGER_SUBS: &[Attr] = &[
    s("value", "The id of the manager's User."),
    reference(s("$ref", "The URI of the manager's User."), &["User"]),
    read_only(s("displayName", "The manager's name.")),
];

pub const ENTERPRISE_ATTRS: &[Attr] = &[
    s("employeeNumber", "The employee number."),
    s("costCenter", "The cost center."),
    s("organization", "The organisation."),
    s("division", "The division."),
    s("department", "The department."),
    complex("manager", false, MANAGER_SUBS, "The user's manager."),
];

const MEMBER_SUBS: &[Attr] = &[
    immutable(s("value", "The id of a member User.")),
    immutable(reference(s("$ref", "The URI of the member."), &["User"])),
    immutable(s("display", "The member's name, as the client gave it.")),
    immutable(canonical(s("type", "User."), &["User"])),
];

const DISPLAY_NAME: Attr = {
    let mut a = s(
        "displayName",
        "The group's name; mapped to roles by the provider's --map-group GROUP=ROLE rules. Unique per provider.",
    );
    a.required = true;
    a
};

pub const GROUP_ATTRS: &[Attr] = &[
    DISPLAY_NAME,
    complex("members", true, MEMBER_SUBS, "The users in the group."),
];

/// A resource type's schemas: its core schema and its extensions.
pub struct ResourceSchema {
    pub core: &'static str,
    pub core_attrs: &'static [Attr],
    pub extensions: &'static [(&'static str, &'static [Attr])],
}

pub const USER_SCHEMA: ResourceSchema = ResourceSchema {
    core: USER,
    core_attrs: USER_ATTRS,
    extensions: &[(ENTERPRISE, ENTERPRISE_ATTRS)],
};

pub const GROUP_SCHEMA: ResourceSchema = ResourceSchema {
    core: GROUP,
    core_attrs: GROUP_ATTRS,
    extensions: &[],
};

pub fn find<'a>(attrs: &'a [Attr], name: &str) -> Option<&'a Attr> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

impl ResourceSchema {
    /// The attributes of the schema `urn` (`None`: the core schema).
    pub fn attrs_of(&self, urn: Option<&str>) -> Option<&'static [Attr]> {
        match urn {
            None => Some(self.core_attrs),
            Some(u) if u.eq_ignore_ascii_case(self.core) => Some(self.core_attrs),
            Some(u) => self
                .extensions
                .iter()
                .find(|(id, _)| id.eq_ignore_ascii_case(u))
                .map(|(_, attrs)| *attrs),
        }
    }

    /// The extension URN (canonical spelling) of `urn`, if it is one of ours.
    pub fn extension(&self, urn: &str) -> Option<&'static str> {
        self.extensions
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(urn))
            .map(|(id, _)| *id)
    }

    /// Finds an attribute by URN (optional) and name: the core schema first, then each
    /// extension (a name without URN may name an extension attribute). Returns the extension
    /// URN the attribute belongs to (`None`: core) and its definition.
    pub fn resolve(
        &self,
        urn: Option<&str>,
        name: &str,
    ) -> Option<(Option<&'static str>, &'static Attr)> {
        match urn {
            Some(u) if !u.eq_ignore_ascii_case(self.core) => {
                let ext = self.extension(u)?;
                find(self.attrs_of(Some(ext))?, name).map(|a| (Some(ext), a))
            }
            _ => find(self.core_attrs, name).map(|a| (None, a)).or_else(|| {
                if urn.is_some() || is_common(name) {
                    return None;
                }
                self.extensions
                    .iter()
                    .find_map(|(id, attrs)| find(attrs, name).map(|a| (Some(*id), a)))
            }),
        }
    }

    /// Cleans an incoming resource: keeps the attributes of our schemas that a client may
    /// write (read-only ones and unknown ones are dropped, as RFC 7644 §3.3 allows), checks
    /// their types, and reads `"True"`/`"false"` strings as booleans. Keys get their
    /// canonical spelling; an extension's attributes stay under its URN.
    pub fn clean(&self, input: &Value) -> Result<Map<String, Value>, ScimError> {
        let Some(object) = input.as_object() else {
            return Err(ScimError::invalid_syntax("the body must be a JSON object"));
        };
        let mut out = Map::new();
        for (key, value) in object {
            if let Some(ext) = self.extension(key) {
                let attrs = self.attrs_of(Some(ext)).unwrap_or(&[]);
                if value.is_null() {
                    continue;
                }
                let Some(inner) = value.as_object() else {
                    return Err(ScimError::invalid_value(format!("{ext} must be an object")));
                };
                let cleaned = clean_attrs(attrs, inner, "")?;
                if !cleaned.is_empty() {
                    out.insert(ext.to_owned(), Value::Object(cleaned));
                }
                continue;
            }
            if let Some(attr) = find(self.core_attrs, key) {
                if attr.mutability == Mutability::ReadOnly {
                    continue;
                }
                if let Some(v) = clean_value(attr, value, "")? {
                    out.insert(attr.name.to_owned(), v);
                }
            }
        }
        Ok(out)
    }

    /// Whether the values of `attr` (`.sub`) compare case-exactly.
    pub fn case_exact(&self, attr: &str, sub: Option<&str>) -> bool {
        if sub.is_none()
            && (attr.eq_ignore_ascii_case("id") || attr.eq_ignore_ascii_case("externalId"))
        {
            return true;
        }
        if attr.eq_ignore_ascii_case("meta") {
            return sub.is_some_and(|s| s.eq_ignore_ascii_case("version"));
        }
        let Some((_, a)) = self.resolve(None, attr) else {
            return false;
        };
        match sub {
            None => a.case_exact || a.kind == Kind::Binary,
            Some(sub) => find(a.subs, sub)
                .is_some_and(|s| s.case_exact || s.kind == Kind::Binary || s.name == "$ref"),
        }
    }
}

/// The attributes every resource has (RFC 7643 §3.1), which no schema lists.
pub fn is_common(name: &str) -> bool {
    ["id", "externalId", "meta", "schemas"]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name))
}

fn clean_attrs(
    attrs: &[Attr],
    input: &Map<String, Value>,
    parent: &str,
) -> Result<Map<String, Value>, ScimError> {
    let mut out = Map::new();
    for (key, value) in input {
        let Some(attr) = find(attrs, key) else {
            continue;
        };
        if attr.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(v) = clean_value(attr, value, parent)? {
            out.insert(attr.name.to_owned(), v);
        }
    }
    Ok(out)
}

/// The cleaned form of one attribute's value; `None` when it is unassigned (null, empty).
pub fn clean_value(attr: &Attr, value: &Value, parent: &str) -> Result<Option<Value>, ScimError> {
    let label = if parent.is_empty() {
        attr.name.to_owned()
    } else {
        format!("{parent}.{}", attr.name)
    };
    if value.is_null() {
        return Ok(None);
    }
    if attr.multi {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            // A single value where a list belongs: a list of one.
            other => vec![other],
        };
        let mut out = Vec::new();
        for item in items {
            if let Some(v) = clean_single(attr, item, &label)?
                && !out.contains(&v)
            {
                out.push(v);
            }
        }
        // At most one primary (RFC 7643 §2.4): the last one marked wins.
        if let Some(last) = out
            .iter()
            .rposition(|v| v.get("primary") == Some(&Value::Bool(true)))
        {
            for (i, v) in out.iter_mut().enumerate() {
                if i != last
                    && let Some(o) = v.as_object_mut()
                    && o.get("primary") == Some(&Value::Bool(true))
                {
                    o.insert("primary".into(), Value::Bool(false));
                }
            }
        }
        return Ok((!out.is_empty()).then_some(Value::Array(out)));
    }
    clean_single(attr, value, &label)
}

fn clean_single(attr: &Attr, value: &Value, label: &str) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    match attr.kind {
        Kind::Complex => {
            let Some(object) = value.as_object() else {
                // A manager given as its id alone (Entra ID sends this).
                if let (Value::String(id), Some(_), false) =
                    (value, find(attr.subs, "value"), attr.multi)
                {
                    return Ok(Some(json!({ "value": id })));
                }
                return Err(ScimError::invalid_value(format!(
                    "{label} must be an object"
                )));
            };
            let cleaned = clean_attrs(attr.subs, object, label)?;
            Ok((!cleaned.is_empty()).then_some(Value::Object(cleaned)))
        }
        Kind::Boolean => match value {
            Value::Bool(b) => Ok(Some(Value::Bool(*b))),
            Value::String(text) if text.eq_ignore_ascii_case("true") => Ok(Some(Value::Bool(true))),
            Value::String(text) if text.eq_ignore_ascii_case("false") => {
                Ok(Some(Value::Bool(false)))
            }
            _ => Err(ScimError::invalid_value(format!(
                "{label} must be true or false"
            ))),
        },
        Kind::String | Kind::Reference | Kind::Binary | Kind::DateTime => match value {
            Value::String(text) if text.is_empty() => Ok(None),
            Value::String(text) => {
                if text.contains('\0') {
                    return Err(ScimError::invalid_value(format!(
                        "{label} must not contain a NUL character"
                    )));
                }
                if text.chars().count() > 2048 {
                    return Err(ScimError::invalid_value(format!(
                        "{label} is longer than 2048 characters"
                    )));
                }
                Ok(Some(Value::String(text.clone())))
            }
            _ => Err(ScimError::invalid_value(format!(
                "{label} must be a string"
            ))),
        },
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::String => "string",
        Kind::Boolean => "boolean",
        Kind::Complex => "complex",
        Kind::Reference => "reference",
        Kind::Binary => "binary",
        Kind::DateTime => "dateTime",
    }
}

fn attr_json(a: &Attr) -> Value {
    let mut o = json!({
        "name": a.name,
        "type": kind_name(a.kind),
        "multiValued": a.multi,
        "description": a.description,
        "required": a.required,
        "caseExact": a.case_exact || a.kind == Kind::Reference,
        "mutability": match a.mutability {
            Mutability::ReadWrite => "readWrite",
            Mutability::ReadOnly => "readOnly",
            Mutability::Immutable => "immutable",
        },
        "returned": "default",
        "uniqueness": if a.unique { "server" } else { "none" },
    });
    if !a.canonical.is_empty() {
        o["canonicalValues"] = json!(a.canonical);
    }
    if a.kind == Kind::Reference {
        o["referenceTypes"] = json!(a.references);
    }
    if a.kind == Kind::Complex {
        o["subAttributes"] = Value::Array(a.subs.iter().map(attr_json).collect());
    }
    o
}

fn schema_json(id: &str, name: &str, description: &str, attrs: &[Attr], base: &str) -> Value {
    json!({
        "schemas": [SCHEMA],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attrs.iter().map(attr_json).collect::<Vec<_>>(),
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{id}") },
    })
}

/// The schemas `/Schemas` lists: the resources' and the discovery ones (RFC 7643 §5–7).
pub fn schemas(base: &str) -> Vec<Value> {
    vec![
        schema_json(USER, "User", "User Account", USER_ATTRS, base),
        schema_json(
            ENTERPRISE,
            "EnterpriseUser",
            "Enterprise User",
            ENTERPRISE_ATTRS,
            base,
        ),
        schema_json(GROUP, "Group", "Group", GROUP_ATTRS, base),
        schema_json(
            SPC,
            "Service Provider Configuration",
            "Schema for representing the service provider's configuration",
            SPC_ATTRS,
            base,
        ),
        schema_json(
            RESOURCE_TYPE,
            "ResourceType",
            "Specifies the schema that describes a SCIM resource type",
            RESOURCE_TYPE_ATTRS,
            base,
        ),
        schema_json(
            SCHEMA,
            "Schema",
            "Specifies the schema attribute definitions",
            SCHEMA_ATTRS,
            base,
        ),
    ]
}

const SUPPORTED: &[Attr] = &[read_only(typed(
    s("supported", "Whether the feature is supported."),
    Kind::Boolean,
))];
const BULK_SUBS: &[Attr] = &[
    read_only(typed(
        s("supported", "Whether bulk is supported."),
        Kind::Boolean,
    )),
    read_only(s("maxOperations", "The most operations in one request.")),
    read_only(s("maxPayloadSize", "The largest payload in bytes.")),
];
const FILTER_SUBS: &[Attr] = &[
    read_only(typed(
        s("supported", "Whether filtering is supported."),
        Kind::Boolean,
    )),
    read_only(s("maxResults", "The most resources a response holds.")),
];
const AUTH_SUBS: &[Attr] = &[
    read_only(s("type", "The scheme's type, e.g. oauthbearertoken.")),
    read_only(s("name", "The scheme's name.")),
    read_only(s("description", "What the scheme is.")),
    read_only(reference(
        s("specUri", "The scheme's specification."),
        &["external"],
    )),
    read_only(reference(
        s("documentationUri", "Where it is documented."),
        &["external"],
    )),
    read_only(typed(
        s("primary", "Whether it is the preferred scheme."),
        Kind::Boolean,
    )),
];
const SPC_ATTRS: &[Attr] = &[
    read_only(reference(
        s("documentationUri", "Where the service is documented."),
        &["external"],
    )),
    read_only(complex("patch", false, SUPPORTED, "PATCH configuration.")),
    read_only(complex("bulk", false, BULK_SUBS, "Bulk configuration.")),
    read_only(complex(
        "filter",
        false,
        FILTER_SUBS,
        "Filter configuration.",
    )),
    read_only(complex(
        "changePassword",
        false,
        SUPPORTED,
        "Password change configuration.",
    )),
    read_only(complex("sort", false, SUPPORTED, "Sort configuration.")),
    read_only(complex("etag", false, SUPPORTED, "ETag configuration.")),
    read_only(complex(
        "authenticationSchemes",
        true,
        AUTH_SUBS,
        "The supported authentication schemes.",
    )),
];
const EXTENSION_SUBS: &[Attr] = &[
    read_only(reference(
        exact(s("schema", "The URI of an extension schema.")),
        &["uri"],
    )),
    read_only(typed(
        s("required", "Whether the extension is required."),
        Kind::Boolean,
    )),
];
const RESOURCE_TYPE_ATTRS: &[Attr] = &[
    read_only(s("id", "The resource type's id.")),
    read_only(s("name", "The resource type's name.")),
    read_only(s("description", "What the resource type is.")),
    read_only(reference(
        s(
            "endpoint",
            "The resource type's endpoint, relative to the base URL.",
        ),
        &["uri"],
    )),
    read_only(reference(
        exact(s("schema", "The resource type's core schema.")),
        &["uri"],
    )),
    read_only(complex(
        "schemaExtensions",
        true,
        EXTENSION_SUBS,
        "The extensions it carries.",
    )),
];
const SCHEMA_ATTR_SUBS: &[Attr] = &[
    read_only(s("name", "The attribute's name.")),
    read_only(s("type", "The attribute's type.")),
    read_only(typed(
        s("multiValued", "Whether it has several values."),
        Kind::Boolean,
    )),
    read_only(s("description", "What the attribute is.")),
    read_only(typed(
        s("required", "Whether it is required."),
        Kind::Boolean,
    )),
    read_only(s("canonicalValues", "Its suggested values.")),
    read_only(typed(
        s("caseExact", "Whether it compares case-exactly."),
        Kind::Boolean,
    )),
    read_only(s(
        "mutability",
        "readOnly, readWrite, immutable or writeOnly.",
    )),
    read_only(s("returned", "always, never, default or request.")),
    read_only(s("uniqueness", "none, server or global.")),
    read_only(s("referenceTypes", "What a reference may point to.")),
];
const SCHEMA_ATTRS: &[Attr] = &[
    read_only(s("id", "The schema's URI.")),
    read_only(s("name", "The schema's name.")),
    read_only(s("description", "What the schema is.")),
    read_only(complex(
        "attributes",
        true,
        SCHEMA_ATTR_SUBS,
        "The schema's attributes.",
    )),
];
