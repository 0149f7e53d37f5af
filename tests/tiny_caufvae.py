"""The tiny CauF-VAE configuration the CauF-VAE tests share (imported by them, not collected)."""

TINY = {"channels": 8, "hidden": 32, "flow_layers": 2, "flow_hidden": (16, 16)}
"""Network sizes small enough for a few training steps per test on one CPU thread."""

GRAPH = {"pendulum": [], "light": [], "shadow_len": ["pendulum", "light"],
         "shadow_pos": ["pendulum", "light"]}
"""The Pendulum factor graph."""
