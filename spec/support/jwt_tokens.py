#!/usr/bin/python3
"""Makes the JWT fixtures the auth specs check: fresh keys (HMAC secrets, RSA 2048, EC P-256 and
P-384), their JWKS and PEM forms, and tokens signed independently of lgrpc (hmac and
python3-cryptography), good ones and every kind of bad one.

usage: jwt_tokens.py NOW  ->  one JSON object on stdout:
  { "secret": str, "jwks": {...}, "pem": {"rsa": str, "ec256": str, "cert": str},
    "other_jwks": {...}, "tokens": { name: token } }
NOW is the Unix time the tokens are made around (exp = NOW + 3600, nbf = NOW - 10)."""
import base64
import datetime
import hashlib
import hmac
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

ISSUER = "https://issuer.test"
AUDIENCE = "lgrpc-test"
SECRET = "a-secret-of-thirty-two-bytes-ok!"
OTHER_SECRET = "another-secret-nobody-configured"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint_bytes(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return n.to_bytes(size, "big")


def part(obj):
    if isinstance(obj, (bytes, str)):
        raw = obj if isinstance(obj, bytes) else obj.encode()
    else:
        raw = json.dumps(obj, separators=(",", ":")).encode()
    return b64(raw)


HASHES = {"256": (hashlib.sha256, hashes.SHA256), "384": (hashlib.sha384, hashes.SHA384),
          "512": (hashlib.sha512, hashes.SHA512)}


def sign(alg, key, signing_input):
    bits = alg[2:]
    if alg.startswith("HS"):
        return hmac.new(key, signing_input, HASHES[bits][0]).digest()
    if alg.startswith("RS"):
        return key.sign(signing_input, padding.PKCS1v15(), HASHES[bits][1]())
    if alg.startswith("ES"):
        der = key.sign(signing_input, ec.ECDSA(HASHES[bits][1]()))
        r, s = decode_dss_signature(der)
        size = 32 if bits == "256" else 48
        return uint_bytes(r, size) + uint_bytes(s, size)
    raise ValueError(alg)


def token(alg, key, claims, header=None):
    h = {"alg": alg, "typ": "JWT"}
    h.update(header or {})
    signing_input = (part(h) + "." + part(claims)).encode()
    return signing_input.decode() + "." + b64(sign(alg, key, signing_input))


def rsa_jwk(priv, kid):
    pub = priv.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "use": "sig", "n": b64(uint_bytes(pub.n)),
            "e": b64(uint_bytes(pub.e))}


def ec_jwk(priv, kid, crv, size):
    pub = priv.public_key().public_numbers()
    return {"kty": "EC", "kid": kid, "crv": crv, "x": b64(uint_bytes(pub.x, size)),
            "y": b64(uint_bytes(pub.y, size))}


