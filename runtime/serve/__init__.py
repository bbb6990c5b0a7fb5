"""edgeship.runtime.serve — a bundle as an Open Inference Protocol (KServe v2 REST) service.

Needs the ``edgeship[serve]`` extra (uvicorn, starlette, prometheus-client); plain
``import edgeship.runtime`` never imports this package. Uses the runtime's public API only.
"""

from ._errors import NotFoundError as NotFoundError
from ._errors import ServeError as ServeError
from ._protocol import classify as classify
from ._protocol import encode_response as encode_response
from ._protocol import parse_request as parse_request
from ._repository import Repository as Repository
from ._server import run as run
from ._service import ServeOptions as ServeOptions
from ._service import Service as Service

__all__ = ["NotFoundError", "Repository", "ServeError", "ServeOptions", "Service", "classify", "encode_response", "parse_request", "run"]
