"""The rule table in the platform admin (public schema)."""

from django.contrib import admin

from oauth.shared.models import ChallengeChannelRule


@admin.register(ChallengeChannelRule)
class ChallengeChannelRuleAdmin(admin.ModelAdmin):
    list_display = ("priority", "match_on", "pattern", "channel", "enabled", "note")
    list_display_links = ("pattern",)
    list_editable = ("enabled",)
    list_filter = ("match_on", "channel", "enabled")
    ordering = ("priority", "id")
