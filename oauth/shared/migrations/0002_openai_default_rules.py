"""The default rules: OpenAI's clients (ChatGPT connectors, the Apps SDK) act on the tool-result
challenge, so clients whose redirect URI or CIMD client_id is on chatgpt.com or openai.com (and
their subdomains, e.g. chat.openai.com) get that channel. Editable in the platform admin."""

from django.db import migrations

DEFAULT_RULES = [
    ("redirect_uri_host", ".chatgpt.com"),
    ("redirect_uri_host", ".openai.com"),
    ("client_id_host", ".chatgpt.com"),
    ("client_id_host", ".openai.com"),
]
NOTE = "default: OpenAI clients (ChatGPT, Apps SDK) read _meta['mcp/www_authenticate']"


def add_rules(apps, schema_editor):
    Rule = apps.get_model("oauth_shared", "ChallengeChannelRule")
    for match_on, pattern in DEFAULT_RULES:
        Rule.objects.get_or_create(
            match_on=match_on, pattern=pattern, defaults={"channel": "tool_result", "priority": 100, "note": NOTE}
        )


def remove_rules(apps, schema_editor):
    Rule = apps.get_model("oauth_shared", "ChallengeChannelRule")
    for match_on, pattern in DEFAULT_RULES:
        Rule.objects.filter(match_on=match_on, pattern=pattern, note=NOTE).delete()


class Migration(migrations.Migration):
    dependencies = [("oauth_shared", "0001_initial")]
    operations = [migrations.RunPython(add_rules, remove_rules)]
