"""Errors of the model server; each carries its HTTP status and one handler renders them.

    ServerError (500)
    ├── BadRequestError (400)        the body is not JSON or not the protocol's shape
    ├── ModelNotFoundError (404)     the URL names a model this server does not serve
    ├── NotAvailableError (404)      off here (no reference profile: no drift window)
    ├── PayloadTooLargeError (413)   body or batch above the configured limits
    ├── InvalidInputError (422)      the inputs do not match the model's signature; names the field
    └── ModelNotReadyError (503)     the model is still loading

The design follows MLServer's `errors.py`: the data plane raises, the app maps status codes in one
place, and a client always gets `{"error": "<one line saying what to fix>"}`.
"""

from __future__ import annotations


class ServerError(Exception):
    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(ServerError):
    status_code = 400


class ModelNotFoundError(ServerError):
    status_code = 404


class NotAvailableError(ServerError):
    status_code = 404


class PayloadTooLargeError(ServerError):
    status_code = 413


class InvalidInputError(ServerError):
    status_code = 422


class ModelNotReadyError(ServerError):
    status_code = 503
