"""Signing: XMLDSig signatures on edXML packages and the key and certificate tooling around them.

- :mod:`signing.pki` — demo/dev CA, agency and hub certificates; loading PEM material.
- :mod:`signing.xmldsig` — sign an edXML package and verify it against an agency's registered
  certificates under a strict :class:`~signing.xmldsig.SignaturePolicy`.
- :mod:`signing.xmldsig_core` — the verification core behind it: one C14N of the document, one of
  SignedInfo (lxml), the digest and the signature value (``cryptography``).

This package imports nothing from ``hub`` except the pure ``hub.errors`` and ``hub.xmlsafe``.
"""
