"""The Gradio studio: layout and wiring (`studio.py`) over pure renderers; it calls the library, never the reverse."""
