"""A real Forge Neo for the browser test: which trees to run, starting and stopping the server, and the
small helpers the test needs (PNG pixels, infotext) without any of Forge's or the harness's packages.

    server.py   find the Forge trees / Python / models (FORGE_NEO_DIR, FORGE_NEO_E2E_ROOT), start one
                server with the web UI (or API only), wait for it, stop its process group
    png.py      decode the 8-bit PNGs Forge writes, to compare pixels exactly
    picture.py  keep a README screenshot under its size limit (PNG palette, with Forge's Pillow)
    ui.py       Playwright steps on Forge's page (tabs, gradio sliders/dropdowns, generate, gallery)
"""
