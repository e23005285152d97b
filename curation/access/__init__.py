"""Who may do what: roles (require_role), accounts and the audit trail."""
