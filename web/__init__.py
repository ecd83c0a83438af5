"""Browser side of qa: Jinja2 templates, static assets and the embeddable widget."""
