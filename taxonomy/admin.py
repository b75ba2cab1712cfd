from django.contrib import admin

from .models import Spec, SpecChange, SpecVersion


@admin.register(Spec)
class SpecAdmin(admin.ModelAdmin):
    list_display = ("name", "created_by", "created_at")
    search_fields = ("name",)
    filter_horizontal = ("editors",)


@admin.register(SpecVersion)
class SpecVersionAdmin(admin.ModelAdmin):
    """Read-only: documents change through the spec editor, which validates and records every change."""

    list_display = ("spec", "number", "status", "updated_at", "published_at")
    list_filter = ("status",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(SpecChange)
class SpecChangeAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "version", "action", "summary")
    list_filter = ("action",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
