"""Your account: its sessions, and ending them."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts import mfa
from accounts.sessions import session_end, sessions_end_all_other, sessions_of
from policies.guards import signed_in


@signed_in
@require_GET
def account(request: HttpRequest) -> HttpResponse:
    user = request.user
    current = request.session.session_key
    sessions = sessions_of(user)
    return render(
        request,
        "accounts/account.html",
        {
            "sessions": sessions,
            "current_key": current,
            "others": sum(1 for s in sessions if s.session_key != current),
            "has_mfa": mfa.has_mfa(user),
            "verified": mfa.is_verified(request),
        },
    )


@signed_in
@require_POST
def end_session(request: HttpRequest, session_id: UUID) -> HttpResponse:
    row = session_end(user=request.user, session_id=session_id, request=request)
    if row.session_key == request.session.session_key:
        # Ending the current session is signing out here.
        logout(request)
        return redirect("accounts:login")
    messages.success(request, f"Session ended: {row.device}, {row.ip or 'unknown address'}.")
    return redirect("accounts:account")


@signed_in
@require_POST
def end_other_sessions(request: HttpRequest) -> HttpResponse:
    count = sessions_end_all_other(user=request.user, request=request)
    messages.success(
        request,
        f"{count} other session{'s' if count != 1 else ''} ended."
        if count
        else "There were no other sessions.",
    )
    return redirect("accounts:account")
