//! The strict pre-filter every SAML Response passes before samael and xmlsec see it.
//!
//! xmlsec processes any reference and transform before it checks a signature value, and samael
//! returns whatever was signed even when unsigned content surrounds it. So this refuses, from
//! the raw bytes, everything a legitimate IdP Response does not need: a DTD, comments and
//! processing instructions, more than one assertion, encrypted assertions, references other than
//! to the signature's own parent, transforms beyond enveloped-signature and canonicalization
//! without comments, `ds:Object`, `RetrievalMethod`, and duplicate IDs.
use std::collections::HashSet;

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

const PROTOCOL_NS: &[u8] = b"urn:oasis:names:tc:SAML:2.0:protocol";
const ASSERTION_NS: &[u8] = b"urn:oasis:names:tc:SAML:2.0:assertion";
const DSIG_NS: &[u8] = b"http://www.w3.org/2000/09/xmldsig#";

/// Transforms and canonicalizations a Response may name.
const ALLOWED_TRANSFORMS: &[&str] = &[
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/2006/12/xml-c14n11",
];

/// What the pre-filter learned about a Response it let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// `Response/@InResponseTo`, unauthenticated: only a hint until samael has verified it.
    pub in_response_to: Option<String>,
    /// `Response/@Destination` (unsigned when only the Assertion is signed).
    pub destination: Option<String>,
    /// The top-level `Status/StatusCode/@Value`.
    pub status: Option<String>,
    /// How many `ds:Signature` elements the document holds (1 or 2).
    pub signatures: usize,
}

/// Why a Response was refused (the reason goes to the audit log, never to the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub &'static str);

#[derive(Default)]
struct Frame {
    ns: Vec<u8>,
    local: Vec<u8>,
    id: Option<String>,
    /// Namespace declarations in scope here (this element's and its ancestors').
    declarations: usize,
}

/// Canonicalization costs about elements × declarations²: a real Response has a handful.
const MAX_DECLARATIONS_IN_SCOPE: usize = 32;

fn ns_of(resolved: &ResolveResult<'_>) -> Vec<u8> {
    match resolved {
        ResolveResult::Bound(ns) => ns.as_ref().to_vec(),
        _ => Vec::new(),
    }
}

/// Checks `xml` (already size-capped and UTF-8) and returns what the login needs from it.
///
/// Two parsers read a Response: this one and libxml2 (inside xmlsec and samael). Anything they
/// could read differently is refused: another declared encoding, `<` inside an attribute value,
/// and finally libxml2 itself must parse the document strictly (no recovery, no network) into
/// exactly as many elements as were checked here.
pub fn check(xml: &str) -> Result<Checked, Refused> {
    let checked = scan(xml)?;
    let options = libxml::parser::ParserOptions {
        recover: false,
        no_net: true,
        no_def_dtd: true,
        ..libxml::parser::ParserOptions::default()
    };
    let document = libxml::parser::Parser::default()
        .parse_string_with_options(xml, options)
        .map_err(|_| Refused("malformed_xml"))?;
    let root = document
        .get_root_element()
        .ok_or(Refused("malformed_xml"))?;
    let mut seen = Vec::with_capacity(checked.elements.len());
    elements_of(&root, &mut seen);
    if seen != checked.elements {
        return Err(Refused("parser_disagreement"));
    }
    Ok(checked.checked)
}

/// Every element's (namespace, local name) as libxml2 resolved it, in document order.
fn elements_of(node: &libxml::tree::Node, out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
    let ns = node
        .get_namespace()
        .map(|n| n.get_href().into_bytes())
        .unwrap_or_default();
    out.push((ns, node.get_name().into_bytes()));
    for child in node.get_child_elements() {
        elements_of(&child, out);
    }
}

struct Scanned {
    checked: Checked,
    /// Every element's (namespace, local name) as checked here, in document order.
    elements: Vec<(Vec<u8>, Vec<u8>)>,
}

