"""acme2certifier's WSGI application served by the standard library's threading WSGI server
(acme2certifier's own ``acme2certifier_wsgi.py`` binds 0.0.0.0:80, which the benchmark's
http-01 responder needs). Run with the Python of acme2certifier's own virtual environment:
``python bench/a2c_serve.py PORT`` with ``ACME_SRV_CONFIGFILE`` naming its configuration.
"""

from __future__ import annotations

import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIServer, make_server

from acme2certifier.share.acme2certifier_wsgi import (  # type: ignore[import-not-found]
    application,
    get_handler_cls,
)


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


if __name__ == "__main__":
    server = make_server(
        "127.0.0.1",
        int(sys.argv[1]),
        application,
        server_class=ThreadingWSGIServer,
        handler_class=get_handler_cls(),
    )
    server.serve_forever()
