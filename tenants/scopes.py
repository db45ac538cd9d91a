from declarations.scopes import Scope, declare_scopes

declare_scopes(Scope("tenant.read", "Read basic information about this workspace", base=True))
