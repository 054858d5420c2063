"""Routing rules, trust zones and the egress ledger."""
