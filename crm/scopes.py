from declarations.scopes import Scope, declare_scopes

declare_scopes(
    Scope("crm.read", "Read contacts and notes in this workspace's CRM", base=True),
    Scope("crm.write", "Create notes and update contacts in this workspace's CRM"),
    Scope("crm.admin", "Delete contacts from this workspace's CRM (administrators)", admin_only=True),
)
