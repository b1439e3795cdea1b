from django.contrib import admin
from django.urls import include, path

from accounts.admin_site import OperatorAdminSite
from iamportal import api, views
from policies import urls as policy_urls

# Operators' admin: staff accounts verified with an authenticator (django-otp), signed in
# with email, password and code in one form. Swapping the default site's class keeps
# every `admin.site.register` of the apps.
admin.site.__class__ = OperatorAdminSite
admin.site.site_header = admin.site.site_title = "IAM Portal operations"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("accounts/", include("accounts.urls")),
    path("o/<uuid:org_id>/audit/", include("audit.urls")),
    path("o/<uuid:org_id>/iam/", include("policies.urls")),
    path("o/<uuid:org_id>/iam/", include(policy_urls.tool_patterns)),
    path("api/v1/", include(api.urls(), namespace="api")),
    path("admin/", admin.site.urls),
    path("", include("scim.urls")),
    path("", include("federation.urls")),
    path("", include("organizations.urls")),
]

handler403 = "iamportal.views.permission_denied"
handler404 = "iamportal.views.page_not_found"
handler500 = "iamportal.views.server_error"
