"""The registry's one error model: each error carries its HTTP status, a stable code and a safe message."""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every error a client may see; the message is safe to show (never a secret)."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(RegistryError):
    status, code = 400, "bad_request"


class InvalidPath(BadRequest):
    code = "invalid_path"


class ChecksumMismatch(BadRequest):
    code = "checksum_mismatch"


class UploadIncomplete(BadRequest):
    code = "upload_incomplete"


class AuthenticationRequired(RegistryError):
    status, code = 401, "authentication_required"


class InvalidCredential(AuthenticationRequired):
    code = "invalid_credential"


class CredentialExpired(InvalidCredential):
    code = "credential_expired"


class CredentialRevoked(InvalidCredential):
    code = "credential_revoked"


class PermissionDenied(RegistryError):
    status, code = 403, "permission_denied"


class NotFound(RegistryError):
    status, code = 404, "not_found"


class ObjectNotFound(NotFound):
    code = "object_not_found"


class ProjectNotFound(NotFound):
    code = "project_not_found"


class ProjectDeleted(NotFound):
    code = "project_deleted"


class MethodNotAllowed(RegistryError):
    status, code = 405, "method_not_allowed"


class Conflict(RegistryError):
    status, code = 409, "conflict"


class UploadNotFinished(Conflict):
    code = "upload_not_finished"


class PreconditionFailed(RegistryError):
    """412: a conditional request's condition (If-Match, If-None-Match, Overwrite: F) does not hold."""

    status, code = 412, "precondition_failed"


class QuotaExceeded(RegistryError):
    """413, not 507: DVC's webdav client replaces the reason of a 507 with fixed text."""

    status, code = 413, "quota_exceeded"


class RateLimited(RegistryError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class FileTooLarge(RegistryError):
    status, code = 413, "file_too_large"


class BodyTooLarge(RegistryError):
    """A request body the app parses (JSON, hook payloads) over its limit."""

    status, code = 413, "body_too_large"


class GitLabUnavailable(RegistryError):
    """GitLab could not answer (down, timeout, 5xx, 429): never a reason to deny access."""

    status, code = 503, "gitlab_unavailable"

    def __init__(self, message: str, *, retry_after: int = 30) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class DatabaseUnavailable(RegistryError):
    status, code = 503, "database_unavailable"

    def __init__(self, message: str = "The index database is unavailable; try again later") -> None:
        super().__init__(message, headers={"Retry-After": "5"})


class StorageUnavailable(RegistryError):
    status, code = 503, "storage_unavailable"

    def __init__(self, message: str, *, retry_after: int = 10) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class ConfigurationError(Exception):
    """A setting is missing or invalid; the message names the variable. Stops the process at start."""
