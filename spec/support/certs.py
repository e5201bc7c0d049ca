#!/usr/bin/python3
"""certs.py DIR -- writes the test PKI for the TLS specs into DIR (generated at every run; no
private key is ever committed). python3-cryptography, because an already-expired certificate
cannot be made with `openssl req/x509`.

  ca.pem / ca.key            test CA "lgrpc Test CA"
  other-ca.pem / .key        an unrelated CA
  inter.pem / .key           an intermediate under ca
  server.pem / .key          CN=localhost; SANs localhost, *.test.google.fr, 127.0.0.1, ::1
  server-chain.pem / .key    server certificate issued by inter, file = leaf + inter
  server-expired.pem / .key  like server, expired yesterday
  client.pem / .key          CN=client-1, SANs URI spiffe://lgrpc.test/client-1, DNS client-1.test
  client2.pem / .key         CN=client-2 (the pair a reload switches to)
  client-other.pem / .key    CN=intruder, issued by other-ca
  client-expired.pem / .key  CN=client-old, issued by ca, expired
"""
import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lgrpc tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def key():
    return ec.generate_private_key(ec.SECP256R1())


def cert(subject_cn, k, issuer=None, ca=False, sans=(), usage=None, expired=False):
    issuer_cert, issuer_key = issuer if issuer else (None, k)
    start, end = (NOW - 30 * DAY, NOW - DAY) if expired else (NOW - DAY, NOW + 365 * DAY)
    b = (x509.CertificateBuilder()
         .subject_name(name(subject_cn))
         .issuer_name(issuer_cert.subject if issuer_cert else name(subject_cn))
         .public_key(k.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(start)
         .not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()), critical=False))
    if issuer_cert:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                            critical=False)
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, key_cert_sign=True, crl_sign=True,
                                          encipher_only=False, decipher_only=False), critical=True)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    if usage:
        b = b.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def write(d, stem, c, k, extra=()):
    with open(os.path.join(d, stem + ".pem"), "wb") as f:
        f.write(c.public_bytes(serialization.Encoding.PEM))
        for e in extra:
            f.write(e.public_bytes(serialization.Encoding.PEM))
    fd = os.open(os.path.join(d, stem + ".key"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()))


def main(d):
    os.makedirs(d, exist_ok=True)
    server_sans = [x509.DNSName("localhost"), x509.DNSName("*.test.google.fr"),
                   x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                   x509.IPAddress(ipaddress.ip_address("::1"))]
    srv = [ExtendedKeyUsageOID.SERVER_AUTH]
    cli = [ExtendedKeyUsageOID.CLIENT_AUTH]

    ca_k = key(); ca = cert("lgrpc Test CA", ca_k, ca=True)
    write(d, "ca", ca, ca_k)
    oca_k = key(); oca = cert("Other CA", oca_k, ca=True)
    write(d, "other-ca", oca, oca_k)
    in_k = key(); inter = cert("lgrpc Intermediate CA", in_k, issuer=(ca, ca_k), ca=True)
    write(d, "inter", inter, in_k)

    k = key(); write(d, "server", cert("localhost", k, (ca, ca_k), sans=server_sans, usage=srv), k)
    k = key(); write(d, "server-chain", cert("localhost", k, (inter, in_k), sans=server_sans, usage=srv), k,
                     extra=[inter])
    k = key(); write(d, "server-expired", cert("localhost", k, (ca, ca_k), sans=server_sans, usage=srv,
                                               expired=True), k)
    k = key(); write(d, "client", cert("client-1", k, (ca, ca_k), usage=cli, sans=[
        x509.UniformResourceIdentifier("spiffe://lgrpc.test/client-1"), x509.DNSName("client-1.test")]), k)
    k = key(); write(d, "client2", cert("client-2", k, (ca, ca_k), usage=cli,
                                        sans=[x509.DNSName("client-2.test")]), k)
    k = key(); write(d, "client-other", cert("intruder", k, (oca, oca_k), usage=cli), k)
    k = key(); write(d, "client-expired", cert("client-old", k, (ca, ca_k), usage=cli, expired=True), k)


if __name__ == "__main__":
    main(sys.argv[1])
