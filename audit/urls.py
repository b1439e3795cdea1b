from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.event_list, name="event_list"),
    path("export.<str:fmt>", views.event_export, name="event_export"),
    path("verify/", views.verify, name="verify"),
    path("<uuid:event_id>/", views.event_detail, name="event_detail"),
]
