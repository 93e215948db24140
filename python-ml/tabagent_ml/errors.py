"""The service's one error type, mapped to a gRPC status plus the server's TabAgentError code.

The code travels in the trailing metadata `tabagent-error-bin` as JSON {code, message}, so the server
answers the same problem+json it would for its own errors.
"""

import json

import grpc

# TabAgentError code -> gRPC status (the same table as server/errors/mod.ts).
_STATUS = {
    "bad_request": grpc.StatusCode.INVALID_ARGUMENT,
    "validation_failed": grpc.StatusCode.INVALID_ARGUMENT,
    "unsupported_media_type": grpc.StatusCode.INVALID_ARGUMENT,
    "unauthorized": grpc.StatusCode.UNAUTHENTICATED,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "payload_too_large": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "cancelled": grpc.StatusCode.CANCELLED,
    "internal": grpc.StatusCode.INTERNAL,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "upstream_failed": grpc.StatusCode.UNAVAILABLE,
    "timeout": grpc.StatusCode.DEADLINE_EXCEEDED,
    "context_overflow": grpc.StatusCode.OUT_OF_RANGE,
}

ERROR_METADATA_KEY = "tabagent-error-bin"


class MLError(Exception):
    """A failure the client should see, with a stable TabAgentError code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> grpc.StatusCode:
        return _STATUS.get(self.code, grpc.StatusCode.UNKNOWN)


def abort(context: grpc.ServicerContext, error: MLError) -> None:
    """Ends the call with `error`'s status and the JSON error in the trailers (raises)."""
    payload = json.dumps({"code": error.code, "message": error.message}).encode()
    context.set_trailing_metadata(((ERROR_METADATA_KEY, payload),))
    context.abort(error.status, error.message)
