"""The pages: one router per screen."""
