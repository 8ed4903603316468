"""Tickets: their states, routing to departments, the department and category catalogue."""
