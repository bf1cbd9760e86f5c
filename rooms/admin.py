"""Admins configure the map here (and through the REST API); both go through the same services."""

from django import forms
from django.contrib import admin

from . import services
from .models import RETENTION_FIELDS, ChatMessage, Desk, OfficeMap, Profile, Room, RoomMembership


class RoomMembershipInline(admin.TabularInline):
    model = RoomMembership
    extra = 1
    autocomplete_fields = ["user"]


class RoomInline(admin.TabularInline):
    """Read-only here: rooms are edited on their own page, where the layout is validated."""

    model = Room
    extra = 0
    max_num = 0
    can_delete = False
    fields = readonly_fields = ["name", "kind", "x", "y", "width", "height", "capacity", "assistant_enabled"]
    show_change_link = True


@admin.register(OfficeMap)
class OfficeMapAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "width", "height"]
    inlines = [RoomInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change:
            services.office_map_changed(office_map_id=obj.pk)


class RoomAdminForm(forms.ModelForm):
    class Meta:
        model = Room
        fields = ["office_map", "name", "slug", "kind", "x", "y", "width", "height", "doors", "capacity",
                  "assistant_enabled", *RETENTION_FIELDS]

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            layout = [name for name in self.Meta.fields if name not in RETENTION_FIELDS]
            candidate = Room(pk=self.instance.pk, **{name: cleaned.get(name) for name in layout})
            services.room_check_layout(candidate)
        return cleaned


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    form = RoomAdminForm
    list_display = ["name", "office_map", "kind", "capacity", "assistant_enabled"]
    list_filter = ["office_map", "kind", "assistant_enabled"]
    inlines = [RoomMembershipInline]
    prepopulated_fields = {"slug": ["name"]}

    def save_model(self, request, obj, form, change):
        fields = {f: getattr(obj, f) for f in ["name", "slug", "kind", "x", "y", "width", "height", "doors",
                                               "capacity", "assistant_enabled", *RETENTION_FIELDS]}
        if change:
            services.room_update(room=obj, **fields)
        else:
            obj.pk = services.room_create(office_map=obj.office_map, **fields).pk

    def save_related(self, request, form, formsets, change):
        before = set(form.instance.memberships.values_list("user_id", flat=True))
        super().save_related(request, form, formsets, change)
        after = set(form.instance.memberships.values_list("user_id", flat=True))
        services.room_members_changed(room=form.instance, user_ids=before ^ after)


class DeskAdminForm(forms.ModelForm):
    class Meta:
        model = Desk
        fields = ["office_map", "label", "x", "y", "owner"]

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            fields = {name: cleaned.get(name) for name in ["label", "x", "y", "owner"]}
            office_map = cleaned.get("office_map") or self.instance.office_map
            candidate = Desk(pk=self.instance.pk, office_map=office_map, **fields)
            candidate._state.adding = self.instance._state.adding  # a changed desk is not a new row
            services.desk_check(candidate)
        return cleaned


@admin.register(Desk)
class DeskAdmin(admin.ModelAdmin):
    form = DeskAdminForm
    list_display = ["label", "office_map", "x", "y", "owner"]

    def get_readonly_fields(self, request, obj=None):
        return ["office_map"] if obj else []  # a desk moves within its map; another map gets a new desk

    def save_model(self, request, obj, form, change):
        fields = {f: getattr(obj, f) for f in ["label", "x", "y", "owner"]}
        if change:
            services.desk_update(desk=obj, **fields)
        else:
            obj.pk = services.desk_create(office_map=obj.office_map, **fields).pk


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["display_name", "user", "status"]
    search_fields = ["display_name", "user__username"]


@admin.register(ChatMessage)
class ChatMessageAdmin(admin.ModelAdmin):
    list_display = ["thread", "seq", "author", "created_at"]
    readonly_fields = ["thread", "seq", "author", "body", "client_id", "created_at"]
