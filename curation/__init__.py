"""The core of the LoRA curation workbench: typed, Streamlit-free, used by the pages, the CLI and the tests."""
