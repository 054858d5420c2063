"""The gateway: other tools reach Deskmind's memory and runtimes, with permissions.

MCP (stdio and Streamable HTTP) and an OpenAI-compatible endpoint on loopback, each outside
client an agent with its own scopes, every call and every item read in the audit log.
Qt-free; the tray app and ``deskmind serve`` both run it.
"""
