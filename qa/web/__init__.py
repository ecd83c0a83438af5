"""The web face of qa: chat pages, the JSON API and the embeddable widget (`qa.web.app`)."""
