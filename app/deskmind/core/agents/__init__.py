"""Agents: named roles with scopes; every tool call checked and audited in the core."""
