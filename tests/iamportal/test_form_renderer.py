"""The project's form renderer (FORM_RENDERER, iamportal.widgets.PythonRenderer) writes
the plain form templates in Python: every page of the portal must read byte for byte as
Django's own templates render it. Each guarded page (tests/urls.py walks the URLconf) is
requested as the owner with both renderers, CSRF tokens and CSP nonces aside."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Org
from tests.urls import guarded_urls, kwargs_for, make_world

pytestmark = pytest.mark.django_db

# Per-request values: the CSRF token (masked anew on each render) and the CSP nonce.
_VOLATILE = re.compile(r'(csrfmiddlewaretoken" value="|X-CSRFToken": "|nonce=")[^"]+')


def _page(client, path: str) -> tuple[int, str]:
    response = client.get(path)
    body = "" if response.streaming else response.content.decode(errors="replace")
    return response.status_code, _VOLATILE.sub(r"\1…", body)


@pytest.mark.parametrize("url", guarded_urls(), ids=lambda url: url.name)
def test_every_page_reads_as_djangos_form_templates_render_it(url, org: Org, settings) -> None:
    path = url.path(kwargs_for(url, make_world(org.organization, actor=org.owner)))
    client = org.client_for("owner")
    client.get(path)  # one-time work (session, caches) out of the comparison
    fast = _page(client, path)
    settings.FORM_RENDERER = "django.forms.renderers.DjangoTemplates"
    slow = _page(client, path)
    assert fast[0] == slow[0]
    assert fast[1] == slow[1]