fn scan(xml: &str) -> Result<Scanned, Refused> {
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Frame> = Vec::new();
    let mut seen_root = false;
    let mut ids = HashSet::new();
    let mut assertions = 0usize;
    let mut signatures = 0usize;
    let mut in_response_to = None;
    let mut destination = None;
    let mut status = None;
    let mut elements = Vec::new();
    // For each open ds:Signature: the ID of its parent and how many References it has.
    let mut signature_parents: Vec<(Option<String>, bool, usize)> = Vec::new();
    loop {
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|_| Refused("malformed_xml"))?;
        let ns = ns_of(&resolved);
        match event {
            Event::Eof => break,
            Event::DocType(_) => return Err(Refused("doctype")),
            Event::Comment(_) => return Err(Refused("comment")),
            Event::PI(_) => return Err(Refused("processing_instruction")),
            Event::Decl(decl) => {
                if seen_root {
                    return Err(Refused("malformed_xml"));
                }
                // libxml2 honours a declared encoding (UTF-7 hides markup from a UTF-8 reader).
                if let Some(encoding) = decl.encoding() {
                    let encoding = encoding.map_err(|_| Refused("malformed_xml"))?;
                    if !matches!(encoding.to_ascii_lowercase().as_slice(), b"utf-8" | b"utf8") {
                        return Err(Refused("encoding"));
                    }
                }
            }
            Event::GeneralRef(r) => {
                let name = r.into_inner();
                let predefined = [&b"lt"[..], b"gt", b"amp", b"apos", b"quot"];
                if !(name.starts_with(b"#") || predefined.contains(&name.as_ref())) {
                    return Err(Refused("entity_reference"));
                }
                if stack.is_empty() {
                    return Err(Refused("malformed_xml"));
                }
            }
            Event::Text(t) => {
                if stack.is_empty() && !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(Refused("malformed_xml"));
                }
            }
            Event::CData(_) => {
                if stack.is_empty() {
                    return Err(Refused("malformed_xml"));
                }
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                elements.push((ns.clone(), e.local_name().as_ref().to_vec()));
                if stack.len() == 2
                    && stack[1].ns == PROTOCOL_NS
                    && stack[1].local == b"Status"
                    && e.local_name().as_ref() == b"StatusCode"
                {
                    status = attribute(&reader, e, b"Value")?;
                }
                let frame = element(
                    &reader,
                    e,
                    ns,
                    &stack,
                    &mut seen_root,
                    &mut ids,
                    &mut assertions,
                    &mut signatures,
                    &mut in_response_to,
                    &mut destination,
                    &mut signature_parents,
                )?;
                let is_signature = frame.ns == DSIG_NS && frame.local == b"Signature";
                if empty {
                    if is_signature {
                        signature_parents.pop();
                    }
                } else {
                    stack.push(frame);
                }
            }
            Event::End(_) => {
                let frame = stack.pop().ok_or(Refused("malformed_xml"))?;
                if frame.ns == DSIG_NS && frame.local == b"Signature" {
                    let (_, _, references) =
                        signature_parents.pop().ok_or(Refused("malformed_xml"))?;
                    if references != 1 {
                        return Err(Refused("reference_count"));
                    }
                }
            }
        }
    }
    if !stack.is_empty() || !seen_root {
        return Err(Refused("malformed_xml"));
    }
    if assertions != 1 {
        return Err(Refused(if assertions == 0 {
            "no_assertion"
        } else {
            "several_assertions"
        }));
    }
    if signatures == 0 {
        return Err(Refused("unsigned"));
    }
    Ok(Scanned {
        checked: Checked {
            in_response_to,
            destination,
            status,
            signatures,
        },
        elements,
    })
}

fn attribute(
    reader: &NsReader<&[u8]>,
    e: &BytesStart<'_>,
    name: &[u8],
) -> Result<Option<String>, Refused> {
    for attr in e.attributes() {
        let attr = attr.map_err(|_| Refused("malformed_xml"))?;
        if attr.key.as_ref() == name {
            return attr
                .decoded_and_normalized_value(quick_xml::XmlVersion::Implicit1_0, reader.decoder())
                .map(|v| Some(v.into_owned()))
                .map_err(|_| Refused("malformed_xml"));
        }
    }
    Ok(None)
}

