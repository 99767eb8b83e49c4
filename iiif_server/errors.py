"""One exception tree for the whole server; each error knows its HTTP status.

    ServerError (500)
    ├── BadRequest (400)            malformed region/size/rotation/quality/format
    ├── NotFound (404)              unknown type, identifier or file
    ├── NotImplementedFeature (501) a feature switched off in the config (e.g. `^`)
    ├── SourceError (500)           the source image is corrupt, truncated or unreadable
    │   └── SourceTooLarge (500)    the source has more pixels than `max_source_pixels`
    ├── WorkerFailed (500)          the worker died while working on the request
    ├── UpstreamError (502)         a web source could not be fetched, or was refused
    │   └── UpstreamTimeout (504)   the web source's server did not answer in time
    └── Unavailable (503)           the server cannot take the work now
        ├── Overloaded (503)        the worker or download queues are full
        └── TaskTimeout (503)       the task ran past its time limit

Errors cross process boundaries (raised in a worker, re-raised in the front
process), so each one pickles through its single message argument.
"""

from __future__ import annotations


class ServerError(Exception):
    """Base of every error the server answers with a status and a short message."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadRequest(ServerError):
    status = 400


class NotFound(ServerError):
    status = 404


class NotImplementedFeature(ServerError):
    status = 501


class SourceError(ServerError):
    status = 500


class SourceTooLarge(SourceError):
    pass


class WorkerFailed(ServerError):
    status = 500


class UpstreamError(ServerError):
    status = 502


class UpstreamTimeout(UpstreamError):
    status = 504


class Unavailable(ServerError):
    status = 503
    #: Seconds a client should wait before trying again (sent as `Retry-After`).
    retry_after: int = 1


class Overloaded(Unavailable):
    pass


class TaskTimeout(Unavailable):
    pass
