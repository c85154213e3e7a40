"""Every error the hub reports to a user, with its stable machine-readable code.

The tree (HTTP status in brackets; the ``code`` is what clients match on)::

    LienthongError                      [500] internal
    ├── ConfigError                     (start-up only: names file, key and problem)
    ├── PackageError                    [422] anything wrong with a submitted package
    │   ├── MalformedXML                [400] xml.malformed  (line and column)
    │   ├── ForbiddenXML                [400] xml.forbidden  (DOCTYPE, entities, processing)
    │   ├── SchemaInvalid               [422] schema.invalid (problems: path, line, message)
    │   ├── SignatureError              [422] signature.*    (missing, invalid, policy, untrusted)
    │   │   └── CertificateError        [422] certificate.*  the signing certificate is not trusted:
    │   │                                     expired, not_yet_valid, revoked, key_usage,
    │   │                                     untrusted_issuer, self_signed, revocation_unknown
    │   │                                     (signing.trust)
    │   ├── AttachmentError             [422] attachment.invalid, attachment.too_large
    │   │                                     (hub.edxml.attachments: decoding a file)
    │   └── WrongPackageKind            [422] package.kind   (a status sent as a document, …)
    ├── AuthError                       [401] auth.required / auth.invalid
    ├── Forbidden                       [403] forbidden, sender.mismatch
    ├── NotFound                        [404] not_found
    ├── Conflict                        [409] status.duplicate, status.transition, state.conflict
    ├── RoutingError                    [422] recipient.unknown, status.document_unknown
    ├── TooLarge                        [413] too_large
    ├── Gone                            [410] document.purged (retention removed it)
    └── BadRequest                      [400] request.invalid
    ├── BadRequest                      [400] request.invalid
    └── Unavailable                     [503] hub.maintenance (with Retry-After)

Lower-layer errors (lxml, signxml, SQLAlchemy) are translated into these at the boundary with
``raise … from``, so a client never sees a stack trace and a log always keeps the cause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a package: where it is and what it means."""

    message: str
    path: str | None = None
    line: int | None = None
    column: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        for key in ("path", "line", "column"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}" + (f":{self.column}" if self.column else ""))
        if self.path:
            where.append(self.path)
        return f"{', '.join(where)}: {self.message}" if where else self.message


class LienthongError(Exception):
    """The hub could not do what was asked."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        problems: Sequence[Problem] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = detail or (type(self).__doc__ or "").strip().splitlines()[0]
        if code is not None:
            self.code = code  # type: ignore[misc]  # instance-specific sub-code
        self.problems = tuple(problems)
        self.extra = dict(extra or {})
        super().__init__(self.detail)

    def as_problem(self) -> dict[str, Any]:
        """The RFC 9457 ``application/problem+json`` body."""
        body: dict[str, Any] = {
            "type": f"https://lienthong.dev/problems/{self.code}",
            "title": self.code,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if self.problems:
            body["problems"] = [p.as_dict() for p in self.problems]
        body.update(self.extra)
        return body


class ConfigError(LienthongError):
    """The configuration is not usable."""

    code = "config.invalid"

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = file, key, problem
        super().__init__(f"{file}: {key}: {problem}")


class PackageError(LienthongError):
    """The package cannot be accepted."""

    status = 422
    code = "package.invalid"


class MalformedXML(PackageError):
    """The package is not well-formed XML."""

    status = 400
    code = "xml.malformed"


class ForbiddenXML(PackageError):
    """The package uses an XML feature the hub refuses (DOCTYPE, entity declarations)."""

    status = 400
    code = "xml.forbidden"


class SchemaInvalid(PackageError):
    """The package does not match the edXML schema."""

    code = "schema.invalid"


class SignatureError(PackageError):
    """The package signature was not accepted."""

    code = "signature.invalid"


class CertificateError(SignatureError):
    """The signing certificate is not trusted."""

    code = "certificate.untrusted_issuer"


class WrongPackageKind(PackageError):
    """The package is not of the kind this endpoint takes."""

    code = "package.kind"


class AuthError(LienthongError):
    """A valid credential is required."""

    status = 401
    code = "auth.required"


class Forbidden(LienthongError):
    """The caller may not do this."""

    status = 403
    code = "forbidden"


class NotFound(LienthongError):
    """Nothing of that id is visible to the caller."""

    status = 404
    code = "not_found"


class Conflict(LienthongError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"


class RoutingError(LienthongError):
    """The package cannot be routed."""

    status = 422
    code = "recipient.unknown"


class TooLarge(LienthongError):
    """The request body is larger than the hub accepts."""

    status = 413
    code = "too_large"


class BadRequest(LienthongError):
    """The request is not well-formed."""

    status = 400
    code = "request.invalid"


class Gone(LienthongError):
    """It existed and was purged by retention; ``archive`` says where its evidence is kept."""

    status = 410
    code = "document.purged"


class Unavailable(LienthongError):
    """The hub takes no new packages for now (maintenance); reads still work."""

    status = 503
    code = "hub.maintenance"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        self.retry_after = retry_after  # seconds, sent as the Retry-After header
        super().__init__(detail, extra={"retry_after": retry_after})