#[allow(clippy::too_many_arguments)]
fn element(
    reader: &NsReader<&[u8]>,
    e: &BytesStart<'_>,
    ns: Vec<u8>,
    stack: &[Frame],
    seen_root: &mut bool,
    ids: &mut HashSet<String>,
    assertions: &mut usize,
    signatures: &mut usize,
    in_response_to: &mut Option<String>,
    destination: &mut Option<String>,
    signature_parents: &mut Vec<(Option<String>, bool, usize)>,
) -> Result<Frame, Refused> {
    let local = e.local_name().as_ref().to_vec();
    if stack.is_empty() {
        if *seen_root {
            return Err(Refused("malformed_xml"));
        }
        *seen_root = true;
        if !(ns == PROTOCOL_NS && local == b"Response") {
            return Err(Refused("not_a_response"));
        }
    }
    let mut id = None;
    let mut uri = None;
    let mut algorithm = None;
    let mut local_names = HashSet::new();
    let mut declarations = stack.last().map_or(0, |f| f.declarations);
    for attr in e.attributes() {
        let attr = attr.map_err(|_| Refused("malformed_xml"))?;
        // Not well-formed XML, and libxml2's reading of it differs from quick-xml's.
        if attr.value.contains(&b'<') {
            return Err(Refused("malformed_xml"));
        }
        let key = attr.key.as_ref();
        let declaration = key == b"xmlns" || key.starts_with(b"xmlns:");
        declarations += usize::from(declaration);
        // libxml2 expands references in a namespace name; quick-xml does not.
        if declaration && attr.value.contains(&b'&') {
            return Err(Refused("namespace_declaration"));
        }
        if !declaration {
            // xmlsec reads attributes by local name, whatever their prefix: one of each, and
            // no prefixed attributes at all on signature elements.
            if !local_names.insert(attr.key.local_name().as_ref().to_vec()) {
                return Err(Refused("duplicate_attribute"));
            }
            if ns == DSIG_NS && attr.key.prefix().is_some() {
                return Err(Refused("signature_attribute"));
            }
        }
        let value = attr
            .decoded_and_normalized_value(quick_xml::XmlVersion::Implicit1_0, reader.decoder())
            .map_err(|_| Refused("malformed_xml"))?
            .into_owned();
        // SAML identifies elements by `ID`; libxml2 also registers any `xml:id` value, which
        // xmlsec would evaluate as an XPointer expression: not accepted at all.
        if key == b"xml:id" {
            return Err(Refused("xml_id"));
        }
        // libxml2 finds IDs by local name whatever the prefix.
        if attr.key.local_name().as_ref() == b"ID" {
            // A plain name: nothing xmlsec could read as XPointer (`(`, `'`, spaces).
            if !is_plain_id(&value) {
                return Err(Refused("invalid_id"));
            }
            if id.is_some() || !ids.insert(value.clone()) {
                return Err(Refused("duplicate_id"));
            }
            id = Some(value);
            continue;
        }
        match key {
            b"URI" => uri = Some(value),
            b"PrefixList" if value.split_whitespace().count() > MAX_DECLARATIONS_IN_SCOPE => {
                return Err(Refused("namespace_declarations"));
            }
            b"Algorithm" => algorithm = Some(value),
            b"InResponseTo" if stack.is_empty() => *in_response_to = Some(value),
            b"Destination" if stack.is_empty() => *destination = Some(value),
            _ => {}
        }
    }
    if declarations > MAX_DECLARATIONS_IN_SCOPE {
        return Err(Refused("namespace_declarations"));
    }
    let parent = stack.last();
    match (ns.as_slice(), local.as_slice()) {
        (ASSERTION_NS, b"Assertion") => {
            *assertions += 1;
            if *assertions > 1 {
                return Err(Refused("several_assertions"));
            }
            if stack.len() != 1 {
                return Err(Refused("assertion_position"));
            }
        }
        (_, b"Assertion") => return Err(Refused("assertion_namespace")),
        (_, b"EncryptedAssertion") => return Err(Refused("encrypted_assertion")),
        (DSIG_NS, b"Signature") => {
            *signatures += 1;
            let parent = parent.ok_or(Refused("signature_position"))?;
            let at_root = stack.len() == 1;
            let on_assertion =
                stack.len() == 2 && parent.ns == ASSERTION_NS && parent.local == b"Assertion";
            if !(at_root || on_assertion) {
                return Err(Refused("signature_position"));
            }
            signature_parents.push((parent.id.clone(), at_root, 0));
        }
        (DSIG_NS, b"Reference") => {
            let (parent_id, at_root, references) = signature_parents
                .last_mut()
                .ok_or(Refused("reference_position"))?;
            *references += 1;
            let uri = uri.ok_or(Refused("reference_uri"))?;
            let fine = match uri.strip_prefix('#') {
                Some(target) => parent_id.as_deref() == Some(target),
                None => uri.is_empty() && *at_root,
            };
            if !fine {
                return Err(Refused("reference_uri"));
            }
        }
        (DSIG_NS, b"Transform") | (DSIG_NS, b"CanonicalizationMethod") => {
            let algorithm = algorithm.unwrap_or_default();
            if !ALLOWED_TRANSFORMS.contains(&algorithm.as_str()) {
                return Err(Refused("transform"));
            }
        }
        (DSIG_NS, b"Object") | (DSIG_NS, b"RetrievalMethod") | (DSIG_NS, b"Manifest") => {
            return Err(Refused("signature_content"));
        }
        (_, b"EncryptedKey") | (_, b"EncryptedData") => {
            return Err(Refused("encrypted_content"));
        }
        _ => {}
    }
    if let Some(p) = parent
        && p.ns == DSIG_NS
        && p.local == b"Transform"
        && local != b"InclusiveNamespaces"
    {
        return Err(Refused("transform"));
    }
    Ok(Frame {
        ns,
        local,
        id,
        declarations,
    })
}

