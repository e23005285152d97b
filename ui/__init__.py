"""The Streamlit layer shared by the pages: cached handles, session keys, shared widgets."""
