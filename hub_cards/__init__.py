"""Files msam_hf publishes to the Hub, not code it runs: the model card template, the Inference Endpoints
`handler.py` and the Gradio Space (`space/`).

The folder sits at the repository's top level and is installed as the package `msam_hf.hub_cards` (setup.cfg's
`package_dir`), so `importlib.resources.files("msam_hf.hub_cards")` finds it in a wheel and an editable install;
`msam_hf.hub.HUB_CARDS_DIR` resolves it.
"""
