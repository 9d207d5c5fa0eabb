"""Handbook answers: articles, a search that understands how people really type, and hand-off to the
village tech team."""
