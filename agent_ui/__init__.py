"""agent_ui package."""
