"""ingestor: POST /ingest/<log_source> with a bearer token; stores the raw object, emits its reference."""

import flask
import functions_framework

from tarn import ingest
from tarn.exceptions import PayloadTooLargeError, UnknownLogSourceError
from tarn.runtime import context, install_health

install_health("store")


@functions_framework.http
def handle(request: flask.Request):
    parts = request.path.strip("/").split("/")
    if len(parts) != 2 or parts[0] != "ingest":
        return {"error": "POST /ingest/<log_source>"}, 404
    if request.method != "POST":
        return {"error": "use POST"}, 405
    ctx = context()
    try:
        ingest.check_token(ctx, request.headers.get("Authorization"))
        accepted = ingest.accept(
            ctx, parts[1], request.stream, idempotency_key=request.headers.get("Idempotency-Key")
        )
    except ingest.Unauthorized as exc:
        return {"error": str(exc)}, 401, {"WWW-Authenticate": "Bearer"}
    except UnknownLogSourceError as exc:
        return {"error": str(exc), "known": exc.known}, 404
    except PayloadTooLargeError as exc:
        return {"error": str(exc)}, 413
    except ingest.EmptyBody as exc:
        return {"error": str(exc)}, 400
    return accepted.as_dict(), 202
