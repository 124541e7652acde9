"""Stand-ins for the WebUIs: forge_neo/ and sdnext/ (each a `site/` of fake WebUI modules, fakes and a harness),
gradio_site/ (just enough of gradio, shared by both), sites.py (putting a site on sys.path and taking it away)."""
