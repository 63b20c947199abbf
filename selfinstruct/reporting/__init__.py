"""The run report: numbers gathered from a run's files, drawn as figures on one HTML page.

``facts`` reads the run files, ``verbs`` tags instructions, ``rates`` holds the interval
arithmetic, ``charts`` and ``sunburst`` draw with matplotlib (SVG, no network), and
``page`` lays it all out; :mod:`selfinstruct.stages.report` ties them together.
"""