def pem(priv):
    return priv.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def certificate(priv):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lgrpc-test")])
    now = datetime.datetime(2020, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(priv.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=36500)).sign(priv, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def main():
    now = int(sys.argv[1])
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec256 = ec.generate_private_key(ec.SECP256R1())
    ec384 = ec.generate_private_key(ec.SECP384R1())
    secret = SECRET.encode()

    claims = {"sub": "ann", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "nbf": now - 10,
              "exp": now + 3600, "scope": "read write", "roles": ["reader"],
              "big": 9007199254740993, "nothing": None}
    def with_(**kw):
        c = dict(claims)
        for k, v in kw.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        return c

    t = {}
    for bits in ("256", "384", "512"):
        t["HS" + bits] = token("HS" + bits, secret, claims, {"kid": "hs"})
        t["RS" + bits] = token("RS" + bits, rsa_key, claims, {"kid": "rsa"})
    t["ES256"] = token("ES256", ec256, claims, {"kid": "ec256"})
    t["ES384"] = token("ES384", ec384, claims, {"kid": "ec384"})
    t["no_kid_rs256"] = token("RS256", rsa_key, claims)
    t["no_kid_es384"] = token("ES384", ec384, claims)
    t["no_scope"] = token("HS256", secret, with_(scope=None, roles=["guest"]), {"kid": "hs"})
    t["aud_array"] = token("HS256", secret, with_(aud=["other", AUDIENCE]), {"kid": "hs"})
    t["expired"] = token("HS256", secret, with_(exp=now - 100, nbf=now - 200), {"kid": "hs"})
    t["expired_recently"] = token("HS256", secret, with_(exp=now - 5), {"kid": "hs"})
    t["not_yet_valid"] = token("HS256", secret, with_(nbf=now + 100), {"kid": "hs"})
    t["no_exp"] = token("HS256", secret, with_(exp=None), {"kid": "hs"})
    t["wrong_audience"] = token("HS256", secret, with_(aud="someone-else"), {"kid": "hs"})
    t["wrong_issuer"] = token("HS256", secret, with_(iss="https://evil.test"), {"kid": "hs"})
    t["wrong_key_hs"] = token("HS256", OTHER_SECRET.encode(), claims, {"kid": "hs"})
    t["wrong_key_rs"] = token("RS256", rsa_other, claims, {"kid": "rsa"})
    t["wrong_key_es"] = token("ES256", ec.generate_private_key(ec.SECP256R1()), claims,
                              {"kid": "ec256"})
    # the classic confusion: HS256 keyed with the RSA public key's PEM, naming the RSA key
    t["hs_with_rsa_public_key"] = token("HS256", pem(rsa_key), claims, {"kid": "rsa"})
    t["hs_with_rsa_public_key_no_kid"] = token("HS256", pem(rsa_key), claims)
    # an RS token naming the EC key, an ES256 token naming the P-384 key
    t["rs_naming_ec_key"] = token("RS256", rsa_key, claims, {"kid": "ec256"})
    t["es256_naming_p384_key"] = token("ES256", ec256, claims, {"kid": "ec384"})
    t["unknown_kid"] = token("HS256", secret, claims, {"kid": "nobody"})
    t["alg_none"] = part({"alg": "none", "typ": "JWT"}) + "." + part(claims) + "."
    t["alg_none_sig"] = (part({"alg": "none"}) + "." + part(claims) + "." + b64(b"x"))
    t["alg_None"] = part({"alg": "None"}) + "." + part(claims) + "." + b64(b"x")
    t["alg_ps256"] = token("RS256", rsa_key, claims, {"kid": "rsa"}).replace(
        part({"alg": "RS256", "typ": "JWT", "kid": "rsa"}),
        part({"alg": "PS256", "typ": "JWT", "kid": "rsa"}))
    good = t["HS256"].split(".")
    t["tampered_payload"] = good[0] + "." + part(with_(sub="root")) + "." + good[2]
    rgood = t["RS256"].split(".")
    t["tampered_payload_rs"] = rgood[0] + "." + part(with_(sub="root")) + "." + rgood[2]
    egood = t["ES256"].split(".")
    t["tampered_payload_es"] = egood[0] + "." + part(with_(sub="root")) + "." + egood[2]
    # ES256 signed with a DER signature instead of r||s
    si = (part({"alg": "ES256", "kid": "ec256"}) + "." + part(claims)).encode()
    t["es256_der_signature"] = si.decode() + "." + b64(ec256.sign(si, ec.ECDSA(hashes.SHA256())))
    t["crit_header"] = token("HS256", secret, claims, {"kid": "hs", "crit": ["exp"], "exp": 1})
    t["two_parts"] = good[0] + "." + good[1]
    t["four_parts"] = t["HS256"] + ".x"
    t["padded"] = good[0] + "." + good[1] + "." + good[2] + "="
    t["bad_base64"] = good[0] + "." + good[1].replace(good[1][3], "*", 1) + "." + good[2]
    t["payload_not_object"] = token("HS256", secret, ["not", "an", "object"], {"kid": "hs"})
    t["exp_is_string"] = token("HS256", secret, with_(exp="tomorrow"), {"kid": "hs"})
    t["header_not_json"] = b64(b"{alg:HS256") + "." + good[1] + "." + good[2]
    si = ('{"alg":"RS256","alg":"HS256","kid":"hs"}').encode()
    si = b64(si) + "." + good[1]
    t["duplicate_alg"] = si + "." + b64(sign("HS256", secret, si.encode()))
    t["empty_signature"] = good[0] + "." + good[1] + "."

    jwks = {"keys": [
        {"kty": "oct", "kid": "hs", "k": b64(secret)},
        rsa_jwk(rsa_key, "rsa"),
        ec_jwk(ec256, "ec256", "P-256", 32),
        ec_jwk(ec384, "ec384", "P-384", 48),
    ]}
    other_jwks = {"keys": [rsa_jwk(rsa_other, "rsa")]}
    json.dump({
        "now": now, "issuer": ISSUER, "audience": AUDIENCE, "secret": SECRET,
        "jwks": jwks, "other_jwks": other_jwks,
        "pem": {"rsa": pem(rsa_key).decode(), "ec256": pem(ec256).decode(),
                "ec384": pem(ec384).decode(), "cert": certificate(rsa_key)},
        "tokens": t,
    }, sys.stdout)


if __name__ == "__main__":
    main()
