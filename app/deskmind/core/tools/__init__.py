"""Outside tools: MCP servers the person connects, and what each agent may call on them."""
