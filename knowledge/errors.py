"""The errors of the knowledge app: the pipeline's and the API's, each with a stable code.

The pipeline sorts every failure into two kinds. `ExtractionError` is permanent: the source ends `failed` with its
code and a message a user can act on. `TransientError` is worth retrying: the source goes back to `pending` and
is retried with a backoff. The pipeline adds `internal_error` (anything unexpected) and `processing_timeout` (a
stage past its time limit, or a source whose worker kept dying).

The API errors below are rendered by the exception handler as the error envelope. `UrlNotAllowedError` is both:
the SSRF guard raises it, so a source whose URL (or a redirect) is refused fails with `url_not_allowed`, and a
service checking a URL a user gave lets it answer 400.
"""

from config.api.errors import ApplicationError, Conflict, PermissionDenied

# The pipeline ---------------------------------------------------------------------------------------------------


class ExtractionError(ApplicationError):
    """A permanent failure of a source, with a stable code and a message a user can act on.

    Codes: empty_content, pdf_encrypted, no_text_layer, ocr_unavailable, ocr_time_limit, ocr_failed, corrupt_file,
    unsupported_file_type, file_too_large, file_missing, url_not_allowed, fetch_failed, transcription_failed,
    feed_invalid (docs/guide.md explains each).
    """

    def __init__(self, code: str, message: str, *, details: dict | None = None):
        super().__init__(message, code=code, details=details)


class TransientError(Exception):
    """A failure worth retrying (network timeout, 5xx, connection reset)."""


class UrlNotAllowedError(ExtractionError):
    code = "url_not_allowed"
    default_message = "This URL is not allowed."

    def __init__(self, message: str = default_message, *, details: dict | None = None):
        super().__init__(self.code, message, details=details)


# The API --------------------------------------------------------------------------------------------------------


class DuplicateSource(ApplicationError):
    """400, not 409: the status Trigglio documents for its `duplicate_source`, which its clients check."""

    code = "duplicate_source"
    default_message = "This content is already a knowledge source of this mind."


class SourceBusy(Conflict):
    code = "source_busy"
    default_message = "The source is being processed; try again when it is ready or failed."


class UnsupportedFileType(ApplicationError):
    status_code = 415
    code = "unsupported_file_type"
    default_message = "This file type is not supported."


class FileTooLarge(ApplicationError):
    status_code = 413
    code = "file_too_large"
    default_message = "The file is too large."


class KeyRestrictedToMinds(PermissionDenied):
    code = "key_restricted_to_minds"
    default_message = (
        "This key is restricted to some minds: it may use the collections attached to them, but not create or "
        "delete collections. Use a key without a mind restriction."
    )
