"""LoRA training from approved dataset versions: config, data, runs, evaluation, model cards.

Training runs in its own process (never the Streamlit script thread) and writes progress to the
database; see the design notes in the README. This package never imports Streamlit.
"""
