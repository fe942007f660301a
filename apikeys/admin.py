from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from apikeys.models import ALL_SCOPES, ApiKey
from apikeys.services import api_key_create
from config.api.errors import ApplicationError


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in ALL_SCOPES], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ("workspace", "name", "scopes", "expires_at")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "workspace",
        "masked",
        "scopes",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "created_at",
    )
    list_filter = ("workspace",)
    search_fields = ("name", "id", "last4")
    actions = ["revoke"]
    readonly_fields = (
        "id",
        "workspace",
        "member",
        "last4",
        "scopes",
        "allowed_mind_ids",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "created_at",
    )
    exclude = ("key_hash",)

    @admin.display(description="key")
    def masked(self, obj):
        return f"tr_live_…{obj.last4}"

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # Keys are only made by the service: it hashes the key and enforces the workspace's limit.
        try:
            created = api_key_create(
                workspace=form.cleaned_data["workspace"],
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=form.cleaned_data.get("expires_at"),
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
            raise
        obj.pk = created.api_key.pk
        obj.__dict__.update({k: v for k, v in created.api_key.__dict__.items() if not k.startswith("_")})
        messages.warning(request, f"Copy this key now; it will not be shown again: {created.plaintext}")

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} key(s) revoked.", messages.SUCCESS)
