"""Developer tools: ComfyUI bootstrap, fixtures, headless runner. Never imported by the pack."""
