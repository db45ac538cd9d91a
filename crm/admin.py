from crm.models import Contact, Note
from tenants.admin_site import TenantModelAdmin, tenant_admin_site


class ContactAdmin(TenantModelAdmin):
    list_display = ("name", "email", "company", "updated_at")
    search_fields = ("name", "email", "company")


class NoteAdmin(TenantModelAdmin):
    list_display = ("contact", "author_user_id", "created_at")


tenant_admin_site.register(Contact, ContactAdmin)
tenant_admin_site.register(Note, NoteAdmin)
