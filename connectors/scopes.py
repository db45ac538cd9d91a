from declarations.scopes import Scope, declare_scopes

# use the caller's own connected accounts (never their credentials)
declare_scopes(
    Scope("connections", "Use your connected accounts at other services on your behalf"),
    Scope("connections.admin", "See every member's connected accounts (administrators)", admin_only=True),
)
