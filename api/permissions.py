"""Who may do what: a token within its scopes, an admin session within its Django permissions.

Every request needs a user. Then each request needs one scope:
- read: GET (and HEAD, OPTIONS) of anything;
- write: accepting runs and components (POST of runs, batches, components, tags);
- admin: flag and unflag (a task's flag too), and PATCH of runs and components.
A token has the scopes its TokenGrant lists; one without a grant, or with no scopes listed,
has them all: the tokens `make run` and `create_api_token` without --scope make. A session
(the dashboard's login) has what the admin would let its user do: the same Django permission
for the same thing.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from api.models import Scope

SCOPE_MISSING = "This token does not have the {scope} scope."
PERMISSION_MISSING = "Your account does not have the permission {permission}."

# What a session's user needs, by scope, where a view names nothing more precise.
SESSION_PERMISSIONS = {
    Scope.READ: "runs.view_run",
    Scope.WRITE: "runs.add_run",
    Scope.ADMIN: "runs.change_iopointer",
}


def required_scope(request: Request, view: Any) -> str:
    if request.method in SAFE_METHODS:
        return Scope.READ
    if request.method == "PATCH" or getattr(view, "admin_scope", False):
        return Scope.ADMIN
    return Scope.WRITE


class ScopedAccess(BasePermission):
    message = "Authentication credentials were not provided."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        scope = required_scope(request, view)
        if request.auth is not None:  # a token
            grant = getattr(request.auth, "mltrace_grant", None)
            if grant is None or grant.allows(scope):
                return True
            self.message = SCOPE_MISSING.format(scope=scope)
            return False
        key = getattr(view, "action", None) or (request.method or "").lower()
        permission = getattr(view, "session_permissions", {}).get(key) or SESSION_PERMISSIONS[Scope(scope)]
        if user.has_perm(permission):
            return True
        self.message = PERMISSION_MISSING.format(permission=permission)
        return False
