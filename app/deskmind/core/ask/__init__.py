"""The quick-ask pipeline (async-first) and the helpers that assemble it from a Core."""
