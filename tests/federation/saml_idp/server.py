"""A real SAML 2.0 identity provider for the federation tests: pysaml2's IdP
(`saml2.server.Server`) in a small WSGI app on a loopback port.

    python server.py  (environment: IDP_PORT, IDP_KEY, IDP_CERT, IDP_ACCOUNTS)

prints "READY <base URL>" once it listens. Endpoints: GET /metadata (its metadata, also
its entity ID), POST /sp (registers a service provider's metadata: the console's SP is
created after the IdP starts), GET /sso/redirect (the HTTP-Redirect AuthnRequest: its
login form), POST /login (any password; answers with the HTTP-POST binding's form, which
posts the signed response to the SP's ACS). A `mode` field on /login makes a faulty
answer for the security tests: unsigned, wrong_audience. Its assertions last 5 minutes.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import sys
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.authn_context import MOBILETWOFACTORCONTRACT, PASSWORD
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server

PORT = int(os.environ["IDP_PORT"])
BASE = f"http://127.0.0.1:{PORT}"
# Accounts whose attributes differ from the defaults (email = login, no groups).
ACCOUNTS: dict[str, dict[str, Any]] = json.loads(os.environ.get("IDP_ACCOUNTS") or "{}")


def _server() -> Server:
    config = IdPConfig()
    config.load(
        {
            "entityid": f"{BASE}/metadata",
            "xmlsec_binary": shutil.which("xmlsec1"),
            "key_file": os.environ["IDP_KEY"],
            "cert_file": os.environ["IDP_CERT"],
            "metadata": {},
            "service": {
                "idp": {
                    "name": "Test IdP",
                    "endpoints": {
                        "single_sign_on_service": [(f"{BASE}/sso/redirect", BINDING_HTTP_REDIRECT)]
                    },
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    "policy": {"default": {"lifetime": {"minutes": 5}}},
                }
            },
        }
    )
    return Server(config=config)


SERVER = _server()


def _page(body: str, status: str = "200 OK") -> tuple[str, list[tuple[str, str]], bytes]:
    document = (
        f"<!doctype html><html><head><title>Test IdP</title></head><body>{body}</body></html>"
    )
    return status, [("Content-Type", "text/html; charset=utf-8")], document.encode()


def _login_form(query: str) -> tuple[str, list[tuple[str, str]], bytes]:
    return _page(
        "<h1>Test IdP sign-in</h1>"
        '<form method="post" action="/login">'
        f'<input type="hidden" name="query" value="{html.escape(query)}">'
        '<label>Username <input name="username" autocomplete="username"></label>'
        '<label>Password <input name="password" type="password"></label>'
        '<button type="submit">Sign in</button></form>'
    )


def _answer(form: dict[str, str]) -> tuple[str, list[tuple[str, str]], bytes]:
    query = {name: values[0] for name, values in parse_qs(form.get("query", "")).items()}
    request = SERVER.parse_authn_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT)
    args = SERVER.response_args(request.message, [BINDING_HTTP_POST])
    login, mode = form.get("username", ""), form.get("mode", "")
    extra = ACCOUNTS.get(login, {})
    identity = {"email": [extra.get("email", login)], "groups": extra.get("groups", [])}
    if mode == "wrong_audience":
        args["sp_entity_id"] = "https://someone-else.example/sp"
    authn = {
        "class_ref": MOBILETWOFACTORCONTRACT if extra.get("mfa") else PASSWORD,
        "authn_auth": f"{BASE}/metadata",
    }
    response = SERVER.create_authn_response(
        identity,
        userid=login,
        name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=extra.get("email", login)),
        authn=authn,
        sign_assertion=mode != "unsigned",
        sign_response=False,
        **args,
    )
    http = SERVER.apply_binding(
        BINDING_HTTP_POST,
        str(response),
        args["destination"],
        query.get("RelayState", ""),
        response=True,
    )
    return "200 OK", [("Content-Type", "text/html; charset=utf-8")], http["data"].encode()


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
    body = b""
    if method == "POST":
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    form = {name: values[0] for name, values in parse_qs(body.decode()).items()}
    try:
        if method == "GET" and path == "/metadata":
            xml = str(entity_descriptor(SERVER.config))
            status, headers, content = "200 OK", [("Content-Type", "text/xml")], xml.encode()
        elif path == "/favicon.ico":  # browsers ask; nothing to show
            status, headers, content = "204 No Content", [], b""
        elif method == "POST" and path == "/sp":
            SERVER.metadata.load("inline", body.decode())
            status, headers, content = "204 No Content", [], b""
        elif method == "GET" and path == "/sso/redirect":
            status, headers, content = _login_form(environ.get("QUERY_STRING", ""))
        elif method == "POST" and path == "/login":
            status, headers, content = _answer(form)
        else:
            status, headers, content = _page("Not found", "404 Not Found")
    except Exception as error:  # a test IdP: say what broke, on the page
        status, headers, content = _page(html.escape(repr(error)), "500 Internal Server Error")
    start_response(status, headers)
    return [content]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


if __name__ == "__main__":
    with make_server("127.0.0.1", PORT, app, handler_class=_QuietHandler) as httpd:
        print(f"READY {BASE}", flush=True)
        sys.stdout.close()
        httpd.serve_forever()
