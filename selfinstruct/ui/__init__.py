"""``selfinstruct playground``: settle a distill prompt on real rows in a web page.

:mod:`selfinstruct.ui.session` does the work with distill's own code (no web framework),
:mod:`selfinstruct.ui.page` is the Gradio page and API over it; Gradio is imported only
there (``pip install 'selfinstruct[ui]'``), so nothing else pays for it.
"""
