"""``--executor ray``: the row stages' requests sent from Ray Data actors.

One ``selfinstruct`` process stays the coordinator: it reads the input, decides what is
still to do, and parses, filters and writes every answer, exactly as without Ray. Only
the sending moves: the pending requests become a Ray Data dataset, ``map_batches`` runs
them on a pool of actors that each hold one backend (an OpenAI-compatible client, or a
vLLM engine per GPU), and the answers stream back to the coordinator's ``handle``.
Ray is imported only here, and only when a stage runs with ``--executor ray``.
"""
