"""Email the services send: a text body with an HTML alternative, links made absolute."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.http import HttpRequest
from django.template.loader import render_to_string

from iamportal.text import one_line


def absolute_url(request: HttpRequest | None, path: str) -> str:
    if request is not None:
        return request.build_absolute_uri(path)
    # Without a request (management commands) links use the configured public address.
    return settings.IAMPORTAL_BASE_URL.rstrip("/") + path


def send_email(*, to: str, subject: str, template: str, context: dict[str, object]) -> None:
    """A text email with an HTML alternative; templates autoescape what users typed."""
    text = render_to_string(f"emails/{template}.txt", context)
    html = render_to_string(f"emails/{template}.html", context)
    # A header cannot hold a newline: names stored before they were checked may.
    message = EmailMultiAlternatives(subject=one_line(subject), body=text, to=[to])
    message.attach_alternative(html, "text/html")
    message.send()