/// `[A-Za-z_][A-Za-z0-9._-]*`: what IdPs use for IDs, and nothing an XPointer could hide in.
fn is_plain_id(value: &str) -> bool {
    let mut chars = value.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && value.len() <= 256
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(inner: &str) -> String {
        format!(
            r##"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="_r" InResponseTo="_req">{inner}</samlp:Response>"##
        )
    }

    fn signature(target: &str, transform: &str) -> String {
        format!(
            r##"<ds:Signature><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:Reference URI="{target}"><ds:Transforms><ds:Transform Algorithm="{transform}"/></ds:Transforms></ds:Reference></ds:SignedInfo></ds:Signature>"##
        )
    }

    /// Twelve namespace declarations with prefixes unique to `n`.
    fn declarations(n: usize) -> String {
        (0..12)
            .map(|i| format!(" xmlns:p{n}_{i}=\"urn:x\""))
            .collect()
    }

    const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

    fn assertion(id: &str, sig: &str) -> String {
        format!(r#"<saml:Assertion ID="{id}"><saml:Issuer>x</saml:Issuer>{sig}</saml:Assertion>"#)
    }

    #[test]
    fn a_plain_signed_response_passes() {
        let xml = response(&format!(
            "{}{}",
            signature("#_r", ENVELOPED),
            assertion("_a", &signature("#_a", ENVELOPED))
        ));
        let checked = check(&xml).expect("passes");
        assert_eq!(checked.in_response_to.as_deref(), Some("_req"));
        assert_eq!(checked.signatures, 2);
    }

    #[test]
    fn refuses_what_a_response_does_not_need() {
        let good_assertion = assertion("_a", &signature("#_a", ENVELOPED));
        let cases = [
            (
                format!(
                    "<!DOCTYPE x [<!ENTITY e 'x'>]>{}",
                    response(&good_assertion)
                ),
                "doctype",
            ),
            (response(&format!("<!-- c -->{good_assertion}")), "comment"),
            (
                response(&format!("<?pi x?>{good_assertion}")),
                "processing_instruction",
            ),
            (
                response(&format!("{good_assertion}{good_assertion}")),
                "duplicate_id",
            ),
            (
                response(&format!("{good_assertion}{}", assertion("_b", ""))),
                "several_assertions",
            ),
            (response(&assertion("_a", "")), "unsigned"),
            (response(""), "no_assertion"),
            (
                response(&assertion("_a", &signature("#_other", ENVELOPED))),
                "reference_uri",
            ),
            (
                response(&assertion(
                    "_a",
                    &signature("http://evil.example/x", ENVELOPED),
                )),
                "reference_uri",
            ),
            (
                response(&assertion(
                    "_a",
                    &signature("#_a", "http://www.w3.org/TR/1999/REC-xslt-19991116"),
                )),
                "transform",
            ),
            (
                response(&format!("<x>{good_assertion}</x>")),
                "assertion_position",
            ),
            (
                response(&format!("{good_assertion}<saml:EncryptedAssertion/>")),
                "encrypted_assertion",
            ),
            (
                response(&format!(
                    "{}{}",
                    r#"<ds:Signature><ds:Object/></ds:Signature>"#, good_assertion
                )),
                "signature_content",
            ),
            (
                "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">".into(),
                "malformed_xml",
            ),
            (
                "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"/>".into(),
                "not_a_response",
            ),
            (
                response(&format!("&xxe;{good_assertion}")),
                "entity_reference",
            ),
            (
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-7\"?>{}",
                    response(&good_assertion)
                ),
                "encoding",
            ),
            (
                response(&format!("<x a=\"<ds:Signature/>\"/>{good_assertion}")),
                "malformed_xml",
            ),
            (
                response(&format!(
                    "<x p:ID=\"_a\" xmlns:p=\"urn:x\"/>{good_assertion}"
                )),
                "duplicate_id",
            ),
            (
                response(&format!("<x xml:id=\"_r\"/>{good_assertion}")),
                "xml_id",
            ),
            (
                response(&format!(
                    "<saml:Assertion xml:id=\"xpointer(id('_r'))\">{}</saml:Assertion>",
                    signature("#xpointer(id('_r'))", ENVELOPED)
                )),
                "xml_id",
            ),
            (
                response(&assertion(
                    "_z') | id('_r",
                    &signature("#_z') | id('_r", ENVELOPED),
                )),
                "invalid_id",
            ),
            (
                response(&assertion("_a _r", &signature("#_a _r", ENVELOPED))),
                "invalid_id",
            ),
            (
                response(&format!(
                    "<w{}><w{}><w{}/></w></w>{good_assertion}",
                    declarations(0),
                    declarations(1),
                    declarations(2)
                )),
                "namespace_declarations",
            ),
            (
                response(&format!(
                    "<x:Signature xmlns:x=\"http://www.w3.org/2000/09/xmldsig&#35;\"/>{good_assertion}"
                )),
                "namespace_declaration",
            ),
            (
                response(&format!(
                    "<ds:Foo><ds:Signature xmlns:ds=\"\"/></ds:Foo>{good_assertion}"
                )),
                "parser_disagreement",
            ),
            (
                response(&assertion(
                    "_a",
                    &signature(
                        "#_a\" xmlns:p=\"urn:p\" p:URI=\"http://evil.example/",
                        ENVELOPED,
                    ),
                )),
                "duplicate_attribute",
            ),
            (
                response(&assertion(
                    "_a",
                    &signature("#_a\" xmlns:p=\"urn:p\" p:Extra=\"1", ENVELOPED),
                )),
                "signature_attribute",
            ),
        ];
        for (xml, reason) in cases {
            assert_eq!(check(&xml), Err(Refused(reason)), "{xml}");
        }
    }
}
