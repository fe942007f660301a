"""API errors of the knowledge endpoints (the exception handler renders them as the error envelope)."""

from config.api.errors import ApplicationError, Conflict


class DuplicateSource(Conflict):
    code = "duplicate_source"
    default_message = "This content is already a knowledge source of this mind."


class SourceBusy(Conflict):
    code = "source_busy"
    default_message = "The source is being processed; try again when it is ready or failed."


class UrlNotAllowedError(ApplicationError):
    code = "url_not_allowed"
    default_message = "This URL is not allowed."


class UnsupportedFileType(ApplicationError):
    status_code = 415
    code = "unsupported_file_type"
    default_message = "This file type is not supported."


class FileTooLarge(ApplicationError):
    status_code = 413
    code = "file_too_large"
    default_message = "The file is too large."
