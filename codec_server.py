"""The codec server: Temporal's Web UI and CLI decrypt (and encrypt) payloads through it.

Run it with ``python -m codec_server`` where an operator holds the keys (``TEMPORAL_PAYLOAD_KEYS``
or ``TEMPORAL_PAYLOAD_KEYS_FILE`` and ``TEMPORAL_PAYLOAD_ACTIVE_KEY``, as the worker's). It speaks
Temporal's remote codec protocol: ``POST .../encode`` and ``POST .../decode`` take and return
``{"payloads": [...]}``, a ``Payloads`` protobuf in its JSON form; only the last path segment
counts, so it can sit under any prefix (``/{namespace}/decode``...).

The Web UI calls it from the operator's browser, hence CORS for the configured UI origins.
With ``CODEC_SERVER_TOKEN`` every request must carry ``Authorization: Bearer <token>`` (the
CLI's ``--codec-auth``); CORS preflights never carry it, so they are answered without.
"""

from __future__ import annotations

import hmac
import json
import sys
from collections.abc import Callable

import structlog
from google.protobuf import json_format
from quart import Quart, Response, request
from temporalio.api.common.v1 import Payload, Payloads
from werkzeug.exceptions import HTTPException

from config import CodecServerSettings, ConfigError, load_codec_server_settings
from logs import configure_logging
from payload_codec import EncryptionCodec, PayloadDecodeError
from serving import serve_until_stopped

logger = structlog.get_logger("codec-server")

# A Web UI sends one event's payloads at a time; Temporal refuses payloads over 2 MiB, which
# base64 in JSON makes about 2.7 MiB.
MAX_CONTENT_LENGTH = 4 * 1024 * 1024
# Headers the Web UI sends to a codec endpoint (Authorization with "pass access token").
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"
PREFLIGHT_MAX_AGE = "600"


class BadPayloads(Exception):
    """The request does not hold payloads this server can transform."""


def create_codec_app(settings: CodecServerSettings) -> Quart:
    app = Quart(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    codec = EncryptionCodec(settings.payload_keys)
    origins = frozenset(settings.cors_origins)
    expected_authorization = f"Bearer {settings.token}".encode() if settings.token else None

    @app.after_request
    async def allow_origin(response: Response) -> Response:
        # On every answer to a listed origin, errors included, so the UI can show them.
        origin = request.headers.get("Origin")
        response.vary.add("Origin")
        if origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            # The UI's "include cross-origin credentials" option needs this; no cookie is read.
            response.headers["Access-Control-Allow-Credentials"] = "true"
        return response

    @app.errorhandler(Exception)
    async def unexpected_error(error: Exception) -> Response | HTTPException:
        if isinstance(error, HTTPException):  # 404, 405, 413...: already the right answer
            return error
        logger.exception("Unexpected error while handling a codec request")
        return _json_error(500, "Codec server error", type(error).__name__)

    def route(action: str, transform: Callable[[Payload], Payload]) -> None:
        async def handle(prefix: str = "") -> Response:
            if request.method == "OPTIONS":
                return _preflight(request.headers.get("Origin"), origins)
            if not _authorised(request.headers.get("Authorization"), expected_authorization):
                logger.warning("Refused codec request without the token", action=action)
                return _json_error(401, "Unauthorised", "a valid bearer token is required")
            if request.mimetype != "application/json":
                return _json_error(415, "Unsupported media type", "send application/json")
            body: bytes = await request.get_data(as_text=False)  # type: ignore[assignment]
            return _apply(action, transform, body)

        for rule in (f"/{action}", f"/<path:prefix>/{action}"):
            app.add_url_rule(
                rule,
                f"{action}:{rule}",
                handle,
                methods=["POST", "OPTIONS"],
                provide_automatic_options=False,
            )

    route("encode", codec.encrypt)
    route("decode", codec.decrypt)
    return app


def _authorised(header: str | None, expected: bytes | None) -> bool:
    if expected is None:
        return True
    # Constant time: the comparison must not tell how much of a guess was right.
    return header is not None and hmac.compare_digest(header.strip().encode(), expected)


def _preflight(origin: str | None, origins: frozenset[str]) -> Response:
    if origin not in origins:
        logger.warning("Refused CORS preflight from an origin not listed", origin=origin)
        return _json_error(403, "Origin not allowed", "see CODEC_SERVER_CORS_ORIGINS")
    response = Response("", 204)
    response.headers["Access-Control-Allow-Methods"] = "POST"
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return response


def _apply(action: str, transform: Callable[[Payload], Payload], body: bytes) -> Response:
    try:
        payloads = _parse(body)
        result = Payloads(payloads=[_transform(transform, i, p) for i, p in enumerate(payloads)])
    except BadPayloads as error:
        # Logged without any payload content: it may be exactly what is being protected.
        logger.info("Refused codec request", action=action, err=str(error))
        return _json_error(400, f"Cannot {action} these payloads", str(error))
    logger.debug("Codec request served", action=action, payloads=len(result.payloads))
    return Response(json_format.MessageToJson(result), 200, mimetype="application/json")


def _parse(body: bytes) -> list[Payload]:
    try:
        # Unknown fields are tolerated: newer UIs may send fields this protobuf lacks.
        payloads = json_format.Parse(body, Payloads(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, RecursionError) as error:
        raise BadPayloads(f"not a Payloads JSON object ({type(error).__name__})") from None
    return list(payloads.payloads)


def _transform(transform: Callable[[Payload], Payload], index: int, payload: Payload) -> Payload:
    try:
        return transform(payload)
    except PayloadDecodeError as error:
        raise BadPayloads(f"payload {index}: {error}") from None


def _json_error(status: int, message: str, detail: str) -> Response:
    return Response(
        json.dumps({"message": message, "detail": detail}), status, mimetype="application/json"
    )


def _warn_if_exposed(settings: CodecServerSettings) -> None:
    if settings.token is None and settings.host not in ("127.0.0.1", "::1", "localhost"):
        logger.warning(
            "The codec server listens beyond this machine without CODEC_SERVER_TOKEN:"
            " whoever reaches it can decrypt payloads",
            host=settings.host,
        )


def main() -> None:
    try:
        settings = load_codec_server_settings()
    except ConfigError as error:
        print(f"letro-server codec server: {error}", file=sys.stderr)
        sys.exit(2)
    configure_logging(
        level=settings.log_level,
        log_format=settings.log_format,
        component="codec-server",
        version="-",
    )
    _warn_if_exposed(settings)
    bind = f"{settings.host}:{settings.port}"
    serve_until_stopped(
        create_codec_app(settings),
        bind,
        graceful_timeout=5.0,
        on_start=lambda: logger.info(
            "Codec server listening",
            bind=bind,
            keyIds=list(settings.payload_keys.key_ids),
            activeKeyId=settings.payload_keys.active_key_id,
            origins=list(settings.cors_origins),
            tokenRequired=settings.token is not None,
        ),
        on_stop=lambda: logger.info("Codec server stopped"),
    )


if __name__ == "__main__":
    main()
